"""Result files from the tools a team already has, ingested as trials: each study has an inbox
folder (``$BENCHMARK_ASSETS_INBOX/<study>/``, by default ``inbox/<study>/`` beside the studies
folder); a file its kind claims (``kinds.capabilities.Ingests.inbox_files``) is read once per content.

``scan`` reads the new and changed files: the kind turns each into trial rows (``Ingests.ingest``),
they are checked against the trials schema and kept in the warehouse (``<study>__inbox``) with a
record per file (``inbox_files``: its digest, what became of it and why). A file that cannot be
used is recorded as rejected with the reason, and is not read again until it or the study changes.
The trials node, wrapped by ``with_inbox``, then stores those rows as its partitions instead of
measuring them: the Dagster sensor (``defs.inbox_watch``) or ``benchmark-assets ingest`` asks
for a run of exactly those partitions and what follows them. No Dagster here: ``inbox_plan.plan_look``
decides a look from what the disk showed, ``write_look`` stores it.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path, PurePosixPath

import pandas as pd
import pandera.errors
import sqlalchemy as sa

from benchmark_assets.graph import StudyGraph
from benchmark_assets.inbox_plan import (
    INGESTED,
    FileSeen,
    LookPlan,
    Outcome,
    Scan,
    _keys,
    _mark,
    plan_look,
    trial_shape,
)
from benchmark_assets.kinds.base import INBOX_BASE, INBOX_SOURCE, SOURCE, IngestError, Node, NodeResult, Step
from benchmark_assets.locks import database_lock, file_lock
from benchmark_assets.study_file import studies_dir
from benchmark_assets.warehouse import Warehouse

INBOX_ENV = "BENCHMARK_ASSETS_INBOX"
FILES_TABLE = "inbox_files"
RELEASED_TABLE = "inbox_released"  # trials files gave up, until their partitions are stored again (empty)
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
