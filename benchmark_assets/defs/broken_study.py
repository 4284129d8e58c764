"""A study file the definitions left out, shown where a UI user looks: a sensor named after the
file, whose description and skip reason are its one-line error. Each tick it loads the file
again; once the file is fixed it asks for a reload of the code location, which brings the study in."""
import hashlib
import re
from pathlib import Path

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from benchmark_assets.defs import code_reload
from benchmark_assets.defs.ticks import sensor_interval
from benchmark_assets.studies import StudyError, load_study


def sensor_name(path: str | Path) -> str:
    """``<file>__invalid_study_file``, with what Dagster does not allow in a name made ``_``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", Path(path).stem) + "__invalid_study_file"


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def build_broken_study_sensor(error: StudyError):
    """The sensor of a file the definitions left out. A reload is asked for only once the file
    differs from the one they were built with: a file that loads but whose definitions failed to
    build would fail again, and each reload restarts the code location."""
    path = Path(error.path)
    built_from = _digest(path)

    @sensor(name=sensor_name(path), minimum_interval_seconds=sensor_interval(30),
            default_status=DefaultSensorStatus.RUNNING,
            description=f"Left out of the definitions: {error}")
    def invalid_study_file(context: SensorEvaluationContext):
        try:
            study = load_study(path)
        except StudyError as now:
            return SkipReason(f"left out of the definitions: {now}")
        if _digest(path) == built_from:  # the file the definitions failed to build from
            return SkipReason(f"left out of the definitions: {error}")
        origin = context.code_location_origin
        location = origin.location_name if origin else None
        asked = code_reload.reload_soon(location, study.spec_hash)
        return SkipReason(f"{path.name} changed and loads now; " + (
            "reloading the code location to bring it in" if asked else "reload the code location to bring it in"))

    return invalid_study_file
