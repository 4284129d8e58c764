"""A study file the definitions left out, shown where a UI user looks: a sensor named after the
file, whose description and skip reason are its one-line error. Each tick it loads the file
again; once the file is fixed it asks for a reload of the code location, which brings the study in."""
import re
from pathlib import Path

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from benchmark_assets.defs import code_reload
from benchmark_assets.defs.ticks import sensor_interval
from benchmark_assets.studies import StudyError, load_study


def sensor_name(path: str | Path) -> str:
    """``<file>__invalid_study_file``, with what Dagster does not allow in a name made ``_``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", Path(path).stem) + "__invalid_study_file"


def build_broken_study_sensor(error: StudyError):
    path = Path(error.path)

    @sensor(name=sensor_name(path), minimum_interval_seconds=sensor_interval(30),
            default_status=DefaultSensorStatus.RUNNING,
            description=f"Left out of the definitions: {error}")
    def invalid_study_file(context: SensorEvaluationContext):
        try:
            study = load_study(path)
        except StudyError as now:
            return SkipReason(f"left out of the definitions: {now}")
        origin = context.code_location_origin
        location = origin.location_name if origin else None
        asked = code_reload.reload_soon(location, study.spec_hash)
        return SkipReason(f"{path.name} loads now; " + ("reloading the code location to bring it in" if asked
                                                        else "reload the code location to bring it in"))

    return invalid_study_file
