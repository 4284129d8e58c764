"""Result files from the tools a team already has, ingested as trials: each study has an inbox
folder (``$BENCHMARK_ASSETS_INBOX/<study>/``, by default ``inbox/<study>/`` beside the studies
folder); a file its kind claims (``kinds.capabilities.Ingests.inbox_files``) is read once per content.

``scan`` reads the new and changed files: the kind turns each into trial rows (``Ingests.ingest``),
they are checked against the trials schema and kept in the warehouse (``<study>__inbox``) with a
record per file (``inbox_files``: its digest, what became of it and why). A file that cannot be
used is recorded as rejected with the reason, and is not read again until it or the study changes.
The trials node, wrapped by ``with_inbox``, then stores those rows as its partitions instead of
measuring them: the Dagster sensor (``defs.inbox_watch``) or ``benchmark-assets ingest`` asks
for a run of exactly those partitions and what follows them. No Dagster here: ``plan_look``
decides a look from what the disk showed, ``write_look`` stores it.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path, PurePosixPath
from types import MappingProxyType

import pandas as pd
import pandera.errors
import sqlalchemy as sa

from benchmark_assets.graph import StudyGraph
from benchmark_assets.kinds.base import INBOX_BASE, INBOX_SOURCE, SOURCE, IngestError, Node, NodeResult, Step
from benchmark_assets.locks import database_lock, file_lock
from benchmark_assets.study_file import studies_dir
from benchmark_assets.warehouse import Warehouse

INBOX_ENV = "BENCHMARK_ASSETS_INBOX"
FILES_TABLE = "inbox_files"
RELEASED_TABLE = "inbox_released"  # trials files gave up, until their partitions are stored again (empty)
INGESTED, REJECTED, DUPLICATE = "ingested", "rejected", "duplicate"
PATH_COLUMN = "inbox_path"  # the rows table's own column: which file a trial came from


def inbox_root() -> Path:
    """$BENCHMARK_ASSETS_INBOX, else ``inbox`` beside the studies folder."""
    configured = os.environ.get(INBOX_ENV, "").strip()
    return Path(configured).expanduser().resolve() if configured else studies_dir().parent / "inbox"


def inbox_folder(study) -> Path:
    return inbox_root() / study.name


def rows_table(graph: StudyGraph) -> str:
    return _rows_table(graph.name)


def _rows_table(name: str) -> str:
    return f"{name}__inbox"


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


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def candidate_files(graph: StudyGraph) -> tuple[list[tuple[Path, PurePosixPath]], int]:
    """(file, its path in the inbox) of every file the kind reads, in name order, and how many
    other files there are. Hidden files and those still being written (``.part``, ``.tmp``) wait."""
    folder = inbox_folder(graph)
    if not graph.inbox_files or not folder.is_dir():
        return [], 0
    everything = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    visible = [p for p in everything if not any(part.startswith(".") for part in p.relative_to(folder).parts)
               and p.suffix not in (".part", ".tmp")]
    # A pattern is a file name pattern: matched from the right, at any depth under the folder.
    claimed = [p for p in visible if any(p.relative_to(folder).match(pattern) for pattern in graph.inbox_files)]
    return [(p, PurePosixPath(p.relative_to(folder).as_posix())) for p in claimed], len(visible) - len(claimed)


def records(warehouse: Warehouse, study) -> pd.DataFrame:
    """The study's file records (one per path), empty if none."""
    return warehouse.read(FILES_TABLE, {"study": [study.name]}) if warehouse.has_table(FILES_TABLE) else pd.DataFrame()


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


def _schema_check(graph: StudyGraph) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The trials schema's check of one file's rows; IngestError naming the first problem."""
    study, node = graph.study, graph.trial_node

    def check(rows: pd.DataFrame) -> pd.DataFrame:
        if node.schema is None:
            return rows
        try:
            return node.schema(study).validate(rows, lazy=False)
        except (pandera.errors.SchemaError, pandera.errors.SchemaErrors) as error:
            first = (str(error).strip().splitlines() or ["invalid"])[0][:300]
            raise IngestError(f"its trials do not pass the {node.name} schema ({first}); fix the values in the file "
                              "(or, if the file is right, report the kind's ingest as a bug)") from None

    return check


def _failing_files(graph: StudyGraph, batch: list[tuple[str, pd.DataFrame]]) -> set[str]:
    """The files whose rows fail the trials schema, found with one pandera call for the whole
    look (lazy: every failing row), mapped back to their files; every file if the call itself fails."""
    study, node = graph.study, graph.trial_node
    if node.schema is None or not batch:
        return set()
    owners = [name for name, rows in batch for _ in range(len(rows))]
    try:
        node.schema(study).validate(pd.concat([rows for _, rows in batch], ignore_index=True), lazy=True)
    except pandera.errors.SchemaErrors as error:
        cases = error.failure_cases
        index = cases["index"] if "index" in cases else pd.Series(dtype=object)
        rows = {int(i) for i in index.dropna() if float(i).is_integer() and 0 <= int(i) < len(owners)}
        return {owners[i] for i in rows} if len(rows) == index.notna().sum() and rows else {n for n, _ in batch}
    except Exception:  # noqa: BLE001 - anything else: each file is checked on its own
        return {name for name, _ in batch}
    return set()


def scan(graph: StudyGraph, warehouse: Warehouse, *, say: Callable[[str], None] | None = None,
         limit: int | None = None, mark: int | None = None) -> Scan:
    """Read the study's new and changed inbox files (at most ``limit``; the rest wait for the
    next look) into the warehouse, in one transaction; one process at a time per study (a file
    lock beside a SQLite warehouse, a database lock on a shared server), so a sensor and a CLI
    never hand out one key twice. ``mark`` (the Dagster event log's newest record id when the
    look began) is kept with the trials it writes: they are stored once a materialisation after it
    holds them (``waiting_keys``)."""
    study, kind = graph.study, graph.kind
    waiting = f"waiting for another reader of {study.name}'s inbox ({{holder}})"
    url = sa.make_url(warehouse.url)
    folder = Path(url.database).resolve().parent if url.get_backend_name() == "sqlite" and url.database else None
    with file_lock(folder / "locks" / f"inbox_{study.name}.lock", say=say, waiting=waiting) if folder \
            else contextlib.nullcontext(), \
            database_lock(warehouse.url, f"benchmark_assets:inbox:{study.name}", say=say, waiting=waiting):
        files, ignored = candidate_files(graph)
        where = {relative.as_posix(): (path, relative) for path, relative in files}
        known = records(warehouse, study)
        look = partial(plan_look, study.name, study.spec_hash, seen_files(files),
                       known.to_dict("records") if len(known) else [], shape=trial_shape(study, kind),
                       ingest=lambda name, new_replicate: graph.ingest(*where[name], new_replicate),
                       validate=_schema_check(graph), limit=limit, mark=mark)
        plan = look()
        failing = _failing_files(graph, [(i.outcome.path, i.rows) for i in plan.ingested])
        if failing:  # read again, those files checked on their own (their reasons), the others as they were
            plan = look(check=failing)
        write_look(warehouse, plan)
        return plan.scan(inbox_folder(study), ignored)


# Planning a look: pure, from what the disk showed (``FileSeen``) and the study's file records.

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


def _stat(path: Path) -> str | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _fingerprint(path: Path) -> str | None:
    """The file's SHA-256; for a file that cannot be read, its size and time (reported once per
    change); None if it is gone."""
    try:
        return digest(path)
    except OSError:
        stat = _stat(path)
        return None if stat is None else f"unreadable:{stat}"


def seen_files(files: list[tuple[Path, PurePosixPath]]) -> list[FileSeen]:
    """What the disk says of each file (``candidate_files``): its size and time now, its content
    when first asked for (once, however many plans ask)."""
    return [FileSeen(relative.as_posix(), _stat(path), functools.cache(partial(_fingerprint, path)))
            for path, relative in files]


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


def write_look(warehouse: Warehouse, plan: LookPlan) -> None:
    """Everything a look decided, in one transaction: rows of the files ingested (those of
    trials given up go, and are kept as released until stored again), and the records."""
    if not plan.records:
        return
    study, point, replicate = plan.study, plan.shape.point, plan.shape.replicate
    table = _rows_table(study)
    released = list(plan.released)
    with warehouse.writing() as conn:
        if released and warehouse.has_table(table):
            frame = next((i.rows for i in plan.ingested), pd.DataFrame(columns=[point, replicate]))
            warehouse.replace_partitions(table, frame.iloc[0:0], [point, replicate], released, conn=conn)
        taken = [k for i in plan.ingested for k in i.outcome.keys]
        if plan.ingested:
            rows = pd.concat([i.rows.assign(**{PATH_COLUMN: i.outcome.path}) for i in plan.ingested],
                             ignore_index=True)
            warehouse.replace_partitions(table, rows, [point, replicate], taken, conn=conn)
        changed = [(study, p, r) for p, r in released + taken]
        given_up = pd.DataFrame([{"study": study, "point": p, "replicate": r, "mark": plan.mark}
                                 for p, r in released], columns=["study", "point", "replicate", "mark"])
        if changed and (released or warehouse.has_table(RELEASED_TABLE)):
            warehouse.replace_partitions(RELEASED_TABLE, given_up.astype({"mark": "int64"}),
                                         ["study", "point", "replicate"], changed, conn=conn)
        kept = pd.DataFrame([r for r in plan.records.values() if r is not None])
        warehouse.replace_partitions(FILES_TABLE, kept, ["study", "path"], [(study, p) for p in plan.records],
                                     conn=conn)


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


def ingested_rows(warehouse: Warehouse, graph: StudyGraph, keys: list[tuple[str, str]]) -> pd.DataFrame:
    """The inbox's trial rows of ``keys`` (point, replicate), without the inbox's own column."""
    wanted = {(str(p), str(r)) for p, r in keys if str(r).isdigit() and int(r) >= INBOX_BASE}
    if not wanted or not warehouse.has_table(rows_table(graph)):
        return pd.DataFrame()
    point, replicate = graph.point.name, graph.replicate.name
    rows = warehouse.read(rows_table(graph), {point: sorted({p for p, _ in wanted})})
    if rows.empty:
        return rows
    keep = [(str(p), str(r)) in wanted for p, r in zip(rows[point], rows[replicate])]
    rows = graph.upgraded(rows[keep].reset_index(drop=True))  # rows an older version stored
    return rows.assign(**{SOURCE: INBOX_SOURCE + rows[PATH_COLUMN].astype(str)}).drop(columns=[PATH_COLUMN])


def still_rejected(warehouse: Warehouse, study) -> list[Outcome]:
    """Files of the inbox, still there, whose newest content was rejected (or is a copy)."""
    known = records(warehouse, study)
    if known.empty:
        return []
    folder = inbox_folder(study)
    bad = known[(known["status"] != INGESTED)]
    return [Outcome(r["path"], r["digest"], r["status"], r["reason"]) for r in bad.to_dict("records")
            if (folder / r["path"]).is_file()]


def pending_keys(warehouse: Warehouse, study) -> list[tuple[str, str]]:
    """Every trial the inbox holds (point, replicate), in the order the files came."""
    return list(dict.fromkeys(key for key, _ in waiting_keys(warehouse, study, released=False)))


def waiting_keys(warehouse: Warehouse, study, *, released: bool = True) -> list[tuple[tuple[str, str], int]]:
    """(trial key, mark) of every trial the inbox holds, and of those files gave up: each is
    stored once a materialisation of its partition came after its mark (-1: any)."""
    known = records(warehouse, study)
    out: list[tuple[tuple[str, str], int]] = []
    if len(known):
        known = known.sort_values("seen_at")
        for record in known.to_dict("records"):
            out += [(k, _mark(record)) for k in _keys(record["trial_keys"])]
    if released and warehouse.has_table(RELEASED_TABLE):
        gone = warehouse.read(RELEASED_TABLE, {"study": [study.name]})
        out += [((str(p), str(r)), int(m)) for p, r, m in zip(gone["point"], gone["replicate"], gone["mark"])]
    return out


def inbox_range(graph: StudyGraph, keys) -> list[tuple[str, str]]:
    """The (point, replicate) keys of ``keys`` that belong to the inbox: from ``INBOX_BASE`` up
    and not one of the study's own replicate keys. Never measured; without rows, stored empty."""
    measured = set(graph.keys(graph.replicate))
    return [(str(p), str(r)) for p, r in keys
            if str(r).isdigit() and int(r) >= INBOX_BASE and str(r) not in measured]


def with_inbox(graph: StudyGraph, node: Node) -> Node:
    """The trials node, but partitions the inbox holds are its stored rows, never measured; a
    key from the inbox's range that it no longer holds (its file's new version has other keys)
    gives no rows, so its old ones go."""
    measure = node.compute

    def compute(study_, step: Step, **inputs) -> NodeResult:
        keys = [(str(p), str(r)) for p, r in step.partition_keys]
        inbox = inbox_range(graph, keys)
        if not inbox:
            return measure(study_, step, **inputs)
        rows = ingested_rows(Warehouse(step.warehouse_url), graph, inbox)
        step.log(f"{len(inbox)} trials come from result files in the inbox ({len(rows)} rows), not measured")
        rest = [k for k in keys if k not in set(inbox)]
        point, replicate = graph.point.name, graph.replicate.name
        held = len(set(zip(rows[point], rows[replicate]))) if len(rows) else 0
        frames, metadata = [rows], {"ingested_trials": held, "stored_empty": len(inbox) - held}
        if rest:
            with _narrowed(step, [k for k in step.partition_keys if (str(k[0]), str(k[1])) in set(rest)]):
                product = measure(study_, step, **inputs)
            frames.insert(0, product.frame)
            metadata = {**product.metadata, **metadata}
        frames = [f for f in frames if len(f)]
        frame = pd.concat(frames, ignore_index=True) if frames else no_trials(study_, node)
        return NodeResult(frame, metadata)

    return replace(node, compute=compute)


def no_trials(study, node: Node) -> pd.DataFrame:
    """No rows, with the trials schema's columns and types (partitions of keys no file holds)."""
    if node.schema is None:
        return pd.DataFrame()
    columns = node.schema(study).columns
    return pd.DataFrame({name: pd.Series(dtype=object if column.dtype is None or str(column.dtype) == "str"
                                         else column.dtype.type) for name, column in columns.items()})


class _narrowed:
    """The step, for a while, covering only some of its partitions."""

    def __init__(self, step: Step, keys: list):
        self._step, self._keys = step, keys

    def __enter__(self) -> Step:
        self._saved, self._step.partition_keys = self._step.partition_keys, self._keys
        return self._step

    def __exit__(self, *exc) -> None:
        self._step.partition_keys = self._saved
