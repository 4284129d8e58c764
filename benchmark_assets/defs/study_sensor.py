"""``<study>__study_changes``: the sensor that watches a study file and reruns what an edit affects."""

from dagster import AssetSelection, DefaultSensorStatus, SensorEvaluationContext, SensorResult, SkipReason, sensor

from benchmark_assets.defs import code_reload
from benchmark_assets.defs.partitions import add_requests
from benchmark_assets.defs.reruns import (
    changes_to_rerun,
    cursor_of_an_earlier_version,
    load_sensor_state,
    sensor_state,
    store_sensor_state,
)
from benchmark_assets.defs.ticks import sensor_interval
from benchmark_assets.graph import StudyGraph
from benchmark_assets.studies import StudyError


def build_study_sensor(graph: StudyGraph):
    """A sensor that watches the study file. Each tick it loads the file (an invalid edit skips,
    saying why), registers new dynamic partition keys, and compares the file's state with the
    last tick's (kept in the cursor) to request exactly the reruns an edit needs. The first tick
    adopts the file as it is: reruns are for changes, not for start-up."""
    study, path = graph.study, graph.path

    @sensor(
        name=graph.study_sensor,
        minimum_interval_seconds=sensor_interval(30),
        default_status=DefaultSensorStatus.RUNNING,
        # Backfill requests are only accepted from a sensor whose selection covers their assets.
        asset_selection=AssetSelection.groups(study.name),
        description=f"Watches {path.name}: registers new partition keys and reruns what a change affects.",
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
        cursor = store_sensor_state(context.instance, current.name, state)
        if previous is None:  # the first tick adopts the file as it is
            return SensorResult(dynamic_partitions_requests=registering, cursor=cursor)
        if set(previous) != set(state):
            previous = cursor_of_an_earlier_version(previous, state)
        return SensorResult(run_requests=changes_to_rerun(current, previous, state),
                            dynamic_partitions_requests=registering, cursor=cursor)

    return study_changes

