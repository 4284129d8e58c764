"""The plan of one look at an inbox (``inbox_plan.plan_look``), from hand-made files and records:
no disk, no warehouse, no Dagster."""
import copy
import json

import pandas as pd
import pytest

from benchmark_assets.inbox_plan import DUPLICATE, INGESTED, REJECTED, FileSeen, TrialShape, plan_look
from benchmark_assets.kinds.base import INBOX_BASE, IngestError

SHAPE = TrialShape("fake", "point", "replicate")
BASE = INBOX_BASE


def key(point: str, offset: int = 0) -> tuple[str, str]:
    return (point, str(BASE + offset))


class Inbox:
    """Files as the disk would show them: a file's content is its point, perhaps with its
    replicate (``@1000001``; ``bad...``: the kind refuses it); its digest follows from the
    content and its stat changes with every write."""

    def __init__(self):
        self.files: dict[str, tuple[str, str]] = {}  # name -> (content, stat)
        self.known: dict[str, dict] = {}  # the records a warehouse would keep
        self.hashed: list[str] = []
        self._writes = 0

    def write(self, name: str, content: str) -> None:
        self._writes += 1
        self.files[name] = (content, f"{len(content)}:{self._writes}")

    def rename(self, old: str, new: str) -> None:
        self.write(new, self.files.pop(old)[0])

    def seen(self) -> list[FileSeen]:
        return [FileSeen(name, stat, lambda name=name, content=content: self._hash(name, content))
                for name, (content, stat) in sorted(self.files.items())]

    def _hash(self, name: str, content: str) -> str:
        self.hashed.append(name)
        return f"sha-{content}"

    def ingest(self, name: str, new_replicate) -> pd.DataFrame:
        content = self.files[name][0]
        if content.startswith("bad"):
            raise IngestError(f"{name}: it ran concurrency=12, which is no sweep point")
        point, *rest = content.split()
        replicate = next((int(word[1:]) for word in rest if word.startswith("@")), None)
        return pd.DataFrame({"point": [point], "replicate": [new_replicate() if replicate is None else replicate],
                             "status": ["ok"], "error": [""]})

    def look(self, *, spec_hash: str = "h1", **options):
        """One look, its records then kept as a warehouse would."""
        plan = plan_look("sweep", spec_hash, self.seen(), list(self.known.values()), shape=SHAPE,
                         ingest=self.ingest, clock=lambda: "2024-05-01T00:00:00+00:00", **options)
        for path, record in plan.records.items():
            if record is None:
                self.known.pop(path, None)
            else:
                self.known[path] = dict(record)
        return plan


def statuses(plan) -> list[tuple[str, str]]:
    return [(o.path, o.status) for o in plan.outcomes]


def test_new_files_are_ingested_with_fresh_replicate_keys_from_inbox_base():
    inbox = Inbox()
    inbox.write("a.json", "concurrency=4")
    inbox.write("b.json", "concurrency=16")
    plan = inbox.look(mark=7)
    assert statuses(plan) == [("a.json", INGESTED), ("b.json", INGESTED)]
    assert [i.outcome.keys for i in plan.ingested] == [(key("concurrency=4"),), (key("concurrency=16", 1),)]
    assert [i.rows["replicate"].tolist() for i in plan.ingested] == [[BASE], [BASE + 1]]
    assert plan.unchanged == plan.waiting == 0 and plan.released == ()
    record = plan.records["b.json"]
    assert record["status"] == INGESTED and record["digest"] == record["kept_digest"] == "sha-concurrency=16"
    assert json.loads(record["trial_keys"]) == [["concurrency=16", str(BASE + 1)]] and record["mark"] == 7
    inbox.write("c.json", "concurrency=1")
    (later,) = inbox.look().ingested  # the next key unused by any record
    assert later.outcome.keys == (key("concurrency=1", 2),)


def test_an_unchanged_file_is_seen_before_and_not_hashed_again():
    inbox = Inbox()
    inbox.write("a.json", "concurrency=4")
    inbox.look()
    again = inbox.look()
    assert again.outcomes == () and again.unchanged == 1 and dict(again.records) == {}
    assert inbox.hashed == ["a.json"]  # same size and time: its record's digest
    inbox.write("a.json", "concurrency=4")  # touched: hashed, the same content, only its stat kept
    touched = inbox.look()
    assert touched.outcomes == () and touched.unchanged == 1 and inbox.hashed == ["a.json"] * 2
    assert touched.records["a.json"]["stat"] == inbox.files["a.json"][1]


def test_a_copy_of_an_ingested_file_is_a_duplicate():
    inbox = Inbox()
    inbox.write("b.json", "concurrency=4")
    inbox.look()
    inbox.write("a.json", "concurrency=4")
    plan = inbox.look()
    assert statuses(plan) == [("a.json", DUPLICATE)] and plan.ingested == ()
    assert "the same content as b.json" in plan.outcomes[0].reason
    assert plan.records["a.json"]["trial_keys"] == "[]"
    assert inbox.look().unchanged == 2  # still a copy: not reported again


def test_a_renamed_file_keeps_its_keys():
    inbox = Inbox()
    inbox.write("a.json", "concurrency=4")
    inbox.write("b.json", "concurrency=16")
    inbox.look()
    inbox.rename("a.json", "z.json")
    plan = inbox.look()
    (moved,) = plan.ingested
    assert statuses(plan) == [("z.json", INGESTED)] and moved.moved_from == "a.json"
    assert moved.outcome.keys == (key("concurrency=4"),) and moved.released == () and plan.released == ()
    assert plan.records["a.json"] is None and set(inbox.known) == {"b.json", "z.json"}


def test_a_changed_file_that_is_rejected_keeps_its_earlier_keys():
    inbox = Inbox()
    inbox.write("a.json", "concurrency=4")
    inbox.look(mark=3)
    inbox.write("a.json", "bad: concurrency=12")
    plan = inbox.look(mark=9)
    (outcome,) = plan.outcomes
    assert outcome.status == REJECTED and outcome.reason == "it ran concurrency=12, which is no sweep point"
    assert plan.ingested == () and plan.released == ()
    record = plan.records["a.json"]
    assert json.loads(record["trial_keys"]) == [list(key("concurrency=4"))]  # nothing lost
    assert (record["digest"], record["kept_digest"], record["mark"]) == ("sha-bad: concurrency=12",
                                                                         "sha-concurrency=4", 3)
    assert inbox.look().unchanged == 1  # not read again...
    assert statuses(inbox.look(spec_hash="h2")) == [("a.json", REJECTED)]  # ...until the study changed


def test_a_changed_file_at_another_point_keeps_its_key_and_releases_the_old_trial():
    inbox = Inbox()
    inbox.write("a.json", "concurrency=4")
    inbox.look()
    inbox.write("a.json", "concurrency=16")
    plan = inbox.look()
    (changed,) = plan.ingested
    assert changed.outcome.keys == (key("concurrency=16"),)
    assert changed.released == plan.released == (key("concurrency=4"),)


def test_the_limit_leaves_files_waiting_for_the_next_look():
    inbox = Inbox()
    for name in ("a.json", "b.json", "c.json"):
        inbox.write(name, f"concurrency={len(inbox.files) + 1}")
    first = inbox.look(limit=2)
    assert statuses(first) == [("a.json", INGESTED), ("b.json", INGESTED)] and first.waiting == 1
    assert "c.json" not in inbox.hashed and "c.json" not in first.records
    second = inbox.look(limit=2)
    assert statuses(second) == [("c.json", INGESTED)] and second.unchanged == 2 and second.waiting == 0
    assert second.ingested[0].outcome.keys == (key("concurrency=3", 2),)


def test_files_to_check_are_validated_each_on_its_own():
    inbox = Inbox()
    inbox.write("a.json", "concurrency=4")
    inbox.write("b.json", "concurrency=16")

    def validate(rows):
        raise IngestError("its trials do not pass the trials schema")

    plan = inbox.look(validate=validate, check={"b.json"})
    assert statuses(plan) == [("a.json", INGESTED), ("b.json", REJECTED)]
    assert plan.outcomes[1].reason == "its trials do not pass the trials schema"


@pytest.mark.parametrize("stat, fingerprint", [(None, "sha-x"), ("1:1", None)])
def test_a_file_gone_since_it_was_listed_is_skipped(stat, fingerprint):
    gone = FileSeen("a.json", stat, lambda: fingerprint)
    plan = plan_look("sweep", "h1", [gone], [], shape=SHAPE, ingest=Inbox().ingest)
    assert plan.outcomes == () and dict(plan.records) == {} and plan.unchanged == 0


def test_the_plan_changes_nothing_it_is_given():
    inbox = Inbox()
    inbox.write("a.json", "concurrency=4")
    inbox.write("m.json", "concurrency=1")
    inbox.look()
    inbox.rename("a.json", "z.json")
    del inbox.files["m.json"]
    inbox.write("b.json", f"concurrency=1 @{BASE + 1}")  # takes the trial of m.json, deleted
    known = copy.deepcopy(list(inbox.known.values()))
    given = list(inbox.known.values())
    plan = plan_look("sweep", "h1", inbox.seen(), given, shape=SHAPE, ingest=inbox.ingest)
    assert given == known
    assert {p: None if r is None else r["status"] for p, r in plan.records.items()} == {
        "a.json": None, "m.json": None, "z.json": INGESTED, "b.json": INGESTED}
    assert [(i.outcome.path, i.outcome.keys, i.moved_from) for i in plan.ingested] == [
        ("b.json", (key("concurrency=1", 1),), None), ("z.json", (key("concurrency=4"),), "a.json")]
    with pytest.raises(TypeError):
        plan.records["z.json"] = None  # type: ignore[index]
