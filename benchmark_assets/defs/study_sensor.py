"""``<study>__study_changes``: the sensor that watches a study file and reruns what an edit affects,
as a run of the study's job (``reruns``)."""

from dagster import DefaultSensorStatus, SensorEvaluationContext, SensorResult, SkipReason, sensor

from benchmark_assets.defs import code_reload
from benchmark_assets.defs.partitions import add_requests
from benchmark_assets.defs.reruns import load_sensor_state, store_sensor_state, study_run_request
from benchmark_assets.defs.ticks import sensor_interval
from benchmark_assets.edits import edit_between, sensor_state
from benchmark_assets.graph import StudyGraph
from benchmark_assets.studies import StudyError


def build_study_sensor(graph: StudyGraph):
    """A sensor that watches the study file. Each tick it loads the file (an invalid edit skips,
    saying why), registers new dynamic partition keys, and compares the file's state with the
    last tick's (kept in the cursor) to launch the study's job over exactly what the edit
    touched; the job runs the follow-ups and settles the ledger as the CLI does. The first tick
    adopts the file as it is: reruns are for changes, not for start-up."""
    study, path = graph.study, graph.path

    @sensor(
        name=graph.study_sensor,
        minimum_interval_seconds=sensor_interval(30),
        default_status=DefaultSensorStatus.RUNNING,
        job_name=graph.run_job,
        description=f"Watches {path.name}: registers new partition keys and runs {graph.run_job} over what a "
                    "change affects.",
    )
    def study_changes(context: SensorEvaluationContext):
        try:
            current = StudyGraph.load(path)
        except StudyError as error:
            return SkipReason(f"study file is invalid, nothing rerun: {error}")
        if current.kind.name != study.kind:
            return SkipReason(f"{path.name} is no longer a {study.kind} study; reload the definitions")
        origin = context.code_location_origin
        location = origin.location_name if origin else None
        if (outcome := code_reload.take_outcome(location)) is not None:
            context.log.info(f"the last reload: {outcome}")
        if current.study.spec_hash != study.spec_hash and code_reload.reload_soon(location, current.study.spec_hash):
            # the definitions hold an older version of the file
            context.log.info(f"{path.name} changed since the definitions were loaded: asking for a reload of "
                             f"{location}, so the UI shows the study's new code versions")
        registering = add_requests(context.instance, current)
        state = sensor_state(current)
        previous = load_sensor_state(context.instance, current.name, context.cursor)
        cursor = store_sensor_state(context.instance, current.name, state, context.cursor)
        if previous is None:  # the first tick adopts the file as it is
            return SensorResult(dynamic_partitions_requests=registering, cursor=cursor)
        rerun = edit_between(current, previous, state)
        requests = [study_run_request(current, rerun, reason=rerun.reason)] if rerun else []
        if rerun:
            context.log.info(f"{rerun.reason}: launching {current.run_job} over {rerun.size}")
        return SensorResult(run_requests=requests, dynamic_partitions_requests=registering, cursor=cursor)

    return study_changes
