"""Result files from the tools a team already has, ingested as trials: each study has an inbox
folder (``$BENCHMARK_ASSETS_INBOX/<study>/``, by default ``inbox/<study>/`` beside the studies
folder); a file its kind claims (``StudyKind.inbox_files``) is read once per content.

``scan`` reads the new and changed files: the kind turns each into trial rows (``StudyKind.ingest``),
they are checked against the trials schema and kept in the warehouse (``<study>__inbox``) with a
record per file (``inbox_files``: its digest, what became of it and why). A file that cannot be
used is recorded as rejected with the reason, and is not read again until it or the study changes.
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
RELEASED_TABLE = "inbox_released"  # trials files gave up, until their partitions are stored again (empty)
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
    # A pattern is a file name pattern: matched from the right, at any depth under the folder.
    claimed = [p for p in visible if any(p.relative_to(folder).match(pattern) for pattern in kind.inbox_files)]
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


def _validated(study, kind, rows: pd.DataFrame) -> pd.DataFrame:
    """The rows, checked against the trials schema; IngestError naming the first problem."""
    node = kind.trial_node()
    rows = _shaped(kind, rows)
    if node.schema is None:
        return rows
    try:
        return node.schema(study).validate(rows, lazy=False)
    except (pandera.errors.SchemaError, pandera.errors.SchemaErrors) as error:
        first = (str(error).strip().splitlines() or ["invalid"])[0][:300]
        raise IngestError(f"its trials do not pass the {node.name} schema ({first}); fix the values in the file "
                          "(or, if the file is right, report the kind's ingest as a bug)") from None


def _failing_files(study, kind, batch: list[tuple[str, pd.DataFrame]]) -> set[str]:
    """The files whose rows fail the trials schema, found with one pandera call for the whole
    look (lazy: every failing row), mapped back to their files; every file if the call itself fails."""
    node = kind.trial_node()
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


def scan(study, warehouse: Warehouse, *, say: Callable[[str], None] | None = None,
         limit: int | None = None, mark: int | None = None) -> Scan:
    """Read the study's new and changed inbox files (at most ``limit``; the rest wait for the
    next look) into the warehouse, in one transaction; one process at a time per study (a file
    lock beside a SQLite warehouse, a database lock on a shared server), so a sensor and a CLI
    never hand out one key twice. ``mark`` (the Dagster event log's newest record id when the
    look began) is kept with the trials it writes: they are stored once a materialisation after it
    holds them (``waiting_keys``)."""
    waiting = f"waiting for another reader of {study.name}'s inbox ({{holder}})"
    url = sa.make_url(warehouse.url)
    folder = Path(url.database).resolve().parent if url.get_backend_name() == "sqlite" and url.database else None
    with file_lock(folder / "locks" / f"inbox_{study.name}.lock", say=say, waiting=waiting) if folder \
            else contextlib.nullcontext(), \
            database_lock(warehouse.url, f"benchmark_assets:inbox:{study.name}", say=say, waiting=waiting):
        kind = kind_of(study)
        files, ignored = candidate_files(study)
        known = records(warehouse, study)
        plan = _Plan(study, kind, files, known, ignored, limit, mark)
        failing = _failing_files(study, kind, [(o.path, rows) for o, rows, _, _ in plan.ingested])
        if failing:  # read again, those files checked on their own (their reasons), the others as they were
            plan = _Plan(study, kind, files, known, ignored, limit, mark, check=failing)
        plan.write(warehouse)
        return plan.found


def _fingerprint(path: Path) -> str:
    """The file's SHA-256; for a file that cannot be read, its size and time (reported once per change)."""
    try:
        return digest(path)
    except OSError:
        stat = path.stat()  # gone meanwhile: FileNotFoundError, the caller skips it
        return f"unreadable:{stat.st_size}:{stat.st_mtime_ns}"


def _stat(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


class _Plan:
    """What one look at the inbox does, worked out file by file before anything is written: each
    file's outcome, the rows of those ingested, the trials given up, the records of files others
    replace or take trials from. Rows are checked against the schema by the caller, all at once;
    files in ``check`` are checked here, each on its own."""

    def __init__(self, study, kind, files, known: pd.DataFrame, ignored: int, limit: int | None,
                 mark: int | None, *, check: set[str] = frozenset()):
        self.study, self.kind, self.check = study, kind, set(check)
        self.mark = -1 if mark is None else int(mark)
        self.found = Scan(folder=inbox_folder(study), ignored=ignored)
        self.ingested: list[tuple[Outcome, pd.DataFrame, list, list]] = []  # outcome, rows, released, moved
        self.records: dict[str, dict] = {}  # path -> its record as this look leaves it (None: dropped)
        by_path = {r["path"]: dict(r) for r in known.to_dict("records")} if len(known) else {}
        present = {relative.as_posix() for _, relative in files}
        owner = {key: r["path"] for r in by_path.values() for key in _keys(r["trial_keys"])}
        used = {int(r) for _, r in owner}
        # The content whose trials each file holds (an ingested file, or a rejected one keeping
        # the trials of the version before it): a copy of it is a duplicate, a move takes them along.
        kept = {r["path"]: _kept(r) for r in by_path.values() if _kept(r)}
        for path, relative in files:
            if limit is not None and len(self.found.outcomes) >= limit:
                self.found.waiting += 1
                continue
            name = relative.as_posix()
            before = by_path.get(name)
            try:
                stat = _stat(path)
                same = before is not None and before.get("stat") == stat and not str(before["digest"]).startswith(
                    "unreadable:")
                content = before["digest"] if same else _fingerprint(path)  # unchanged size and time: not hashed
            except OSError:
                continue  # gone since it was listed
            holders = {d: p for p, d in kept.items() if p != name}
            original = holders.get(content)
            copy_of = original if original in present else None
            if before is not None and before["digest"] == content and (
                    before["status"] == INGESTED
                    or (before["status"] == REJECTED and before.get("study_hash") == study.spec_hash)
                    or (before["status"] == DUPLICATE and copy_of is not None)):
                self.found.unchanged += 1  # a rejected file is read again once the study changed
                if before.get("stat") != stat:
                    self.records[name] = {**before, "stat": stat}  # next time, not hashed
                continue
            earlier = _keys(before["trial_keys"]) if before is not None else []
            moved = original if original is not None and copy_of is None else None
            if copy_of is not None:
                outcome, rows = Outcome(name, content, DUPLICATE, f"the same content as {copy_of}, whose trials "
                                        "are ingested; delete the copy"), pd.DataFrame()
            elif content.startswith("unreadable:"):
                outcome, rows = Outcome(name, content, REJECTED, "it cannot be read (permissions?); make it "
                                        "readable"), pd.DataFrame()
            else:
                # A file moved or renamed (its content's trials are held under a name no longer
                # there) takes them along: their keys are offered to it first.
                offered = earlier + [k for k in (_keys(by_path[moved]["trial_keys"]) if moved else [])
                                     if k not in earlier]
                outcome, rows = self._read(path, relative, content, offered, used, owner, present)
            if outcome.status != INGESTED:
                # A rejected new version keeps the trials of the version before it (nothing is lost).
                keeps = before is not None and bool(earlier)
                self.records[name] = self._record(replace(outcome, keys=tuple(earlier)), stat,
                                                  kept=_kept(before) if keeps else "",
                                                  mark=_mark(before) if keeps else -1)
                self.found.outcomes.append(outcome)
                continue
            # Keys of files no longer in the inbox that this one brings: taken from them (a
            # deleted file keeps the rest of its trials; a moved one is this file now).
            losers = {owner[k] for k in outcome.keys if owner.get(k, name) != name} - {moved}
            for loser in losers:
                remaining = [k for k in _keys(by_path[loser]["trial_keys"]) if k not in outcome.keys]
                by_path[loser]["trial_keys"] = json.dumps(remaining)
                self.records[loser] = by_path[loser] if remaining else None
                if not remaining:
                    kept.pop(loser, None)
            moved_keys = _keys(by_path[moved]["trial_keys"]) if moved else []
            # Trials of its earlier version, or of the file it moved from, that it does not keep:
            # given up, so their partitions are stored again, empty.
            released = [k for k in dict.fromkeys(earlier + moved_keys) if k not in outcome.keys]
            if moved:
                self.records[moved] = None
                by_path.pop(moved, None)
                kept.pop(moved, None)
            self.ingested.append((outcome, rows, released, [moved] if moved else []))
            owner = {k: v for k, v in owner.items() if v != moved and k not in released}
            owner.update(dict.fromkeys(outcome.keys, name))
            used |= {int(r) for _, r in outcome.keys}
            kept[name] = content
            by_path[name] = self.records[name] = self._record(outcome, stat, kept=content, mark=self.mark)
            self.found.outcomes.append(outcome)
            self.found.released += [k for k in released if k not in self.found.released]
        # A key given up by one file and taken by a later one in the same look is not given up.
        taken = {k for outcome, _, _, _ in self.ingested for k in outcome.keys}
        self.found.released = [k for k in self.found.released if k not in taken]

    def _record(self, outcome: Outcome, stat: str, *, kept: str, mark: int) -> dict:
        return {"study": self.study.name, "path": outcome.path, "digest": outcome.digest, "kept_digest": kept,
                "status": outcome.status, "reason": outcome.reason,
                "trial_keys": json.dumps([list(k) for k in outcome.keys]), "rows": int(outcome.rows),
                "study_hash": self.study.spec_hash, "stat": stat, "mark": mark,
                "seen_at": pd.Timestamp.now(tz="UTC").isoformat()}

    def _read(self, path: Path, relative: PurePosixPath, content: str, earlier: list[tuple[str, str]],
              used: set[int], owner: dict, present: set[str]) -> tuple[Outcome, pd.DataFrame]:
        study, kind = self.study, self.kind
        name = relative.as_posix()
        mine = {int(r) for _, r in earlier}
        replicates = _Replicates(used - mine, sorted(mine))
        try:
            rows = kind.ingest(study, path, relative, replicates)
            rows = _validated(study, kind, rows) if name in self.check else _shaped(kind, rows)
        except IngestError as error:
            return Outcome(name, content, REJECTED, _own_words(str(error), path.name)), pd.DataFrame()
        except Exception as error:  # noqa: BLE001 - a parser's bug must not stop the other files; it is reported
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
        trials given up go, and are kept as released until stored again), and the records."""
        if not self.records:
            return
        study, point, replicate = self.study, self.kind.point.name, self.kind.replicate.name
        table = rows_table(study)
        released = self.found.released
        with warehouse.writing() as conn:
            if released and warehouse.has_table(table):
                frame = next((rows for _, rows, _, _ in self.ingested), pd.DataFrame(columns=[point, replicate]))
                warehouse.replace_partitions(table, frame.iloc[0:0], [point, replicate], released, conn=conn)
            taken = [k for o, _, _, _ in self.ingested for k in o.keys]
            if self.ingested:
                rows = pd.concat([rows.assign(**{PATH_COLUMN: o.path}) for o, rows, _, _ in self.ingested],
                                 ignore_index=True)
                warehouse.replace_partitions(table, rows, [point, replicate], taken, conn=conn)
            changed = [(study.name, p, r) for p, r in released + taken]
            given_up = pd.DataFrame([{"study": study.name, "point": p, "replicate": r, "mark": self.mark}
                                     for p, r in released], columns=["study", "point", "replicate", "mark"])
            if changed and (released or warehouse.has_table(RELEASED_TABLE)):
                warehouse.replace_partitions(RELEASED_TABLE, given_up.astype({"mark": "int64"}),
                                             ["study", "point", "replicate"], changed, conn=conn)
            kept = pd.DataFrame([r for r in self.records.values() if r is not None])
            warehouse.replace_partitions(FILES_TABLE, kept, ["study", "path"],
                                         [(study.name, p) for p in self.records], conn=conn)


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
        kind = kind_of(study_)
        point, replicate = kind.point.name, kind.replicate.name
        held = len(set(zip(rows[point], rows[replicate]))) if len(rows) else 0
        frames, metadata = [rows], {"ingested_trials": held, "stored_empty": len(inbox) - held}
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
