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

from benchmark_assets.defs.study_assets import StudyPartitions, unregistered_keys
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
    """Ratchet: registers new sweep points; reruns the points whose trials an edit changes (a new
    candidate: its point; a new current value: every point), or only verdicts and summary after a
    decision-rule edit."""
    def state_of(current: Study) -> dict:
        return {"points": current.point_fingerprints(), "decision": current.decision_fingerprint(),
                "hash": current.spec_hash}

    def requests_for(current: Study, previous: dict, state: dict) -> list[RunRequest]:
        changed = [k for k, fp in state["points"].items() if previous["points"].get(k) != fp]
        if changed:
            return [rerun_request(current, parts, changed, reason=f"{len(changed)} sweep points changed in {current.path.name}")]
        if previous.get("decision") != state["decision"]:
            return [rerun_request(current, parts, [], reason=f"decision rules changed in {current.path.name}")]
        return []

    return study_file_sensor(
        study, registrations=[(parts.sweep_points, lambda current: list(current.point_fingerprints()))],
        state_of=state_of, requests_for=requests_for,
        description=f"Watches {study.path.name}: registers new sweep points and reruns the partitions a change affects.",
    )


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
    """Comparison: registers new seeds; reruns exactly what an edit affects (new seeds: their
    trials; a changed arm or command: that arm's trials; a changed decision, metric or summary:
    the analysis only), then everything downstream."""
    from benchmark_assets.defs.comparison_assets import seed_partitions
    from benchmark_assets.studies.comparison import ARMS

    def state_of(current) -> dict:
        return {"arms": {arm: current.arm_fingerprint(arm) for arm in ARMS}, "seeds": current.seed_keys,
                "analysis": current.analysis_fingerprint()}

    def requests_for(current, previous: dict, state: dict) -> list[RunRequest]:
        trial_keys = []
        for arm in ARMS:
            changed_arm = previous["arms"].get(arm) != state["arms"][arm]
            wanted = current.seed_keys if changed_arm else [s for s in current.seed_keys if s not in previous["seeds"]]
            trial_keys += [MultiPartitionKey({"arm": arm, "seed": s}) for s in wanted]
        if not (trial_keys or state["seeds"] != previous["seeds"] or state["analysis"] != previous["analysis"]):
            return []
        reason = (f"{len(trial_keys)} trials to run after a change to {current.path.name}" if trial_keys
                  else f"analysis settings or seed list changed in {current.path.name}")
        return [comparison_rerun_request(current, trial_keys, reason=reason)]

    return study_file_sensor(
        study, registrations=[(seed_partitions(study), lambda current: current.seed_keys)], state_of=state_of,
        requests_for=requests_for,
        description=f"Watches {study.path.name}: registers new seeds and reruns the trials and analysis a change affects.",
    )


def build_load_sweep_sensor(study):
    """Load sweep: registers new sweep points and trial numbers; a changed load, server or seed
    reruns every trial, new points or more trials run just those, and changed decision settings
    or objectives redo the aggregates and summary only."""
    from benchmark_assets.defs.load_sweep_assets import load_partitions, point_partitions, trial_partitions

    def state_of(current) -> dict:
        analysis = [current.spec.decision.model_dump(), [o.model_dump() for o in current.objectives]]
        return {"trials": current.fingerprint(), "points": current.point_keys, "trial_keys": current.trial_keys,
                "analysis": json.dumps(analysis, sort_keys=True)}

    def requests_for(current, previous: dict, state: dict) -> list[RunRequest]:
        if previous["trials"] != state["trials"]:  # the load itself changed: every trial again
            wanted = [(p, t) for p in current.point_keys for t in current.trial_keys]
        else:  # new points run all their trials, old points only the trials added
            wanted = [(p, t) for p in current.point_keys for t in current.trial_keys
                      if p not in previous["points"] or t not in previous["trial_keys"]]
        points = list(dict.fromkeys(p for p, _ in wanted))
        if not wanted and previous["analysis"] == state["analysis"] and previous["points"] == state["points"]:
            return []
        key = lambda name: AssetKey([current.name, name])  # noqa: E731
        trial_keys = [MultiPartitionKey({"sweep_point": p, "trial": t}) for p, t in wanted]
        subsets = {key("aggregates"): point_partitions(current).empty_subset().with_partition_keys(
            points or current.point_keys)}
        if trial_keys:
            subsets[key("trials")] = load_partitions(current).empty_subset().with_partition_keys(trial_keys)
        subset = AssetGraphSubset(partitions_subsets_by_asset_key=subsets, non_partitioned_asset_keys={key("sweep_summary")})
        reason = f"{len(trial_keys)} load trials to run after a change to {current.path.name}"
        return [RunRequest.for_asset_graph_subset(subset, tags={"benchmark_assets/reason": reason})]

    return study_file_sensor(
        study, registrations=[(point_partitions(study), lambda current: current.point_keys),
                              (trial_partitions(study), lambda current: current.trial_keys)], state_of=state_of,
        requests_for=requests_for,
        description=f"Watches {study.path.name}: registers new sweep points and reruns what a change affects.",
    )


def study_file_sensor(study, *, registrations, state_of, requests_for, description: str):
    """A sensor that watches one study file. Each tick it loads the file (an invalid edit skips,
    saying why), registers the dynamic partition keys it lists (``registrations``: pairs of a
    dynamic partitions definition and a function giving its keys from the study), and compares a small state of
    the file with the last tick's (kept in the cursor): ``requests_for(current, previous_state,
    state)`` turns the difference into backfill requests. The first tick adopts the file as it
    is; reruns are for changes, not for start-up."""
    path, kind = study.path, study.kind

    @sensor(
        name=f"{study.name}__study_changes",
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        # Backfill requests are only accepted from a sensor whose selection covers their assets.
        asset_selection=AssetSelection.groups(study.name),
        description=description,
    )
    def study_changes(context: SensorEvaluationContext):
        try:
            current = load_study(path)
        except StudyError as error:
            return SkipReason(f"study file is invalid, nothing rerun: {error}")
        if current.kind != kind:
            return SkipReason(f"{path.name} is no longer a {kind} study; reload the definitions")
        add_requests = []
        for partitions, keys_of in registrations:
            new_keys = unregistered_keys(context.instance, partitions, keys_of(current))
            if new_keys:
                add_requests.append(partitions.build_add_request(new_keys))
        state = state_of(current)
        previous = json.loads(context.cursor) if context.cursor else None
        if previous is None:
            return SensorResult(dynamic_partitions_requests=add_requests, cursor=json.dumps(state))
        return SensorResult(run_requests=requests_for(current, previous, state),
                            dynamic_partitions_requests=add_requests, cursor=json.dumps(state))

    return study_changes
