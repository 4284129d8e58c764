"""A load sweep's trials from aiperf runs (``targets.aiperf_export``) put in its inbox: each
``profile_export_aiperf.json`` (in any folder under ``<inbox>/<study>/``, as aiperf's artifacts
folders hold it) is one more trial of the sweep point whose swept values the run was given.
No Dagster."""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pandas as pd

from benchmark_assets.kinds.base import IngestError
from benchmark_assets.kinds.load_sweep.spec import LoadSweepStudy
from benchmark_assets.kinds.load_sweep.trials import TRIAL_COLUMNS
from benchmark_assets.sweep import format_value
from benchmark_assets.targets.aiperf_export import FILE_NAME, ExportFileError, read_export
from benchmark_assets.targets.http_load import metric_names

PATTERNS = (FILE_NAME,)
HELP = f"aiperf's {FILE_NAME} of each run, in any folder"
INBOX_FINGERPRINT = "inbox"  # not measured here: never resumed from a checkpoint, never stale


def _described(values: dict) -> str:
    return ", ".join(f"{name}={format_value(value)}" for name, value in values.items())


def matching_point(study: LoadSweepStudy, settings: dict[str, float]) -> str:
    """The key of the sweep point whose swept values the run was given; IngestError otherwise."""
    missing = [name for name in study.swept if name not in settings]
    if missing:
        raise IngestError(f"it does not say which {missing[0]} it ran (input_config has none), and {study.name} "
                          f"sweeps {missing[0]}; give the export of a run given --{missing[0].replace('_', '-')}")
    ran = {name: settings[name] for name in study.swept}
    for point in study.points:
        if all(math.isclose(float(point.params[name]), value, rel_tol=1e-9) for name, value in ran.items()):
            return point.key
    points = "; ".join(_described(p.params) for p in study.points[:8])
    raise IngestError(f"it ran {_described(ran)}, which is no sweep point of {study.name} (points: {points}); add "
                      f"the value to target.http_load.{next(iter(ran))} or drop the file")


def ingest_export(study: LoadSweepStudy, path: Path, relative: PurePosixPath,
                  new_replicate: Callable[[], int]) -> pd.DataFrame:
    """One trial row from one aiperf export; IngestError with what to fix."""
    if study.spec.stopping is not None or study.spec.capacity is not None:
        # their intervals are spent over their own trials' looks; a trial from elsewhere is not one of them
        raise IngestError(f"{study.name} adds its own trials one at a time ({'capacity' if study.spec.capacity else 'stopping'}"
                          "), so a trial measured elsewhere cannot join its looks; put the export in the inbox of a "
                          "study with a fixed number of trials")
    try:
        run = read_export(path)
    except ExportFileError as error:
        raise IngestError(str(error)) from None
    load = study.load
    if run.model is not None and load.model and run.model != load.model:
        raise IngestError(f"it ran model {run.model!r}, and {study.name} measures {load.model!r}; put it in the "
                          "inbox of a study of that model")
    if load.streaming and not run.streaming:
        raise IngestError(f"it ran without --streaming, and {study.name} streams (time to first token and inter-token "
                          "latency need it); give the export of a streaming run")
    for name in ("input_tokens", "output_tokens", "concurrency", "request_rate"):
        fixed = getattr(load, name, None)
        if name not in study.swept and isinstance(fixed, int | float) and name in run.settings \
                and not math.isclose(float(fixed), run.settings[name], rel_tol=1e-9):
            raise IngestError(f"it ran {name}={format_value(run.settings[name])}, and {study.name} holds {name} at "
                              f"{format_value(fixed)}; give the export of a run with that setting")
    key = matching_point(study, run.settings)
    point = study.point(key)
    ok = run.successful > 0
    error = "" if ok else (f"aiperf: every request failed ({run.errors}): {run.error_text}" if run.errors
                           else "aiperf: the run has no successful request")
    metrics = {name: run.metrics.get(name, math.nan) for name in metric_names(load.streaming)}
    metrics.update({k: v for k, v in run.metrics.items() if k not in TRIAL_COLUMNS})
    if not ok:  # a failed trial reports no measurement, as the HTTP target's do
        metrics = {k: (v if k in ("request_count", "error_count", "successful_request_count") else math.nan)
                   for k, v in metrics.items()}
    metrics.update(dict.fromkeys(study.slo_columns, math.nan))  # no per-request rows to count good requests in
    duration = 0.0 if math.isnan(run.duration_seconds) else float(run.duration_seconds)
    return pd.DataFrame([{
        "sweep_point": key, "trial": int(new_replicate()), "parameters": json.dumps(point.params, sort_keys=True),
        "trial_seed": 0, "status": "ok" if ok else "failed", "error": error,
        "started_at": run.started_at if run.started_at is not None else path.stat().st_mtime or time.time(),
        "wall_seconds": duration, "generator_cpu_seconds": 0.0, "fingerprint": INBOX_FINGERPRINT,
        "endpoint": run.url or "(not recorded in the export)",  # the server it measured, not the study's
        **metrics,
    }])
