"""An inbox look's plan, worked out before anything is written and from nothing but its
inputs: what the disk showed (``FileSeen``), the study's file records and the kind's ingest. Each
file's outcome, the rows of those ingested, the trials given up, the records left. No I/O here;
``benchmark_assets.inbox`` reads the folder and the warehouse and writes the plan."""
from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from types import MappingProxyType

import pandas as pd

from benchmark_assets.kinds.base import INBOX_BASE, IngestError

INGESTED, REJECTED, DUPLICATE = "ingested", "rejected", "duplicate"


@dataclass(frozen=True)
class Outcome:
    """What became of one file: ``status`` ingested, rejected or duplicate (its content came
    before under another name), with the reason and the (point, replicate) trials it gave."""

    path: str
    digest: str
    status: str
    reason: str = ""
    keys: tuple[tuple[str, str], ...] = ()
    rows: int = 0

    def line(self) -> str:
        if self.status == INGESTED:
            return f"{self.path}: ingested as {len(self.keys)} trials ({self.rows} rows)"
        return f"{self.path}: {self.status}: {self.reason}"


@dataclass
class Scan:
    """One look at a study's inbox: what each new or changed file became, how many files were
    seen before, and how many files the kind does not read (other output of the same tool)."""

    folder: Path
    outcomes: list[Outcome] = field(default_factory=list)
    unchanged: int = 0
    ignored: int = 0
    waiting: int = 0  # files beyond the look's limit: read next time
    released: list[tuple[str, str]] = field(default_factory=list)  # trials a changed or replaced file gave up

    @property
    def ingested(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == INGESTED]

    @property
    def rejected(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != INGESTED]

    @property
    def trial_keys(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys(k for o in self.ingested for k in o.keys))

    @property
    def to_store(self) -> list[tuple[str, str]]:
        """The trial partitions to store again: the new files' and those given up (stored empty)."""
        return list(dict.fromkeys(self.trial_keys + self.released))

    def summary(self) -> str:
        parts = [f"{len(self.ingested)} files ingested ({len(self.trial_keys)} trials)"]
        if self.rejected:
            parts.append(f"{len(self.rejected)} rejected")
        parts.append(f"{self.unchanged} seen before")
        if self.waiting:
            parts.append(f"{self.waiting} left for the next look")
        if self.ignored:
            parts.append(f"{self.ignored} other files ignored")
        return f"{self.folder}: " + ", ".join(parts)


def _keys(text) -> list[tuple[str, str]]:
    return [(str(p), str(r)) for p, r in json.loads(text or "[]")]


class _Replicates:
    """Replicate keys for files that are one more repeat: a changed file keeps its earlier keys
    (its trials are replaced, not added to); a new one gets the next unused key."""

    def __init__(self, used: set[int], earlier: list[int]):
        self._used, self._earlier = used, list(earlier)

    def __call__(self) -> int:
        if self._earlier:
            return self._earlier.pop(0)
        key = max([INBOX_BASE - 1, *self._used]) + 1
        self._used.add(key)
        return key


Key = tuple[str, str]  # a trial's (point, replicate)


@dataclass(frozen=True)
class FileSeen:
    """A file the kind reads, as the disk showed it: its path in the inbox, its size and time
    (None: gone since it was listed) and its content's fingerprint, read only when asked for
    (None: gone meanwhile), so a file of unchanged size and time is not hashed again."""

    name: str
    stat: str | None
    fingerprint: Callable[[], str | None]


@dataclass(frozen=True)
class TrialShape:
    """What a look needs of the kind: its name, its trials' point and replicate columns, and the
    replicate keys the study measures itself (never the inbox's)."""

    kind: str
    point: str
    replicate: str
    measured: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False)
class Ingested:
    """A file a look ingests: its outcome and rows, the trials its earlier version or the file it
    moved from gave up (stored again, empty), and that file."""

    outcome: Outcome
    rows: pd.DataFrame
    released: tuple[Key, ...] = ()
    moved_from: str | None = None


@dataclass(frozen=True, eq=False)
class LookPlan:
    """What one look at a study's inbox does, decided before anything is written: each file's
    outcome, the files ingested, each changed record by path (None: dropped), the trials given up."""

    study: str
    shape: TrialShape
    mark: int
    outcomes: tuple[Outcome, ...] = ()
    ingested: tuple[Ingested, ...] = ()
    records: Mapping[str, dict | None] = field(default_factory=lambda: MappingProxyType({}))
    released: tuple[Key, ...] = ()
    unchanged: int = 0
    waiting: int = 0

    def scan(self, folder: Path, ignored: int = 0) -> Scan:
        return Scan(folder=folder, outcomes=list(self.outcomes), unchanged=self.unchanged, ignored=ignored,
                    waiting=self.waiting, released=list(self.released))


def trial_shape(study, kind) -> TrialShape:
    return TrialShape(kind.name, kind.point.name, kind.replicate.name, frozenset(kind.replicate.keys(study)))


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").isoformat()


def plan_look(study: str, spec_hash: str, files: Sequence[FileSeen], known: Iterable[Mapping], *,
              shape: TrialShape, ingest: Callable[[str, Callable[[], int]], pd.DataFrame],
              validate: Callable[[pd.DataFrame], pd.DataFrame] | None = None, limit: int | None = None,
              mark: int | None = None, check: Collection[str] = frozenset(),
              clock: Callable[[], str] = _now) -> LookPlan:
    """What a look at a study's inbox does, file by file in order, without the disk or the
    warehouse: ``files`` as the disk showed them, ``known`` the study's file records (``records``),
    ``ingest(name, new_replicate)`` the kind's rows of a file (IngestError: why it cannot be used).
    Files beyond ``limit`` wait. The rows of files in ``check`` are checked with ``validate`` (the
    trials schema) each on its own; the others only for their columns (the caller checks them at once)."""
    mark = -1 if mark is None else int(mark)
    held = _Holdings(known)
    present = {f.name for f in files}
    outcomes: list[Outcome] = []
    ingested: list[Ingested] = []
    changed: dict[str, dict | None] = {}  # path -> its record as this look leaves it (None: dropped)
    released: list[Key] = []
    unchanged = waiting = 0
    for file in files:
        if limit is not None and len(outcomes) >= limit:
            waiting += 1
            continue
        name, before = file.name, held.by_path.get(file.name)
        content = _content(file, before)
        if content is None:
            continue  # gone since it was listed
        original = held.holder(content, besides=name)
        copy_of = original if original in present else None
        if _unchanged(before, content, spec_hash, copy_of):
            unchanged += 1  # a rejected file is read again once the study changed
            if before.get("stat") != file.stat:
                changed[name] = {**before, "stat": file.stat}  # next time, not hashed
            continue
        earlier = held.keys_of(name)
        # A file moved or renamed (its content's trials are held under a name no longer there)
        # takes them along: their keys are offered to it first.
        moved = original if original is not None and copy_of is None else None
        outcome, rows = _refused(name, content, copy_of) or _read(
            study, name, content, earlier + [k for k in held.keys_of(moved) if k not in earlier], held, present,
            shape=shape, ingest=ingest, validate=validate if name in check else None)
        outcomes.append(outcome)
        if outcome.status != INGESTED:
            changed[name] = _record(study, spec_hash, clock(), replace(outcome, keys=tuple(earlier)), file.stat,
                                    **_still_kept(before, earlier))
            continue
        changed.update(held.take_from_absent(outcome.keys, name, moved))
        given_up = _given_up(earlier + held.keys_of(moved), outcome.keys)
        if moved:
            changed[moved] = None
        record = _record(study, spec_hash, clock(), outcome, file.stat, kept=content, mark=mark)
        held.settle(name, content, record, outcome.keys, given_up, moved)
        changed[name] = record
        ingested.append(Ingested(outcome, rows, given_up, moved))
        released += [k for k in given_up if k not in released]
    # A key given up by one file and taken by a later one in the same look is not given up.
    taken = {k for i in ingested for k in i.outcome.keys}
    return LookPlan(study, shape, mark, tuple(outcomes), tuple(ingested), MappingProxyType(changed),
                    tuple(k for k in released if k not in taken), unchanged, waiting)


class _Holdings:
    """Which file holds which trials, as a look goes through the files: the records by path,
    the file of each trial key, the replicate keys in use, and the content whose trials each file
    holds (an ingested file, or a rejected one keeping the trials of the version before it: a copy
    of it is a duplicate, a move takes them along)."""

    def __init__(self, known: Iterable[Mapping]):
        self.by_path = {r["path"]: dict(r) for r in known}
        self.owner = {key: r["path"] for r in self.by_path.values() for key in _keys(r["trial_keys"])}
        self.used = {int(r) for _, r in self.owner}
        self.kept = {r["path"]: _kept(r) for r in self.by_path.values() if _kept(r)}

    def keys_of(self, path: str | None) -> list[Key]:
        return _keys(self.by_path[path]["trial_keys"]) if path in self.by_path else []

    def holder(self, content: str, *, besides: str) -> str | None:
        """The file other than ``besides`` holding the trials of ``content`` (the last, if several)."""
        return next((p for p, d in reversed(self.kept.items()) if d == content and p != besides), None)

    def take_from_absent(self, keys: tuple[Key, ...], name: str, moved: str | None) -> dict[str, dict | None]:
        """Keys of files no longer in the inbox that ``name`` brings, taken from them (a deleted
        file keeps the rest of its trials; a moved one is this file now): their records as left,
        None for those left with none."""
        losers = {self.owner[k] for k in keys if self.owner.get(k, name) != name} - {moved}
        changed: dict[str, dict | None] = {}
        for loser in sorted(losers):
            remaining = [k for k in _keys(self.by_path[loser]["trial_keys"]) if k not in keys]
            self.by_path[loser]["trial_keys"] = json.dumps(remaining)
            changed[loser] = self.by_path[loser] if remaining else None
            if not remaining:
                self.kept.pop(loser, None)
        return changed

    def settle(self, name: str, content: str, record: dict, keys: tuple[Key, ...], released: tuple[Key, ...],
               moved: str | None) -> None:
        """``name`` (its record now ``record``) holds ``keys``, the trials of ``content``; the file it
        moved from is gone and the ``released`` keys are nobody's."""
        if moved:
            self.by_path.pop(moved, None)
            self.kept.pop(moved, None)
        self.owner = {k: v for k, v in self.owner.items() if v != moved and k not in released}
        self.owner.update(dict.fromkeys(keys, name))
        self.used |= {int(r) for _, r in keys}
        self.kept[name] = content
        self.by_path[name] = record


def _content(file: FileSeen, before: Mapping | None) -> str | None:
    """The file's fingerprint: its record's if its size and time are unchanged (not hashed again)."""
    if file.stat is None:
        return None
    same = before is not None and before.get("stat") == file.stat and not str(before["digest"]).startswith(
        "unreadable:")
    return before["digest"] if same else file.fingerprint()


def _unchanged(before: Mapping | None, content: str, spec_hash: str, copy_of: str | None) -> bool:
    """Whether a file is as the look before left it: ingested, rejected by the same study, or a
    copy of a file still there."""
    return before is not None and before["digest"] == content and (
        before["status"] == INGESTED
        or (before["status"] == REJECTED and before.get("study_hash") == spec_hash)
        or (before["status"] == DUPLICATE and copy_of is not None))


def _refused(name: str, content: str, copy_of: str | None) -> tuple[Outcome, pd.DataFrame] | None:
    """A copy of a file whose trials are ingested, or a file that cannot be read: not read."""
    if copy_of is not None:
        return Outcome(name, content, DUPLICATE, f"the same content as {copy_of}, whose trials are ingested; "
                       "delete the copy"), pd.DataFrame()
    if content.startswith("unreadable:"):
        return Outcome(name, content, REJECTED, "it cannot be read (permissions?); make it readable"), pd.DataFrame()
    return None


def _read(study: str, name: str, content: str, offered: list[Key], held: _Holdings, present: set[str], *,
          shape: TrialShape, ingest: Callable[[str, Callable[[], int]], pd.DataFrame],
          validate: Callable[[pd.DataFrame], pd.DataFrame] | None) -> tuple[Outcome, pd.DataFrame]:
    """The file's outcome and rows; its new replicate keys are the ``offered`` ones first, then unused ones."""
    mine = {int(r) for _, r in offered}
    try:
        rows = _shaped(shape, ingest(name, _Replicates(held.used - mine, sorted(mine))))
        if validate is not None:
            rows = validate(rows)
    except IngestError as error:
        return Outcome(name, content, REJECTED, _own_words(str(error), PurePosixPath(name).name)), pd.DataFrame()
    except Exception as error:  # noqa: BLE001 - a parser's bug must not stop the other files; it is reported
        return Outcome(name, content, REJECTED, f"{type(error).__name__}: {error}"), pd.DataFrame()
    keys = tuple(dict.fromkeys((str(p), str(r)) for p, r in zip(rows[shape.point], rows[shape.replicate])))
    reason = _not_inbox_keys(study, shape, keys) or _keys_held_elsewhere(shape, name, keys, held.owner, present)
    if reason:
        return Outcome(name, content, REJECTED, reason), pd.DataFrame()
    return Outcome(name, content, INGESTED, "", keys, len(rows)), rows


def _not_inbox_keys(study: str, shape: TrialShape, keys: tuple[Key, ...]) -> str:
    """Why the file's replicate keys are not the inbox's to give, or ''."""
    replicate = shape.replicate
    bad = [r for _, r in keys if int(r) < INBOX_BASE or r in shape.measured]
    if not bad:
        return ""
    why = "below the inbox's keys" if int(bad[0]) < INBOX_BASE else f"one of {study}'s own {replicate} keys"
    return (f"its {replicate} key {bad[0]} is {why} (from {INBOX_BASE:,} up, apart from the study's own); "
            f"give it another {replicate}")


def _keys_held_elsewhere(shape: TrialShape, name: str, keys: tuple[Key, ...], owner: Mapping[Key, str],
                         present: set[str]) -> str:
    """Why the file cannot have its trial keys (another file in the inbox has one), or ''."""
    taken = [(k, owner[k]) for k in keys if owner.get(k, name) != name and owner[k] in present]
    if not taken:
        return ""
    (p, r), other = taken[0]
    return (f"{shape.point} {p}, {shape.replicate} {int(r) - INBOX_BASE} of the inbox (key {r}) already came from "
            f"{other}; give this file another {shape.replicate} or delete one of them")


def _given_up(before: list[Key], now: tuple[Key, ...]) -> tuple[Key, ...]:
    """Trials of a file's earlier version, or of the file it moved from, that it does not keep:
    given up, so their partitions are stored again, empty."""
    return tuple(k for k in dict.fromkeys(before) if k not in now)


def _record(study: str, spec_hash: str, seen_at: str, outcome: Outcome, stat: str, *, kept: str = "",
            mark: int = -1) -> dict:
    return {"study": study, "path": outcome.path, "digest": outcome.digest, "kept_digest": kept,
            "status": outcome.status, "reason": outcome.reason,
            "trial_keys": json.dumps([list(k) for k in outcome.keys]), "rows": int(outcome.rows),
            "study_hash": spec_hash, "stat": stat, "mark": mark, "seen_at": seen_at}


def _still_kept(before: Mapping | None, earlier: list[Key]) -> dict:
    """What a rejected file's record keeps of the version before it: its trials (nothing is lost),
    their content and mark."""
    return {"kept": _kept(before), "mark": _mark(before)} if before is not None and earlier else {}


def _mark(record) -> int:
    value = record.get("mark", -1) if record is not None else -1
    return -1 if value is None or pd.isna(value) else int(value)


def _kept(record) -> str:
    """The content whose trials a record's file holds ('' if none)."""
    if record is None or not _keys(record.get("trial_keys")):
        return ""
    value = record.get("kept_digest")
    if isinstance(value, str) and value:
        return value
    return str(record["digest"]) if record.get("status") == INGESTED else ""


def _shaped(shape: TrialShape, rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with the columns every trial has (the schema is checked for the whole look)."""
    if rows.empty:
        raise IngestError("it holds no trials this study can use")
    missing = [c for c in (shape.point, shape.replicate, "status", "error") if c not in rows]
    if missing:
        raise IngestError(f"the {shape.kind} kind made rows without {missing} (a bug in its ingest)")
    return rows.reset_index(drop=True)


def _own_words(reason: str, name: str) -> str:
    """A parser's message without the file's name at its start (the outcome line names the file)."""
    if reason.startswith(f"{name}: "):
        return reason[len(name) + 2:]
    return "it" + reason[len(name):] if reason.startswith(f"{name} ") else reason
