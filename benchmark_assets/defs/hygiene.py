"""Keeping an instance healthy without a person: runs whose process is gone, decisions of runs
that ended, and who holds a concurrency pool a run waits for."""

import os
import socket
import time

import sqlalchemy.exc
from dagster import DagsterRunStatus, DefaultSensorStatus, RunsFilter, SensorEvaluationContext, SkipReason, sensor

from benchmark_assets.defs.resources import LedgerResource
from benchmark_assets.defs.tags import HOST_TAG, PID_TAG
from benchmark_assets.defs.ticks import sensor_interval
from benchmark_assets.processes import process_alive


def reclaim_abandoned_runs(instance) -> list[str]:
    """Mark failed every unfinished run that a process on this host started and that process is
    gone (killed with SIGKILL, the machine's OOM killer...), and free the concurrency-pool slots
    it held: otherwise it stays STARTED forever and later load trials on its endpoint wait
    forever. Returns one line per run reclaimed."""
    reclaimed = []
    unfinished = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.NOT_STARTED,
                  DagsterRunStatus.CANCELING]
    for run in instance.get_runs(RunsFilter(statuses=unfinished, tags={HOST_TAG: socket.gethostname()})):
        pid = int(run.tags.get(PID_TAG, "0") or 0)
        if pid <= 0 or pid == os.getpid() or process_alive(pid):
            continue
        instance.report_run_failed(run, message=f"the process that ran it (pid {pid}) is gone; marked failed by "
                                               f"benchmark-assets (pid {os.getpid()})")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reclaimed.append(f"run {run.run_id} (pid {pid}, gone) marked failed; its pool slots are free again")
    return reclaimed


# How long the decisions of a failed run wait for a re-execution that completes it.
KEEP_FAILED_DECISIONS_SECONDS = 7 * 24 * 3600


def _completed_by_reexecution(instance, run) -> str | None:
    """The id of a later run of the same run group (a re-execution "from failure" in the UI) that
    succeeded: it completed what ``run`` decided."""
    root = run.tags.get("dagster/root_run_id", run.run_id)
    for other in instance.get_runs(RunsFilter(tags={"dagster/root_run_id": root}, statuses=[DagsterRunStatus.SUCCESS])):
        if other.run_id != run.run_id:
            return other.run_id
    return None


def settle_finished_runs(instance, ledger) -> list[str]:
    """Decisions of runs that have ended: those of a run that succeeded, or that failed and was then
    re-executed to success, join the ledger; those of a run that failed or was canceled and stayed
    so for ``KEEP_FAILED_DECISIONS_SECONDS`` are dropped; a run still going keeps them waiting.
    Runs this instance does not know (another Dagster home sharing the warehouse) are left to that
    home. Returns one line per run settled or dropped."""
    lines = []
    for run_id in ledger.pending_runs():
        run = instance.get_run_by_id(run_id)
        if run is None:
            continue
        if run.status == DagsterRunStatus.SUCCESS:
            lines.append(f"run {run_id} succeeded: {ledger.settle(run_id)} decisions joined the ledger")
        elif run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            completed_by = _completed_by_reexecution(instance, run)
            record = instance.get_run_record_by_id(run_id)
            ended = record.end_time if record and record.end_time else time.time()
            if completed_by:
                lines.append(f"run {run_id} failed, its re-execution {completed_by} succeeded: "
                             f"{ledger.settle(run_id)} decisions joined the ledger")
            elif time.time() - ended > KEEP_FAILED_DECISIONS_SECONDS:
                lines.append(f"run {run_id} {run.status.value.lower()} and was not re-executed: its "
                             f"{ledger.discard(run_id)} decisions were dropped, not put in the ledger")
    return lines


def build_ledger_sensor():
    """``ledger_settlement``: moves the decisions of runs launched from the UI (or anywhere) into
    the ledger once they succeed, and drops those of runs that failed. The CLI settles its own
    runs at once; this catches every other run within a tick."""

    @sensor(name="ledger_settlement", minimum_interval_seconds=sensor_interval(15), default_status=DefaultSensorStatus.RUNNING,
            description="Puts a run's decisions into the ledger when it succeeds; drops them when it fails.")
    def ledger_settlement(context: SensorEvaluationContext, ledger: LedgerResource):
        lines = settle_finished_runs(context.instance, ledger.open())
        return SkipReason("; ".join(lines) if lines else "no decisions waiting for a run that has ended")

    return ledger_settlement


def pool_holders(instance, pool: str) -> list[str]:
    """Who holds a pool's slots when they are all taken: one line per run, for a waiting message."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    if info.slot_count == 0 or len(info.claimed_slots) < info.slot_count:
        return []
    lines = []
    for run_id in sorted(info.active_run_ids):
        run = instance.get_run_by_id(run_id)
        who = f"pid {run.tags.get(PID_TAG)} on {run.tags.get(HOST_TAG)}" if run and PID_TAG in run.tags else "the UI or a daemon"
        lines.append(f"pool {pool} is held by run {run_id} ({who}, {run.status.value if run else 'unknown'}); "
                     f"to free it stop that run, or: dagster instance concurrency set {pool} 1 after checking it is dead")
    return lines


def ensure_pool_limit(instance, pool: str, limit: int = 1) -> None:
    """Give an endpoint's pool its limit unless someone already set one (UI or `dagster instance
    concurrency set`): load trials on one server must never overlap, across runs too."""
    storage = instance.event_log_storage
    if storage.get_concurrency_info(pool).slot_count == 0:
        try:
            storage.set_concurrency_slots(pool, limit)
        except sqlalchemy.exc.IntegrityError:
            pass  # another process set it up at the same moment: the limit is there


# Per partition, measured with `benchmarks/scale.py --sizes 3600 --storage ours,stock,postgres` on
# the project's 2-core machine (docs/figures.md, "Scale"): the stock event logs write each event alone.
STOCK_MS_PER_PARTITION = {"SqliteEventLogStorage": 15.1, "PostgresEventLogStorage": 11.0}
OURS_MS_PER_PARTITION = 2.6


def storage_advice(instance, partitions: int) -> str | None:
    """One line for a run on an instance whose dagster.yaml names Dagster's stock event log
    instead of the project's storage: what it costs for ``partitions`` and how to switch; None
    on the project's storage (or another one, about which nothing is known)."""
    name = type(instance.event_log_storage).__name__
    if name not in STOCK_MS_PER_PARTITION or partitions < 100:
        return None
    stock = STOCK_MS_PER_PARTITION[name]
    extra = partitions * (stock - OURS_MS_PER_PARTITION) / 1000
    home = os.environ.get("DAGSTER_HOME", "$DAGSTER_HOME")
    return (f"note: {home}/dagster.yaml uses Dagster's stock {name}: about {stock:.0f} ms per partition here against "
            f"{OURS_MS_PER_PARTITION} ms with the project's storage, so about {extra:.0f} s more for these "
            f"{partitions} partitions. To switch, set `storage: {{custom: {{module: "
            "benchmark_assets.defs.instance_storage, class: StudyInstanceStorage}}` in that file (the shipped "
            "dagster.yaml does; $BENCHMARK_ASSETS_POSTGRES_URL then selects PostgreSQL)")
