"""Result files from the tools a team already has, ingested as trials: each study has an inbox
folder (``$BENCHMARK_ASSETS_INBOX/<study>/``, by default ``inbox/<study>/`` beside the studies
folder); a file its kind claims (``StudyKind.inbox_files``) is read once per content.

``scan`` reads the new and changed files: the kind turns each into trial rows (``StudyKind.ingest``),
they are checked against the trials schema and kept in the warehouse (``<study>__inbox``) with a
record per file (``inbox_files``: its digest, what became of it and why). A file that cannot be
used is recorded as rejected with the reason, and is not read again until its content changes.
The trials node, wrapped by ``with_inbox``, then stores those rows as its partitions instead of
measuring them: the Dagster sensor (``defs.inbox_watch``) or ``benchmark-assets ingest`` asks
for a run of exactly those partitions and what follows them. No Dagster here.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import pandas as pd
import pandera.errors
import sqlalchemy as sa

from benchmark_assets.kinds import kind_of
from benchmark_assets.kinds.base import INBOX_BASE, IngestError, Node, Product, Step
from benchmark_assets.locks import database_lock, file_lock
from benchmark_assets.study_file import studies_dir
from benchmark_assets.warehouse import Warehouse

INBOX_ENV = "BENCHMARK_ASSETS_INBOX"
FILES_TABLE = "inbox_files"
INGESTED, REJECTED, DUPLICATE = "ingested", "rejected", "duplicate"
PATH_COLUMN = "inbox_path"  # the rows table's own column: which file a trial came from


def inbox_root() -> Path:
    """$BENCHMARK_ASSETS_INBOX, else ``inbox`` beside the studies folder."""
    configured = os.environ.get(INBOX_ENV, "").strip()
    return Path(configured).expanduser().resolve() if configured else studies_dir().parent / "inbox"


def inbox_folder(study) -> Path:
    return inbox_root() / study.name


def rows_table(study) -> str:
    return f"{study.name}__inbox"


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


def candidate_files(study) -> tuple[list[tuple[Path, PurePosixPath]], int]:
    """(file, its path in the inbox) of every file the kind reads, in name order, and how many
    other files there are. Hidden files and those still being written (``.part``, ``.tmp``) wait."""
    kind, folder = kind_of(study), inbox_folder(study)
    if not kind.inbox_files or not folder.is_dir():
        return [], 0
    everything = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    visible = [p for p in everything if not any(part.startswith(".") for part in p.relative_to(folder).parts)
               and p.suffix not in (".part", ".tmp")]
    claimed = [p for p in visible if any(p.relative_to(folder).match(pattern) or p.match(pattern)
                                         for pattern in kind.inbox_files)]
    return [(p, PurePosixPath(p.relative_to(folder).as_posix())) for p in claimed], len(visible) - len(claimed)


def records(warehouse: Warehouse, study) -> pd.DataFrame:
    """The study's file records (one per path), empty if none."""
    table = warehouse.read(FILES_TABLE, {"study": [study.name]}) if warehouse.has_table(FILES_TABLE) else pd.DataFrame()
    return table


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


def _validated(study, kind, rows: pd.DataFrame) -> pd.DataFrame:
    """The rows, checked against the trials schema; IngestError naming the first problem."""
    node = kind.trial_node()
    point, replicate = kind.point.name, kind.replicate.name
    if rows.empty:
        raise IngestError("it holds no trials this study can use")
    missing = [c for c in (point, replicate, "status", "error") if c not in rows]
    if missing:
        raise IngestError(f"the {kind.name} kind made rows without {missing} (a bug in its ingest)")
    if node.schema is None:
        return rows.reset_index(drop=True)
    try:
        return node.schema(study).validate(rows.reset_index(drop=True), lazy=False)
    except (pandera.errors.SchemaError, pandera.errors.SchemaErrors) as error:
        first = (str(error).strip().splitlines() or ["invalid"])[0][:300]
        raise IngestError(f"its trials do not pass the {node.name} schema ({first}); fix the values in the file "
                          "(or, if the file is right, report the kind's ingest as a bug)") from None


def _all_valid(study, kind, frames: list[pd.DataFrame]) -> bool:
    """Whether the rows of every file pass the trials schema together (one pandera call for a
    whole batch: the common case; a batch that fails is read again file by file)."""
    node = kind.trial_node()
    if node.schema is None or not frames:
        return True
    try:
        node.schema(study).validate(pd.concat(frames, ignore_index=True), lazy=False)
    except (pandera.errors.SchemaError, pandera.errors.SchemaErrors):
        return False
    return True


def scan(study, warehouse: Warehouse, *, say: Callable[[str], None] | None = None,
         limit: int | None = None) -> Scan:
    """Read the study's new and changed inbox files (at most ``limit``; the rest wait for the
    next look) into the warehouse, in one transaction; one process at a time per study (a file
    lock beside a SQLite warehouse, a database lock on a shared server), so a sensor and a CLI
    never hand out one key twice."""
    waiting = f"waiting for another reader of {study.name}'s inbox ({{holder}})"
    url = sa.make_url(warehouse.url)
    folder = Path(url.database).resolve().parent if url.get_backend_name() == "sqlite" and url.database else None
    with file_lock(folder / "locks" / f"inbox_{study.name}.lock", say=say, waiting=waiting) if folder \
            else contextlib.nullcontext(), \
            database_lock(warehouse.url, f"benchmark_assets:inbox:{study.name}", say=say, waiting=waiting):
        kind = kind_of(study)
        files, ignored = candidate_files(study)
        known = records(warehouse, study)
        plan = _Plan(study, kind, files, known, ignored, limit, validate_each=False)
        if not _all_valid(study, kind, [rows for _, rows, _, _ in plan.ingested]):
            plan = _Plan(study, kind, files, known, ignored, limit, validate_each=True)
        plan.write(warehouse)
        return plan.found


def _fingerprint(path: Path) -> str:
    """The file's SHA-256; for a file that cannot be read, its size and time (reported once per change)."""
    try:
        return digest(path)
    except OSError:
        stat = path.stat()  # gone meanwhile: FileNotFoundError, the caller skips it
        return f"unreadable:{stat.st_size}:{stat.st_mtime_ns}"


class _Plan:
    """What one look at the inbox does, worked out file by file before anything is written: each
    file's outcome, the rows of those ingested, the trials given up, the records of files that
    others replace. ``validate_each``: check each file's rows against the schema on its own (else
    the caller checks them all at once)."""

    def __init__(self, study, kind, files, known: pd.DataFrame, ignored: int, limit: int | None,
                 *, validate_each: bool):
        self.study, self.kind, self.validate_each = study, kind, validate_each
        self.found = Scan(folder=inbox_folder(study), ignored=ignored)
        self.ingested: list[tuple[Outcome, pd.DataFrame, list, list]] = []  # outcome, rows, released, gone
        self.rejected: list[Outcome] = []
        by_path = {r["path"]: r for r in known.to_dict("records")} if len(known) else {}
        present = {relative.as_posix() for _, relative in files}
        owner = {key: r["path"] for r in by_path.values() for key in _keys(r["trial_keys"])}
        used = {int(r) for _, r in owner}
        ingested_digests = {r["digest"]: r["path"] for r in by_path.values() if r["status"] == INGESTED}
        for path, relative in files:
            if limit is not None and len(self.found.outcomes) >= limit:
                self.found.waiting += 1
                continue
            name = relative.as_posix()
            try:
                content = _fingerprint(path)
            except OSError:
                continue  # gone since it was listed
            before = by_path.get(name)
            original = ingested_digests.get(content)
            copy_of = original if original not in (None, name) and original in present else None
            if before is not None and before["digest"] == content and (
                    before["status"] == INGESTED
                    or before["status"] == REJECTED and before.get("study_hash") == study.spec_hash
                    or before["status"] == DUPLICATE and copy_of is not None):
                self.found.unchanged += 1  # a rejected file is read again once the study changed
                continue
            earlier = _keys(before["trial_keys"]) if before is not None else []
            if copy_of is not None:
                outcome, rows, gone = (Outcome(name, content, DUPLICATE, f"the same content as {copy_of}, which is "
                                               "ingested; delete the copy"), pd.DataFrame(), [])
            elif content.startswith("unreadable:"):
                outcome, rows, gone = (Outcome(name, content, REJECTED, "it cannot be read (permissions?); make it "
                                               "readable"), pd.DataFrame(), [])
            else:
                # A file moved or renamed (its content is ingested under a name no longer there)
                # takes over that file's trials: their keys are offered to it first.
                moved = original if original not in (None, name) else None
                offered = earlier + [k for k in (_keys(by_path[moved]["trial_keys"]) if moved else [])
                                     if k not in earlier]
                outcome, rows = self._read(path, relative, content, offered, used, owner, present)
                gone = sorted({owner[k] for k in outcome.keys if owner.get(k, name) != name} | {moved} - {None})
            if outcome.status != INGESTED:
                # A rejected new version keeps the trials of the version before it (nothing is lost).
                self.rejected.append(replace(outcome, keys=tuple(earlier)))
                self.found.outcomes.append(outcome)
                continue
            # Trials of this file's earlier version, or of files it replaces, that it does not
            # keep: given up, so their partitions are stored again, empty.
            replaced = [k for g in gone for k in _keys(by_path[g]["trial_keys"])]
            released = [k for k in dict.fromkeys(earlier + replaced) if k not in outcome.keys]
            self.ingested.append((outcome, rows, released, gone))
            for g in gone:
                by_path.pop(g, None)
            owner = {k: v for k, v in owner.items() if v not in gone and k not in released}
            owner.update(dict.fromkeys(outcome.keys, name))
            used |= {int(r) for _, r in outcome.keys}
            ingested_digests = {d: p for d, p in ingested_digests.items() if p not in gone}
            ingested_digests[content] = name
            by_path[name] = {"digest": content, "trial_keys": json.dumps(outcome.keys), "status": INGESTED}
            self.found.outcomes.append(outcome)
            self.found.released += [k for k in released if k not in self.found.released]
        # A key given up by one file and taken by a later one in the same look is not given up.
        taken = {k for outcome, _, _, _ in self.ingested for k in outcome.keys}
        self.found.released = [k for k in self.found.released if k not in taken]

    def _read(self, path: Path, relative: PurePosixPath, content: str, earlier: list[tuple[str, str]],
              used: set[int], owner: dict, present: set[str]) -> tuple[Outcome, pd.DataFrame]:
        study, kind = self.study, self.kind
        name = relative.as_posix()
        mine = {int(r) for _, r in earlier}
        replicates = _Replicates(used - mine, sorted(mine))
        try:
            rows = kind.ingest(study, path, relative, replicates)
            rows = _validated(study, kind, rows) if self.validate_each else _shaped(kind, rows)
        except IngestError as error:
            return Outcome(name, content, REJECTED, _own_words(str(error), path.name)), pd.DataFrame()
        except Exception as error:  # a parser's bug must not stop the other files; it is reported
            return Outcome(name, content, REJECTED, f"{type(error).__name__}: {error}"), pd.DataFrame()
        point, replicate = kind.point.name, kind.replicate.name
        keys = tuple(dict.fromkeys((str(p), str(r)) for p, r in zip(rows[point], rows[replicate])))
        measured = set(kind.replicate.keys(study))
        bad = [r for _, r in keys if int(r) < INBOX_BASE or r in measured]
        if bad:
            why = ("below the inbox's keys" if int(bad[0]) < INBOX_BASE
                   else f"one of {study.name}'s own {replicate} keys")
            return Outcome(name, content, REJECTED, f"its {replicate} key {bad[0]} is {why} (from {INBOX_BASE:,} up, "
                           f"apart from the study's own); give it another {replicate}"), pd.DataFrame()
        taken = [(k, owner[k]) for k in keys if owner.get(k, name) != name and owner[k] in present]
        if taken:
            (p, r), other = taken[0]
            return Outcome(name, content, REJECTED, f"{point} {p}, {replicate} {int(r) - INBOX_BASE} of the inbox "
                           f"(key {r}) already came from {other}; give this file another {replicate} or delete one "
                           "of them"), pd.DataFrame()
        return Outcome(name, content, INGESTED, "", keys, len(rows)), rows

    def write(self, warehouse: Warehouse) -> None:
        """Everything the look decided, in one transaction: rows of the files ingested (those of
        trials given up go), the records of every file read, and of files others replaced, gone."""
        if not (self.ingested or self.rejected):
            return
        study, point, replicate = self.study, self.kind.point.name, self.kind.replicate.name
        table = rows_table(study)
        with warehouse.writing() as conn:
            released = [k for k in self.found.released]
            if released and warehouse.has_table(table):
                frame = next((rows for _, rows, _, _ in self.ingested), pd.DataFrame(columns=[point, replicate]))
                warehouse.replace_partitions(table, frame.iloc[0:0], [point, replicate], released, conn=conn)
            if self.ingested:
                rows = pd.concat([rows.assign(**{PATH_COLUMN: o.path}) for o, rows, _, _ in self.ingested],
                                 ignore_index=True)
                keys = [k for o, _, _, _ in self.ingested for k in o.keys]
                warehouse.replace_partitions(table, rows, [point, replicate], keys, conn=conn)
            gone = sorted({g for _, _, _, files in self.ingested for g in files})
            outcomes = [o for o, _, _, _ in self.ingested] + self.rejected
            paths = list(dict.fromkeys(gone + [o.path for o in outcomes]))
            now = pd.Timestamp.now(tz="UTC").isoformat()
            frame = pd.DataFrame([{"study": study.name, "path": o.path, "digest": o.digest, "status": o.status,
                                   "reason": o.reason, "trial_keys": json.dumps([list(k) for k in o.keys]),
                                   "rows": int(o.rows), "study_hash": study.spec_hash, "seen_at": now}
                                  for o in outcomes])
            warehouse.replace_partitions(FILES_TABLE, frame, ["study", "path"], [(study.name, p) for p in paths],
                                         conn=conn)


def _shaped(kind, rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with the columns every trial has (the schema is checked for the whole look)."""
    point, replicate = kind.point.name, kind.replicate.name
    if rows.empty:
        raise IngestError("it holds no trials this study can use")
    missing = [c for c in (point, replicate, "status", "error") if c not in rows]
    if missing:
        raise IngestError(f"the {kind.name} kind made rows without {missing} (a bug in its ingest)")
    return rows.reset_index(drop=True)


def _own_words(reason: str, name: str) -> str:
    """A parser's message without the file's name at its start (the outcome line names the file)."""
    if reason.startswith(f"{name}: "):
        return reason[len(name) + 2:]
    return "it" + reason[len(name):] if reason.startswith(f"{name} ") else reason


def ingested_rows(warehouse: Warehouse, study, keys: list[tuple[str, str]]) -> pd.DataFrame:
    """The inbox's trial rows of ``keys`` (point, replicate), without the inbox's own column."""
    kind = kind_of(study)
    wanted = {(str(p), str(r)) for p, r in keys if str(r).isdigit() and int(r) >= INBOX_BASE}
    if not wanted or not warehouse.has_table(rows_table(study)):
        return pd.DataFrame()
    point, replicate = kind.point.name, kind.replicate.name
    rows = warehouse.read(rows_table(study), {point: sorted({p for p, _ in wanted})})
    if rows.empty:
        return rows
    keep = [(str(p), str(r)) in wanted for p, r in zip(rows[point], rows[replicate])]
    return rows[keep].drop(columns=[PATH_COLUMN]).reset_index(drop=True)


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
    known = records(warehouse, study)
    if known.empty:
        return []
    known = known[known["status"] == INGESTED].sort_values("seen_at")
    return list(dict.fromkeys(k for text in known["trial_keys"] for k in _keys(text)))


def inbox_range(study, keys) -> list[tuple[str, str]]:
    """The (point, replicate) keys of ``keys`` that belong to the inbox: from ``INBOX_BASE`` up
    and not one of the study's own replicate keys. Never measured; without rows, stored empty."""
    measured = set(kind_of(study).replicate.keys(study))
    return [(str(p), str(r)) for p, r in keys
            if str(r).isdigit() and int(r) >= INBOX_BASE and str(r) not in measured]


def with_inbox(study, node: Node) -> Node:
    """The trials node, but partitions the inbox holds are its stored rows, never measured; a
    key from the inbox's range that it no longer holds (its file's new version has other keys)
    gives no rows, so its old ones go."""
    measure = node.compute

    def compute(study_, step: Step, **inputs) -> Product:
        keys = [(str(p), str(r)) for p, r in step.partition_keys]
        inbox = inbox_range(study_, keys)
        if not inbox:
            return measure(study_, step, **inputs)
        rows = ingested_rows(Warehouse(step.warehouse_url), study_, inbox)
        step.log(f"{len(inbox)} trials come from result files in the inbox ({len(rows)} rows), not measured")
        rest = [k for k in keys if k not in set(inbox)]
        frames, metadata = [rows], {"ingested_trials": len(inbox)}
        if rest:
            with _only(step, [k for k in step.partition_keys if (str(k[0]), str(k[1])) in set(rest)]):
                product = measure(study_, step, **inputs)
            frames.insert(0, product.frame)
            metadata = {**product.metadata, **metadata}
        frames = [f for f in frames if len(f)]
        frame = pd.concat(frames, ignore_index=True) if frames else no_trials(study_, node)
        return Product(frame, metadata)

    return replace(node, compute=compute)


def no_trials(study, node: Node) -> pd.DataFrame:
    """No rows, with the trials schema's columns and types (partitions of keys no file holds)."""
    if node.schema is None:
        return pd.DataFrame()
    columns = node.schema(study).columns
    return pd.DataFrame({name: pd.Series(dtype=object if column.dtype is None or str(column.dtype) == "str"
                                         else column.dtype.type) for name, column in columns.items()})


class _only:
    """The step, for a while, covering only some of its partitions."""

    def __init__(self, step: Step, keys: list):
        self._step, self._keys = step, keys

    def __enter__(self) -> Step:
        self._saved, self._step.partition_keys = self._step.partition_keys, self._keys
        return self._step

    def __exit__(self, *exc) -> None:
        self._step.partition_keys = self._saved
