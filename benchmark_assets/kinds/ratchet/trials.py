"""Runs a ratchet's trials (sweep point x scenario x repeat) and returns their rows; no Dagster."""
from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from benchmark_assets.kinds.base import is_current, trial_columns
from benchmark_assets.kinds.ratchet.spec import RatchetStudy
from benchmark_assets.scenarios.parametric import Scenario, ScenarioSeed, build_scenario
from benchmark_assets.sweep import SweepPoint

# The columns every trial row has; every other column is a metric the target reported.
TRIAL_COLUMNS = trial_columns("sweep_point", "seed_id", "trial_index", "split", "constant", "value", "duration_seconds")


def trial_seed(seed_id: int, trial_index: int) -> int:
    """The same seed for every sweep point on a scenario repeat: comparisons are paired."""
    return int(seed_id) * 1000 + int(trial_index)


class MetricError(ValueError):
    """What the target returned cannot be decided on (its own words, no location in our code)."""


def _error_text(error: BaseException) -> str:
    if isinstance(error, MetricError):
        return str(error)[:2000]
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{type(error).__name__}: {error}{where}"[:2000]


def _clean_metrics(result, required: str) -> dict[str, float]:
    """The target's metrics as floats; anything a decision cannot use fails the trial, with why:
    not a dict, a metric that is not a number or not finite, no decision metric at all."""
    if not isinstance(result, dict) or not result:
        raise MetricError(f"target returned {type(result).__name__}, expected a non-empty dict of metrics")
    clean = {}
    for name, value in result.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise MetricError(f"metric {name!r} is {value!r}, expected a number")
        if not math.isfinite(float(value)):
            raise MetricError(f"metric {name!r} is {float(value)}, not a finite number")
        clean[str(name)] = float(value)
    if required not in clean:
        raise MetricError(f"target returned no {required!r} (the study's decision metric), only {sorted(clean)}")
    return clean


def run_trials(
    study: RatchetStudy,
    points: list[SweepPoint],
    seeds: list[ScenarioSeed],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Every (point, seed, repeat) trial; a trial that raises becomes a failed row with its error."""
    target = study.target
    repeats = range(study.spec.trials_per_scenario)
    scenarios: list[Scenario] = [build_scenario(s) for s in seeds]
    rows: list[dict] = []
    total, done = len(points) * len(seeds) * len(repeats), 0
    fingerprints = {point.key: study.point_fingerprint(point) for point in points}
    for trial_index in repeats:
        trial_seeds = [trial_seed(s.seed_id, trial_index) for s in seeds]
        prepared = target.prepare_batch(scenarios, trial_seeds) if target.prepare_batch and target.evaluate_prepared else None
        for point in points:
            results = _evaluate_point(target, prepared, scenarios, point.params, trial_seeds, study.spec.metric)
            for seed, seed_value, (metrics, error, seconds) in zip(seeds, trial_seeds, results):
                rows.append(
                    {
                        "sweep_point": point.key,
                        "seed_id": seed.seed_id,
                        "trial_index": trial_index,
                        "split": study.split_of(seed.seed_id),
                        "constant": point.constant or "",
                        "value": math.nan if point.value is None else float(point.value),
                        "trial_seed": seed_value,
                        "status": "ok" if error is None else "failed",
                        "error": error or "",
                        "duration_seconds": seconds,
                        "fingerprint": fingerprints[point.key],
                        **(metrics or {}),
                    }
                )
            done += len(seeds)
            if progress:
                progress(done, total)
    frame = pd.DataFrame(rows)
    for metric in dict.fromkeys([*(target.metrics or ()), study.spec.metric]):  # every trial failed: columns stay
        if metric not in frame.columns:
            frame[metric] = math.nan
    return frame


def _evaluate_point(target, prepared, scenarios, params, trial_seeds, required: str
                    ) -> list[tuple[dict | None, str | None, float]]:
    """Vectorised when the target offers it; on any error fall back to one call per scenario so
    that only the trials that really fail are marked failed."""
    if prepared is not None:
        started = time.perf_counter()
        try:
            batch = [_clean_metrics(r, required) for r in target.evaluate_prepared(prepared, params)]
            each = (time.perf_counter() - started) / max(1, len(batch))
            return [(metrics, None, each) for metrics in batch]
        except Exception:  # noqa: BLE001 - isolate the failing scenarios below
            pass
    out = []
    for scenario, seed in zip(scenarios, trial_seeds):
        started = time.perf_counter()
        try:
            metrics, error = _clean_metrics(target.evaluate(scenario, dict(params), seed), required), None
        except Exception as exc:  # noqa: BLE001 - a crashing target is data, not a crash
            metrics, error = None, _error_text(exc)
        out.append((metrics, error, time.perf_counter() - started))
    return out


def current_rows(study: RatchetStudy, trials: pd.DataFrame) -> pd.DataFrame:
    """The trial rows measured under the study as it is now: of its scenarios (rounds included)
    and with their point's current fingerprint. Rows an earlier run stored under another target
    version or scenario set (a validation round, a combination no run measures again) are left
    out, so the follow-ups measure them afresh."""
    if trials.empty:
        return trials
    expected = {}
    for key in trials["sweep_point"].unique():
        try:
            expected[key] = study.point_fingerprint(study.point_for(key))
        except KeyError:  # a point the study no longer names
            expected[key] = None
    own = trials["seed_id"].isin([s.seed_id for s in study.all_scenario_seeds])
    return trials[is_current(trials, trials["sweep_point"].map(expected), own)].reset_index(drop=True)


def points_by_key(study: RatchetStudy, keys: Iterable[str]) -> list[SweepPoint]:
    """The sweep points for the given keys: the study's own in its order, then registered
    combinations (``a=0.5,b=2``, asked for by the cumulative validation); unknown keys raise."""
    wanted = set(keys)
    points = [p for p in study.sweep_points() if p.key in wanted]
    unknown = []
    for key in sorted(wanted - {p.key for p in points}):
        try:
            points.append(study.point_for(key))
        except KeyError:
            unknown.append(key)
    if unknown:
        raise KeyError(
            f"sweep points {unknown} are registered but no longer in {study.path.name}; "
            "they were removed from the study"
        )
    return points
