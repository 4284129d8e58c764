"""``<study>__nightly``: reruns the whole study as a run of its job, when its file turns it on."""

from dagster import DefaultScheduleStatus, ScheduleEvaluationContext, schedule

from benchmark_assets.defs.reruns import study_run_request
from benchmark_assets.graph import StudyGraph


def build_schedule(graph: StudyGraph):
    """Runs ``<study>__run_study`` with ``force`` (every trial measured again, then the analysis and
    the follow-ups, as `benchmark-assets run --force`); off unless the study's
    ``schedule.enabled`` is true. None for a spec without a schedule."""
    spec = getattr(graph.study.spec, "schedule", None)
    if spec is None:
        return None

    @schedule(
        name=graph.nightly_schedule,
        cron_schedule=spec.cron,
        job_name=graph.run_job,
        default_status=DefaultScheduleStatus.RUNNING if spec.enabled else DefaultScheduleStatus.STOPPED,
        description=f"Reruns the whole {graph.kind.name} study (every trial measured again) as `benchmark-assets "
                    f"run {graph.name} --force` does.",
    )
    def nightly(context: ScheduleEvaluationContext):
        return study_run_request(graph, None, force=True, reason=f"nightly {graph.kind.name}")

    return nightly
