"""Health a team can see: what needs a person in a study left to run unattended, shown as the
asset check ``unattended_health`` on the study's last asset (a warning badge in the asset graph
and on the asset's page), kept current by the sensor ``benchmark_assets__health``.

It fails, listing each problem with what to do, when the last run that a schedule or sensor
launched failed, when decisions wait in the ledger for a failed run to be re-executed, or when
the inbox holds files it rejected."""
import datetime
import hashlib
import json

import sqlalchemy as sa
from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    DagsterRunStatus,
    DefaultSensorStatus,
    MetadataValue,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    asset_check,
    sensor,
)

from benchmark_assets import inbox
from benchmark_assets.defs.hygiene import KEEP_FAILED_DECISIONS_SECONDS
from benchmark_assets.defs.resources import WarehouseResource
from benchmark_assets.defs.tags import STUDY_TAG
from benchmark_assets.defs.ticks import sensor_interval
from benchmark_assets.graph import StudyGraph
from benchmark_assets.ledger import PENDING_TABLE

CHECK = "unattended_health"
UNATTENDED = ("dagster/schedule_name", "dagster/sensor_name")


def _checked_asset(graph: StudyGraph) -> AssetKey:
    return AssetKey(graph.asset_path(graph.partitioned(None)[-1].name))


def _last_unattended_run(instance, graph: StudyGraph) -> list[str]:
    for record in instance.get_run_records(RunsFilter(job_name=graph.run_job), limit=50):
        run = record.dagster_run
        launcher = next((run.tags[t] for t in UNATTENDED if t in run.tags), None)
        if launcher is None:
            continue
        if run.status != DagsterRunStatus.FAILURE or _succeeded_since(instance, graph, record.end_time):
            return []
        failure = next((_failure_text(e.dagster_event.step_failure_data) for e in instance.all_logs(run.run_id)
                        if e.dagster_event and e.dagster_event.is_step_failure), "") or "see the run's log"
        return [f"the last run that {launcher} launched, {run.run_id}, failed: {failure.splitlines()[0][:300]}. "
                "Fix the cause and re-execute it from the run's page (or `benchmark-assets run "
                f"{graph.name}`)"]
    return []


def _succeeded_since(instance, graph: StudyGraph, ended: float | None) -> bool:
    """A run of the study (its job's, or a CLI stage's) that succeeded, started after a run that
    ended at ``ended`` (a timestamp)."""
    if ended is None:
        return False
    after = datetime.datetime.fromtimestamp(ended, tz=datetime.timezone.utc)
    later = instance.get_run_records(RunsFilter(tags={STUDY_TAG: graph.name}, statuses=[DagsterRunStatus.SUCCESS],
                                                created_after=after), limit=1)
    return bool(later)


def _failure_text(data) -> str:
    """A step's failure as its author said it (a ``Failure``'s description), else its error's message."""
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    return data.error.message if data.error is not None else ""


def _waiting_decisions(instance, graph: StudyGraph, warehouse) -> list[str]:
    if not warehouse.has_table(PENDING_TABLE):
        return []
    with warehouse.engine.connect() as conn:
        rows = conn.execute(sa.text(f'SELECT run_id, COUNT(*) FROM "{PENDING_TABLE}" WHERE study = :s GROUP BY run_id'),
                            {"s": graph.name}).all()
    out = []
    for run_id, count in rows:
        record = instance.get_run_record_by_id(run_id)
        run = record.dagster_run if record else None
        if run is None or run.status not in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            continue
        if _succeeded_since(instance, graph, record.end_time):
            continue  # the study has decided again since: those are only history now
        out.append(f"{count} decisions of run {run_id} ({run.status.value.lower()}) are held back from the ledger; "
                   f"they are dropped {KEEP_FAILED_DECISIONS_SECONDS // 86400} days after it ended. Run the study "
                   f"again (its job {graph.run_job}, or `benchmark-assets run {graph.name}`) to decide anew")
    return out


def _rejected_files(graph: StudyGraph, warehouse) -> list[str]:
    if not graph.inbox_files:
        return []
    return [f"inbox file {o.path} is {o.status}: {o.reason}. Fix or remove it" for o in
            inbox.still_rejected(warehouse, graph.study)]


def problems(instance, graph: StudyGraph, warehouse) -> list[str]:
    """What needs a person, one line each; empty when the study runs on its own."""
    return (_last_unattended_run(instance, graph) + _waiting_decisions(instance, graph, warehouse)
            + _rejected_files(graph, warehouse))


def _result(found: list[str]) -> dict:
    text = "\n".join(f"- {line}" for line in found) or "nothing needs a person"
    return {"passed": not found, "severity": AssetCheckSeverity.WARN,
            "description": f"{len(found)} problems need a person" if found else "runs on its own",
            "metadata": {"problems": MetadataValue.md(text), "count": len(found)}}


def build_health_check(graph: StudyGraph):
    """The check on the study's last asset; the health sensor evaluates it, and so does Execute."""

    @asset_check(asset=_checked_asset(graph), name=CHECK, blocking=False,
                 description="What needs a person in a study left to run unattended: the last run a schedule or "
                             "sensor launched failed, decisions wait for a failed run's re-execution, or the inbox "
                             "holds rejected files. Kept current by the benchmark_assets__health sensor.")
    def unattended_health(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        found = _result(problems(context.instance, graph, warehouse.open()))
        return AssetCheckResult(passed=found["passed"], severity=found["severity"], metadata=found["metadata"],
                                description=found["description"])

    return unattended_health


def build_health_sensor(graphs: list[StudyGraph]):
    """``benchmark_assets__health``: evaluates each study's ``unattended_health`` check every
    minute and records it when what it finds changes."""

    @sensor(name="benchmark_assets__health", minimum_interval_seconds=sensor_interval(60),
            default_status=DefaultSensorStatus.RUNNING,
            description="Keeps each study's unattended_health check current: failed unattended runs, decisions "
                        "waiting for a re-execution, rejected inbox files.")
    def health(context: SensorEvaluationContext, warehouse: WarehouseResource):
        before = json.loads(context.cursor) if context.cursor else {}
        after, events, summary = {}, [], []
        for graph in graphs:
            found = problems(context.instance, graph, warehouse.open())
            # Recorded again after a new materialisation of the asset too: the UI shows a check's
            # result for the asset's latest materialisation only.
            latest = context.instance.get_latest_materialization_event(_checked_asset(graph))
            seen = [found, latest.timestamp if latest else None]
            after[graph.name] = hashlib.sha256(json.dumps(seen).encode()).hexdigest()[:12]
            if found:
                summary.append(f"{graph.name}: {len(found)}")
            if before.get(graph.name) != after[graph.name]:
                result = _result(found)
                events.append(AssetCheckEvaluation(asset_key=_checked_asset(graph), check_name=CHECK,
                                                   passed=result["passed"], severity=result["severity"],
                                                   metadata=result["metadata"], description=result["description"]))
        text = ("needs a person: " + ", ".join(summary)) if summary else "every study runs on its own"
        return SensorResult(asset_events=events, cursor=json.dumps(after), skip_reason=None if events else text)

    return health


__all__ = ["CHECK", "build_health_check", "build_health_sensor", "problems"]
