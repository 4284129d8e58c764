"""The inbox in Dagster: a sensor per study whose kind ingests result files. Each tick it reads
the study's new and changed inbox files (``benchmark_assets.inbox.scan``), registers the trial
keys they bring and launches the study's job over exactly those trials and what follows them; a
file that cannot be used is logged with its name and reason, and shown on the trials asset's
page (an observation with the rejected files), once per content."""

import json
import time

from dagster import (
    AssetKey,
    AssetObservation,
    DefaultSensorStatus,
    MetadataValue,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from benchmark_assets import inbox
from benchmark_assets.defs.compat import IN_PROGRESS_RUN_STATUSES, BulkActionStatus
from benchmark_assets.defs.partitions import add_requests, trial_key
from benchmark_assets.defs.reruns import study_run_request
from benchmark_assets.defs.resources import WarehouseResource
from benchmark_assets.defs.ticks import sensor_interval
from benchmark_assets.edits import Rerun
from benchmark_assets.graph import StudyGraph, trials_by_point
from benchmark_assets.studies import StudyError

INGEST_TAG = "benchmark_assets/ingested_files"
RETRY_AFTER_SECONDS = 15 * 60  # an ingested trial not stored this long after its request is asked for again
MAX_RETRIES = 3
FILES_PER_TICK = 1000  # read in one tick (about 2 s); more wait for the next, well inside a tick's time limit


def _requested(cursor: str | None) -> dict[str, list]:
    """Per trial key waiting to be stored: [when it was last asked for (or first seen), retries]."""
    try:
        found = json.loads(cursor).get("requested", {}) if cursor else {}
        return {k: list(v) for k, v in found.items() if isinstance(v, list) and len(v) == 2}
    except (ValueError, AttributeError, TypeError):
        return {}


def event_mark(instance) -> int:
    """The event log's newest record id: trials a look writes now are stored by a later materialisation."""
    return int(instance.event_log_storage.get_maximum_record_id() or 0)


def unstored_keys(instance, graph: StudyGraph, warehouse) -> list[tuple[str, str]]:
    """Trials the inbox holds, or that files gave up, whose partitions no run has stored since
    the look that wrote them (never, or only with an earlier version's rows)."""
    trials_key = AssetKey(graph.asset_path(graph.trial_node.name))
    by_mark: dict[int, list[tuple[str, str]]] = {}
    for key, mark in inbox.waiting_keys(warehouse, graph.study):
        by_mark.setdefault(mark, []).append(key)
    out = []
    for mark, keys in by_mark.items():
        done = instance.get_materialized_partitions(trials_key, after_cursor=mark if mark >= 0 else None)
        out += [k for k in keys if str(trial_key(graph, *k)) not in done]
    return list(dict.fromkeys(out))


def trials_in_flight(instance, graph: StudyGraph) -> bool:
    """Whether a run that stores trials of the study (or its job) is queued or running, or a backfill is on."""
    trials_key = AssetKey(graph.asset_path(graph.trial_node.name))
    runs = instance.get_runs(filters=RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES)), limit=200)
    if any(run.job_name == graph.run_job or trials_key in (run.asset_selection or set()) for run in runs):
        return True
    return bool(instance.get_backfills(status=BulkActionStatus.REQUESTED, limit=1))


def rejected_markdown(outcomes) -> str:
    lines = ["| file | what | reason |", "|---|---|---|"]
    lines += [f"| `{o.path}` | {o.status} | {o.reason.replace('|', '/')} |" for o in outcomes]
    return "\n".join(lines)


def build_inbox_sensor(graph: StudyGraph):
    """``<study>__inbox_watch``, for a kind that ingests result files; None for one that does not."""
    study = graph.study
    if not graph.inbox_files:
        return None
    path, trials_key = study.path, AssetKey(graph.asset_path(graph.trial_node.name))

    @sensor(name=graph.inbox_sensor, minimum_interval_seconds=sensor_interval(30), default_status=DefaultSensorStatus.RUNNING,
            job_name=graph.run_job,
            description=f"Ingests result files put in {inbox.inbox_folder(study)} ({graph.inbox_help}) as trials of "
                        f"{study.name}, once per content; files it cannot use are reported here and on the "
                        f"{trials_key.to_user_string()} asset.")
    def inbox_watch(context: SensorEvaluationContext, warehouse: WarehouseResource):
        try:
            graph_now = StudyGraph.load(path)
        except StudyError as error:
            return SkipReason(f"study file is invalid, nothing ingested: {error}")
        current = graph_now.study
        found = inbox.scan(graph_now, warehouse.open(), say=context.log.info, limit=FILES_PER_TICK,
                           mark=event_mark(context.instance))
        for outcome in found.rejected:
            context.log.warning(f"{inbox.inbox_folder(current) / outcome.path}: {outcome.status}: {outcome.reason}")
        for outcome in found.ingested:
            context.log.info(outcome.line())
        events = []
        if found.rejected:
            events.append(AssetObservation(asset_key=trials_key, metadata={
                "inbox_rejected": MetadataValue.md(rejected_markdown(found.rejected)),
                "inbox_folder": MetadataValue.path(str(found.folder))}))
        keys = found.to_store
        requested, now = _requested(context.cursor), time.time()
        unstored = unstored_keys(context.instance, graph_now, warehouse.open())
        stranded = []
        busy = trials_in_flight(context.instance, graph_now)  # a queued or slow run is not a lost one
        for key in (k for k in unstored if k not in keys):
            first, attempts = requested.setdefault("|".join(key), [now, 0])  # first seen now: its run may be on
            if busy:
                requested["|".join(key)] = [now, attempts]  # its time counts from when nothing runs
            elif now - first > RETRY_AFTER_SECONDS and attempts < MAX_RETRIES:
                stranded.append(key)
                requested["|".join(key)] = [now, attempts + 1]
        if stranded:  # stored in the inbox, but their run failed or never came: asked for again
            context.log.warning(f"{len(stranded)} ingested trials were never stored as partitions (their run failed "
                                f"or was lost); requesting them again (at most {MAX_RETRIES} times; after that, "
                                f"`benchmark-assets ingest {current.name}` or re-executing the failed run stores them)")
        keys = keys + stranded
        requested.update({"|".join(k): [now, 0] for k in found.to_store})
        waiting = {"|".join(k) for k in unstored} | {"|".join(k) for k in keys}
        requested = {k: v for k, v in requested.items() if k in waiting}
        cursor = json.dumps({"ingested": len(found.ingested), "rejected": len(found.rejected),
                             "seen_before": found.unchanged, "requested": requested})
        if not keys:
            return SensorResult(skip_reason=SkipReason(found.summary()), asset_events=events, cursor=cursor)
        files = ", ".join(o.path for o in found.ingested) or f"{len(stranded)} trials ingested earlier"
        request = study_run_request(graph_now, Rerun(trials=trials_by_point(keys)),
                                    reason=f"{graph_now.inbox_sensor}: ingest {files}", tags={INGEST_TAG: files[:200]})
        return SensorResult(run_requests=[request], asset_events=events, cursor=cursor,
                            dynamic_partitions_requests=add_requests(context.instance, graph_now, keys))

    return inbox_watch


