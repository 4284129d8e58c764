"""Training curves from CSV files, as tools export them. No Dagster.

Three shapes are read, told apart by the header (names are matched without regard to case):

- wide: ``step`` and one column per metric (``step,loss,accuracy``);
- long: ``metric,step,value`` (several metrics in one file);
- TensorBoard's scalar download: ``Wall time,Step,Value``, one metric, named by the caller.

A ``seed`` column (and ``arm``, ``commit``) may say whose trial a row is; a file whose rows name
several seeds holds several trials. Wall-time columns are kept only as the trial's duration.
Empty cells (a metric not logged at that step) are left out of that metric's curve.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

STEP, METRIC, VALUE = "step", "metric", "value"
IDENTITY = ("seed", "arm", "commit")
TIME_COLUMNS = ("wall time", "wall_time", "walltime", "time", "timestamp", "relative", "_timestamp", "_runtime")


class CurveFileError(ValueError):
    """A CSV file that holds no usable curves; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class CurveTrial:
    """The curves of one trial in a file: metric -> (steps, values), sorted by step."""

    curves: dict[str, tuple[np.ndarray, np.ndarray]]
    seed: int | None = None
    arm: str | None = None
    commit: str | None = None
    duration_seconds: float = 0.0
    rows: int = 0
    extra: dict = field(default_factory=dict)


def _numbers(frame: pd.DataFrame, column: str, name: str) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = frame[column].notna() & values.isna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise CurveFileError(f"{name}: column {column!r} holds {frame[column].iloc[first]!r} on data row {first + 1}, "
                             "not a number; export numbers only")
    finite = values.dropna()
    if (~np.isfinite(finite.to_numpy(float))).any():
        raise CurveFileError(f"{name}: column {column!r} holds an infinite value; export finite numbers")
    return values


def _curve(steps: pd.Series, values: pd.Series, metric: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    keep = values.notna() & steps.notna()
    s, v = steps[keep].to_numpy(float), values[keep].to_numpy(float)
    order = np.argsort(s, kind="stable")
    s, v = s[order], v[order]
    if s.size and (np.diff(s) == 0).any():
        step = s[:-1][np.diff(s) == 0][0]
        raise CurveFileError(f"{name}: {metric} has two values at step {step:g}; export one value per step "
                             "(or give each trial its own seed column value)")
    return s, v


def _single(frame: pd.DataFrame, column: str, name: str) -> str | None:
    if column not in frame:
        return None
    values = frame[column].dropna().astype(str).str.strip().unique()
    if len(values) > 1:
        raise CurveFileError(f"{name}: column {column!r} holds several values ({', '.join(values[:4])}) in one trial")
    return values[0] if len(values) else None


def read_curves(path: Path, *, single_metric: str) -> list[CurveTrial]:
    """Every trial of a curves CSV (one, unless a ``seed`` column names several); a lone ``value``
    column is the curve of ``single_metric``. CurveFileError says what is wrong with the file."""
    name = path.name
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except (OSError, UnicodeDecodeError) as error:
        raise CurveFileError(f"cannot read {name} ({error})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        first = (str(error).strip().splitlines() or ["unreadable"])[0]
        raise CurveFileError(f"{name} is not a CSV table ({first}); give a header row and one row per step") from None
    columns = {str(c).strip().lower(): c for c in frame.columns}
    frame = frame.rename(columns={original: low for low, original in columns.items()})
    if STEP not in frame:
        raise CurveFileError(f"{name} has no step column (it has: {', '.join(map(str, columns.values()))}); give a "
                             "header of step and one column per metric, or metric,step,value")
    if frame.empty:
        raise CurveFileError(f"{name} has a header but no rows")
    durations = [c for c in TIME_COLUMNS if c in frame]
    groups = [frame] if "seed" not in frame else [g for _, g in frame.groupby("seed", sort=True, dropna=False)]
    trials = []
    for group in groups:
        steps = _numbers(group, STEP, name)
        if METRIC in group and VALUE in group:
            values = _numbers(group, VALUE, name)
            curves = {str(metric).strip(): _curve(steps[rows.index], values[rows.index], str(metric), name)
                      for metric, rows in group.groupby(METRIC, sort=False)}
        elif VALUE in group and len([c for c in group if c not in (STEP, VALUE, *IDENTITY, *TIME_COLUMNS)]) == 0:
            curves = {single_metric: _curve(steps, _numbers(group, VALUE, name), single_metric, name)}
        else:
            metrics = [c for c in group.columns if c not in (STEP, METRIC, *IDENTITY, *TIME_COLUMNS)]
            if not metrics:
                raise CurveFileError(f"{name} has a step column but no metric columns; add one column per metric")
            curves = {columns.get(m, m): _curve(steps, _numbers(group, m, name), str(m), name) for m in metrics}
        curves = {m: c for m, c in curves.items() if c[0].size}
        if not curves:
            raise CurveFileError(f"{name} has no value in any metric column")
        seed = _single(group, "seed", name)
        if seed is not None and not (seed.lstrip("-").replace(".0", "", 1).isdigit()):
            raise CurveFileError(f"{name}: seed {seed!r} is not a whole number")
        duration = 0.0
        if durations:
            times = pd.to_numeric(group[durations[0]], errors="coerce").dropna()
            duration = float(times.max() - times.min()) if len(times) > 1 and math.isfinite(times.max()) else 0.0
        trials.append(CurveTrial(curves=curves, seed=None if seed is None else int(float(seed)),
                                 arm=_single(group, "arm", name), commit=_single(group, "commit", name),
                                 duration_seconds=max(duration, 0.0), rows=len(group)))
    return trials
