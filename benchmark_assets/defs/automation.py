"""The study sensor (register new sweep points, rerun what changed) and the nightly schedule."""
from __future__ import annotations

import json

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    MultiPartitionKey,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset

from benchmark_assets.defs.study_assets import StudyPartitions
from benchmark_assets.studies.spec import Study, StudyError, load_study


def rerun_request(study: Study, parts: StudyPartitions, point_keys: list[str], *, reason: str) -> RunRequest:
    """A backfill of ``point_keys`` (all seeds) and everything downstream of them, in order.

    Launched as one asset backfill: trials as a single run over their partitions, then the
    aggregates of those points, then verdicts and the summary."""
    key = lambda name: AssetKey([study.name, name])  # noqa: E731
    subsets = {}
    if point_keys:
        trial_keys = [MultiPartitionKey({"sweep_point": p, "seed_id": s}) for p in point_keys for s in study.seed_keys]
        subsets[key("trials")] = parts.trials.empty_subset().with_partition_keys(trial_keys)
        subsets[key("aggregates")] = parts.sweep_points.empty_subset().with_partition_keys(point_keys)
        subsets[key("scenario_catalog")] = parts.seeds.empty_subset().with_partition_keys(study.seed_keys)
    subset = AssetGraphSubset(
        partitions_subsets_by_asset_key=subsets,
        non_partitioned_asset_keys={key("verdicts"), key("ratchet_summary")},
    )
    return RunRequest.for_asset_graph_subset(subset, tags={"benchmark_assets/reason": reason[:200]})


def build_study_sensor(study: Study, parts: StudyPartitions):
    path = study.path

    @sensor(
        name=f"{study.name}__study_changes",
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        # Backfill requests are only accepted from a sensor whose selection covers their assets.
        asset_selection=AssetSelection.groups(study.name),
        description=f"Watches {path.name}: registers new sweep points and reruns the partitions a change affects.",
    )
    def study_changes(context: SensorEvaluationContext):
        try:
            current = load_study(path)
        except StudyError as error:
            return SkipReason(f"study file is invalid, nothing rerun: {error}")
        fingerprints = current.point_fingerprints()
        registered = set(context.instance.get_dynamic_partitions(parts.sweep_points.name))
        new_points = [k for k in fingerprints if k not in registered]
        previous = json.loads(context.cursor) if context.cursor else None
        cursor = json.dumps({"points": fingerprints, "decision": current.decision_fingerprint(), "hash": current.spec_hash})
        add_requests = [parts.sweep_points.build_add_request(new_points)] if new_points else []
        if previous is None:
            # First look: adopt the file as it is; reruns are for changes, not for startup.
            return SensorResult(dynamic_partitions_requests=add_requests, cursor=cursor)
        changed = [k for k, fp in fingerprints.items() if previous["points"].get(k) != fp]
        requests = []
        if changed:
            requests.append(rerun_request(current, parts, changed, reason=f"{len(changed)} sweep points changed in {path.name}"))
        elif previous.get("decision") != current.decision_fingerprint():
            requests.append(rerun_request(current, parts, [], reason=f"decision rules changed in {path.name}"))
        return SensorResult(run_requests=requests, dynamic_partitions_requests=add_requests, cursor=cursor)

    return study_changes


def build_study_schedule(study: Study, parts: StudyPartitions):
    @schedule(
        name=f"{study.name}__nightly",
        cron_schedule=study.spec.schedule.cron,
        # The request is a backfill of the whole group; the target only has to be a loadable job,
        # and one over the group would mix partitioned and unpartitioned assets (Dagster refuses).
        target=AssetSelection.assets(AssetKey([study.name, "verdicts"]), AssetKey([study.name, "ratchet_summary"])),
        default_status=DefaultScheduleStatus.RUNNING if study.spec.schedule.enabled else DefaultScheduleStatus.STOPPED,
        description="Reruns the whole ratchet (every registered sweep point) as one backfill.",
    )
    def nightly(context: ScheduleEvaluationContext):
        registered = set(context.instance.get_dynamic_partitions(parts.sweep_points.name))
        points = [p.key for p in study.sweep_points() if p.key in registered]
        if not points:
            return SkipReason("no sweep points registered yet; the study sensor or the CLI registers them")
        return rerun_request(study, parts, points, reason="nightly ratchet")

    return nightly


def comparison_rerun_request(study, trial_keys: list[MultiPartitionKey], *, reason: str) -> RunRequest:
    """A backfill of ``trial_keys`` (arm x seed) and every analysis asset after them."""
    from benchmark_assets.defs.comparison_assets import ANALYSIS_ASSETS, comparison_partitions

    key = lambda name: AssetKey([study.name, name])  # noqa: E731
    subsets = {}
    if trial_keys:
        subsets[key("trials")] = comparison_partitions(study).empty_subset().with_partition_keys(trial_keys)
    subset = AssetGraphSubset(partitions_subsets_by_asset_key=subsets,
                              non_partitioned_asset_keys={key(name) for name in ANALYSIS_ASSETS})
    return RunRequest.for_asset_graph_subset(subset, tags={"benchmark_assets/reason": reason[:200]})


def build_comparison_sensor(study):
    """Watches a comparison study: registers new seeds and reruns exactly what an edit affects
    (new seeds: their trials; a changed arm or command: that arm's trials; a changed decision,
    metric or summary: the analysis only), then everything downstream."""
    from benchmark_assets.defs.comparison_assets import seed_partitions
    from benchmark_assets.studies.comparison import ARMS

    path = study.path

    @sensor(
        name=f"{study.name}__study_changes",
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        asset_selection=AssetSelection.groups(study.name),
        description=f"Watches {path.name}: registers new seeds and reruns the trials and analysis a change affects.",
    )
    def study_changes(context: SensorEvaluationContext):
        try:
            current = load_study(path)
        except StudyError as error:
            return SkipReason(f"study file is invalid, nothing rerun: {error}")
        if current.kind != "comparison":
            return SkipReason(f"{path.name} is no longer a comparison study; reload the definitions")
        seeds = seed_partitions(current)
        registered = set(context.instance.get_dynamic_partitions(seeds.name))
        new_seeds = [s for s in current.seed_keys if s not in registered]
        state = {"arms": {arm: current.arm_fingerprint(arm) for arm in ARMS}, "seeds": current.seed_keys,
                 "analysis": current.analysis_fingerprint()}
        add_requests = [seeds.build_add_request(new_seeds)] if new_seeds else []
        previous = json.loads(context.cursor) if context.cursor else None
        if previous is None:
            return SensorResult(dynamic_partitions_requests=add_requests, cursor=json.dumps(state))
        trial_keys = []
        for arm in ARMS:
            changed_arm = previous["arms"].get(arm) != state["arms"][arm]
            wanted = current.seed_keys if changed_arm else [s for s in current.seed_keys if s not in previous["seeds"]]
            trial_keys += [MultiPartitionKey({"arm": arm, "seed": s}) for s in wanted]
        requests = []
        if trial_keys or state["seeds"] != previous["seeds"] or state["analysis"] != previous["analysis"]:
            reason = f"{len(trial_keys)} trials to run after a change to {path.name}" if trial_keys else \
                f"analysis settings or seed list changed in {path.name}"
            requests.append(comparison_rerun_request(current, trial_keys, reason=reason))
        return SensorResult(run_requests=requests, dynamic_partitions_requests=add_requests, cursor=json.dumps(state))

    return study_changes
