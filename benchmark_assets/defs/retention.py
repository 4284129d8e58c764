"""Retention a team can set: what months of unattended runs leave behind, and what may go.

The policy keeps, per study, the newest ``keep_runs`` runs (their artifact folders and their
Dagster runs with their event logs), and whatever the audit trail needs whatever its age: every
run whose decision changed something in the ledger (a subject's first verdict, or one unlike the
verdict before it), the artifact folder of the report that first showed it, and every
run whose materialisation is still the latest of some asset partition (the UI's partition status
and the assets' values rest on them). Beyond that it removes: older artifact folders, older
Dagster runs of the study's assets and jobs, and study sensor states stored one key per state by
earlier versions. ``plan`` lists what would go (``benchmark-assets prune --dry-run``), ``apply``
removes it; the ``benchmark_assets__retention`` schedule applies it daily when
$BENCHMARK_ASSETS_KEEP_RUNS is set.
"""
import contextlib
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DefaultScheduleStatus,
    OpExecutionContext,
    ScheduleDefinition,
    job,
    op,
)

from benchmark_assets import artifacts
from benchmark_assets.defs.compat import IN_PROGRESS_RUN_STATUSES, cursor_keys, delete_cursor_values
from benchmark_assets.defs.tags import PARENT_RUN_TAG, STAGE_TAG, STUDY_RUN_TAG, STUDY_TAG
from benchmark_assets.graph import StudyGraph

KEEP_RUNS_ENV = "BENCHMARK_ASSETS_KEEP_RUNS"
DEFAULT_KEEP_RUNS = 20


def keep_runs_setting() -> int | None:
    """$BENCHMARK_ASSETS_KEEP_RUNS as a number of runs, None when unset."""
    text = os.environ.get(KEEP_RUNS_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"${KEEP_RUNS_ENV}={text!r}: expected a whole number of runs to keep per study, at least 1")
    return int(text)


@dataclass(frozen=True)
class Removal:
    """One thing retention removes: ``what`` (artifacts, run, state), its name, its size in bytes."""

    study: str
    what: str
    name: str
    size: int
    why: str

    def line(self) -> str:
        return f"{self.study}: {self.what} {self.name} ({_size(self.size)}): {self.why}"


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def folder_size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (links not followed)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _cited(ledger) -> dict[str, dict[str, float]]:
    """Per study, the runs whose decisions changed something, and when they were made: for each
    subject, the first decision and every one whose verdict, baseline or proposal differs from the
    one before it (a run that repeated the last verdict is cited by nothing new)."""
    out: dict[str, dict[str, float]] = {}
    if ledger is None or ledger.empty:
        return out
    previous: dict[tuple[str, str], tuple] = {}
    for row in ledger.sort_values("decided_at", kind="stable").itertuples(index=False):
        subject, said = (str(row.study), str(row.subject)), (row.decision, str(row.baseline), str(row.proposal))
        if previous.get(subject) != said:
            try:
                when = datetime.fromisoformat(str(row.decided_at)).timestamp()
            except ValueError:
                when = 0.0
            out.setdefault(str(row.study), {})[str(row.run_id)] = when
        previous[subject] = said
    return out


def _artifact_removals(study: str, keep: int, cited: dict[str, float]) -> list[Removal]:
    """Run folders under ``artifacts/<study>/`` beyond the newest ``keep``, less those of cited
    runs and the first report written at or after each cited decision, and what ``latest`` names."""
    root = artifacts.artifacts_dir(study)
    link = root / artifacts.LATEST
    latest = os.readlink(link) if link.is_symlink() else None
    written = {p: p.stat().st_mtime for p in root.iterdir()
               if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")}
    folders = sorted(written, key=written.get, reverse=True)
    kept = {p.name for p in folders[:keep]} | set(cited) | ({latest} if latest else set())
    for when in cited.values():  # the report that showed a decision made in another run (a follow-up's)
        after = [p for p in folders if written[p] >= when - 1]
        if after:
            kept.add(after[-1].name)
    return [Removal(study, "artifacts", str(p), folder_size(p), f"older than the newest {keep} runs' folders")
            for p in folders if p.name not in kept]


def _study_of(run) -> str | None:
    if STUDY_TAG in run.tags:
        return run.tags[STUDY_TAG]
    keys = run.asset_selection or set()
    return next(iter(keys)).path[0] if keys else None


def _holding_runs(instance: DagsterInstance, graph: StudyGraph) -> set[str]:
    """Runs whose materialisation is the latest of some partition (or of an unpartitioned asset)
    of the study: deleting them would change what the UI shows as materialised."""
    held: set[str] = set()
    unpartitioned = [n.name for n in graph.nodes.values() if n.partitioned_by is None] + ["regressions"]
    for name in [n.name for n in graph.nodes.values() if n.partitioned_by] + unpartitioned:
        key = AssetKey(graph.asset_path(name))
        if name in unpartitioned:
            event = instance.get_latest_materialization_event(key)
            if event is not None:
                held.add(event.run_id)
            continue
        ids = sorted(set(instance.event_log_storage.get_latest_storage_id_by_partition(
            key, DagsterEventType.ASSET_MATERIALIZATION).values()))
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            records = instance.fetch_materializations(AssetRecordsFilter(asset_key=key, storage_ids=chunk),
                                                      limit=len(chunk)).records
            held |= {record.run_id for record in records}
    return held


def _run_group(run) -> str:
    """Which study run a Dagster run belongs to: a job's run and its stages, one CLI invocation's
    stages (older versions did not tag them: each is its own), a backfill's run."""
    return run.tags.get(PARENT_RUN_TAG) or run.tags.get(STUDY_RUN_TAG) or run.run_id


def _run_removals(instance: DagsterInstance, graph: StudyGraph, keep: int, cited: Iterable[str],
                  waiting: Iterable[str] = ()) -> list[Removal]:
    """The study's finished Dagster runs outside its newest ``keep`` study runs (a job's run with
    its stages, one CLI invocation's stages, a backfill's run) that no ledger decision cites and
    that hold no latest materialisation."""
    in_flight = {s.value for s in IN_PROGRESS_RUN_STATUSES}
    runs = [r for r in instance.get_runs() if _study_of(r) == graph.name]  # newest first
    groups = list(dict.fromkeys(_run_group(r) for r in runs))
    newest = set(groups[:keep])
    # cited, holding a latest materialisation, with decisions waiting for a re-execution, or in flight
    protected = set(cited) | _holding_runs(instance, graph) | set(waiting)
    protected |= {r.run_id for r in runs if r.status.value in in_flight}
    protected |= {_run_group(r) for r in runs if r.run_id in protected}  # a kept stage keeps its job's run
    return [Removal(graph.name, "run", r.run_id, _shard_size(instance, r.run_id),
                    f"{r.tags.get(STAGE_TAG) or r.job_name}: older than the newest {keep} runs of the study, "
                    "superseded, cited by no decision")
            for r in runs if _run_group(r) not in newest and r.run_id not in protected and _run_group(r) not in protected]


def _shard_size(instance: DagsterInstance, run_id: str) -> int:
    """The bytes of a run's own event-log file (SQLite keeps one per run; 0 elsewhere)."""
    path = getattr(instance.event_log_storage, "path_for_shard", None)
    if path is None:
        return 0
    return sum(os.path.getsize(f) for f in (path(run_id) + s for s in ("", "-wal")) if os.path.exists(f))


def _state_removals(instance: DagsterInstance, graphs: list[StudyGraph]) -> list[Removal]:
    """Study sensor states an earlier version stored one key per state (now one key per study),
    but the one a sensor's cursor still names (a sensor that has not ticked since the upgrade)."""
    named = {state.instigator_data.cursor.split(":", 1)[0] for state in instance.all_instigator_state()
             if state.instigator_data is not None and getattr(state.instigator_data, "cursor", None)}
    out = []
    for graph in graphs:
        for key in cursor_keys(instance, f"benchmark_assets/study_state/{graph.name}/"):
            if key.rsplit("/", 1)[-1] not in named:
                out.append(Removal(graph.name, "state", key, 0, "a study sensor state stored by an earlier version"))
    return out


def plan(instance: DagsterInstance, graphs: list[StudyGraph], ledger, keep: int,
         waiting: Iterable[str] = ()) -> list[Removal]:
    """What the policy removes, study by study; nothing is touched. ``waiting``: runs whose
    decisions wait in the ledger for the run to be settled (they stay)."""
    cited = _cited(ledger)
    out: list[Removal] = []
    for graph in graphs:
        own = cited.get(graph.name, {})
        out += _artifact_removals(graph.name, keep, own)
        out += _run_removals(instance, graph, keep, own, waiting)
    return out + _state_removals(instance, graphs)


def apply(instance: DagsterInstance, removals: list[Removal]) -> None:
    """Remove what ``plan`` listed: folders, Dagster runs (with their event logs), stored states."""
    for removal in removals:
        if removal.what == "artifacts":
            shutil.rmtree(removal.name, ignore_errors=True)
        elif removal.what == "run":
            instance.delete_run(removal.name)
    delete_cursor_values(instance, [r.name for r in removals if r.what == "state"])
    if any(r.what == "run" for r in removals):
        compact_sqlite(instance)


def compact_sqlite(instance: DagsterInstance) -> bool:
    """Give the space of removed runs back to the disk: a SQLite file keeps its size until VACUUM
    (the runs' own shards are files, gone already; the index and the run list stay). VACUUM holds
    the file's write lock throughout, so it is done only while no run is in flight; False if not."""
    import sqlite3

    from dagster import RunsFilter

    if instance.get_runs(RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES)), limit=1):
        return False

    history = Path(instance.root_directory) / "history"
    for path in [history / "runs.db", history / "runs" / "index.db"]:
        if path.is_file():
            with contextlib.closing(sqlite3.connect(path, timeout=60)) as conn:
                conn.execute("VACUUM")
    return True


def prune(instance: DagsterInstance, keep: int, *, dry_run: bool, say=print) -> list[Removal]:
    """Plan for every study that loads, say each removal, apply unless ``dry_run``; the removals."""
    from benchmark_assets.defs.resources import study_resources
    from benchmark_assets.studies import discover

    graphs = [StudyGraph.of(study) for study in discover().studies]
    ledger = study_resources()["ledger"].open()
    removals = plan(instance, graphs, ledger.read(), keep, ledger.pending_runs())
    for removal in removals:
        say(("would remove " if dry_run else "removing ") + removal.line())
    if not dry_run:
        apply(instance, removals)
    say(summary(removals, dry_run=dry_run) + f" (keeping the newest {keep} runs per study, every run a decision "
        "cites and every run holding a latest materialisation)")
    return removals


RETENTION_JOB = "benchmark_assets__prune"


def build_retention_schedule():
    """``benchmark_assets__retention``: applies the policy daily at 03:30; running when
    $BENCHMARK_ASSETS_KEEP_RUNS is set (the number of runs to keep per study), stopped otherwise."""
    try:
        keep, problem = keep_runs_setting(), ""
    except ValueError as error:  # shown on the schedule's page; the definitions still load
        keep, problem = None, f" Not started: {error}."

    @op(name="prune_by_policy", description="Removes what the retention policy lets go (see the job's description).")
    def prune_by_policy(context: OpExecutionContext) -> None:
        prune(context.instance, keep_runs_setting() or DEFAULT_KEEP_RUNS, dry_run=False, say=context.log.info)

    @job(name=RETENTION_JOB, description=f"Keeps the newest ${KEEP_RUNS_ENV} (default {DEFAULT_KEEP_RUNS}) runs of "
         "each study, every run a ledger decision cites and every run holding a latest materialisation; removes "
         "older artifact folders, Dagster runs and stored sensor states. `benchmark-assets prune --dry-run` lists "
         "what it would remove.")
    def retention_job():
        prune_by_policy()

    return ScheduleDefinition(name="benchmark_assets__retention", cron_schedule="30 3 * * *", job=retention_job,
                              default_status=DefaultScheduleStatus.RUNNING if keep else DefaultScheduleStatus.STOPPED,
                              description=f"Applies the retention policy daily; running when ${KEEP_RUNS_ENV} is "
                                          f"set.{problem}")


def summary(removals: list[Removal], *, dry_run: bool) -> str:
    folders = [r for r in removals if r.what == "artifacts"]
    runs = [r for r in removals if r.what == "run"]
    states = [r for r in removals if r.what == "state"]
    verb = "would remove" if dry_run else "removed"
    return (f"{verb} {len(folders)} artifact folders ({_size(sum(r.size for r in folders))}), {len(runs)} Dagster "
            f"runs with their event logs ({_size(sum(r.size for r in runs))}) and {len(states)} stored sensor states")


__all__ = ["DEFAULT_KEEP_RUNS", "KEEP_RUNS_ENV", "RETENTION_JOB", "Removal", "apply", "build_retention_schedule", "folder_size",
           "keep_runs_setting", "plan", "prune", "summary"]
