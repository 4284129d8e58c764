"""``<study>__nightly``: reruns the whole study as one backfill, when its file turns it on."""

from dagster import AssetKey, AssetSelection, DefaultScheduleStatus, ScheduleEvaluationContext, SkipReason, schedule

from benchmark_assets.defs.partitions import dimension_order
from benchmark_assets.defs.reruns import rerun_request
from benchmark_assets.graph import StudyGraph


def build_schedule(graph: StudyGraph):
    """Reruns every registered point and replicate as one backfill; off unless the study's
    ``schedule.enabled`` is true. None for a spec without a schedule."""
    study = graph.study
    spec = getattr(study.spec, "schedule", None)
    final = [AssetKey(graph.asset_path(node.name)) for node in graph.partitioned(None)]
    if spec is None or not final:
        return None

    @schedule(
        name=graph.nightly_schedule,
        cron_schedule=spec.cron,
        # The request is a backfill of the whole group; the target only has to be a loadable job,
        # and one over the group would mix partitioned and unpartitioned assets (Dagster refuses).
        target=AssetSelection.assets(*final),
        default_status=DefaultScheduleStatus.RUNNING if spec.enabled else DefaultScheduleStatus.STOPPED,
        description=f"Reruns the whole {graph.kind.name} study as one backfill.",
    )
    def nightly(context: ScheduleEvaluationContext):
        keys = {}
        for dimension in graph.dimensions:
            registered = set(dimension_order(context.instance, graph, dimension))
            keys[dimension.name] = [k for k in graph.keys(dimension) if k in registered]
            if not keys[dimension.name]:
                return SkipReason(f"no {dimension.name} keys registered yet; the study sensor or the CLI registers them")
        wanted = [(p, r) for p in keys[graph.point.name] for r in keys[graph.replicate.name]]
        # Every registered point and replicate is touched, so every partition rerun is a registered one.
        return rerun_request(graph, wanted, set(), reason=f"nightly {graph.kind.name}")

    return nightly
