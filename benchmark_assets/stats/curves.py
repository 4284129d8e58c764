"""One number per learning curve or time series: window AUC, mean of the last points, window slope."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

SUMMARY_TYPES = ("auc", "last_n", "slope")


class CurveError(ValueError):
    """A curve that cannot give the requested summary; the message names the fix."""


@dataclass(frozen=True)
class CurveSpec:
    """Which summary: ``auc`` or ``slope`` over the last ``window`` fraction of the step range, or
    ``last_n`` (mean of the last ``n`` points)."""

    type: Literal["auc", "last_n", "slope"] = "auc"
    window: float = 0.25
    n: int = 5

    def __post_init__(self):
        if self.type not in SUMMARY_TYPES:
            raise CurveError(f"summary type {self.type!r} unknown; choose one of {SUMMARY_TYPES}")
        if not 0.0 < self.window <= 1.0:
            raise CurveError(f"window is a fraction of the step range in (0, 1], got {self.window}")
        if int(self.n) != self.n or self.n < 1:
            raise CurveError(f"n is a positive number of points, got {self.n}")

    @classmethod
    def parse(cls, spec: CurveSpec | dict) -> CurveSpec:
        if isinstance(spec, cls):
            return spec
        unknown = set(spec) - {"type", "window", "n"}
        if unknown:
            raise CurveError(f"curve summary keys {sorted(unknown)} unknown; use type, window and n")
        return cls(**spec)


def window_start(steps, window: float = 0.25) -> float:
    """Where the window begins: ``last - window * (last - first)`` of the steps, so the window is
    the last ``window`` fraction of the step *range* (not of the number of points)."""
    s = np.asarray(steps, dtype=float)
    return float(s[-1] - window * (s[-1] - s[0]))


def auc(steps, values, *, window: float = 0.25) -> np.ndarray:
    """Area under the curve over the window, divided by the window's span: the curve's average
    level there. Trapezoid rule over the points inside the window, with the value at the window's
    start linearly interpolated between its neighbouring points. ``values`` is (..., steps)."""
    s, v = _checked(steps, values, minimum=2, summary="auc")
    start = window_start(s, window)
    first_inside = int(np.searchsorted(s, start, side="right"))  # s[first_inside - 1] <= start < s[first_inside]
    before, after = first_inside - 1, first_inside
    fraction = (start - s[before]) / (s[after] - s[before])
    start_value = v[..., before] + fraction * (v[..., after] - v[..., before])
    x = np.concatenate([[start], s[after:]])
    y = np.concatenate([start_value[..., None], v[..., after:]], axis=-1)
    return np.trapezoid(y, x, axis=-1) / (s[-1] - start)


def last_n_mean(values, n: int) -> np.ndarray:
    """Mean of the last ``n`` values along the last axis."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 0 or v.shape[-1] < n:
        raise CurveError(f"the curve has {0 if v.ndim == 0 else v.shape[-1]} points, last_n needs {n}: "
                         "lower n or record more points")
    _check_values(v)
    return np.mean(v[..., -n:], axis=-1)


def slope(steps, values, *, window: float = 0.25) -> np.ndarray:
    """Least-squares slope (value per step) over the points whose step lies in the window
    (step >= ``window_start``); no interpolated point is added."""
    s, v = _checked(steps, values, minimum=2, summary="slope")
    inside = s >= window_start(s, window)
    if inside.sum() < 2:
        raise CurveError(f"the last {window:.0%} of steps {s[0]:g}..{s[-1]:g} holds {int(inside.sum())} point; "
                         "slope needs 2: widen the window or record more points")
    x, y = s[inside], v[..., inside]
    centred = x - x.mean()
    return np.sum((y - y.mean(axis=-1, keepdims=True)) * centred, axis=-1) / np.sum(centred**2)


def summarise_curve(steps, values, spec: CurveSpec | dict) -> np.ndarray:
    """The summary named by ``spec``: ``{"type": "auc", "window": 0.25}``, ``{"type": "last_n",
    "n": 5}`` or ``{"type": "slope", "window": 0.25}``. ``values`` may hold many curves, (...,
    steps), sharing ``steps``; the result has one number per curve."""
    spec = CurveSpec.parse(spec)
    if spec.type == "auc":
        return auc(steps, values, window=spec.window)
    if spec.type == "slope":
        return slope(steps, values, window=spec.window)
    _checked(steps, values, minimum=1, summary="last_n")
    return last_n_mean(values, spec.n)


def _check_values(v: np.ndarray) -> None:
    missing = np.isnan(v)
    if missing.any():
        where = np.argwhere(missing)[0]
        raise CurveError(f"values hold NaN ({int(missing.sum())}, first at index {tuple(int(i) for i in where)}): "
                         "drop or interpolate missing points before summarising")


def _checked(steps, values, *, minimum: int, summary: str) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    if s.ndim != 1:
        raise CurveError(f"steps must be one-dimensional, got shape {s.shape}")
    if v.ndim == 0 or v.shape[-1] != s.size:
        raise CurveError(f"values' last axis ({v.shape[-1] if v.ndim else 0}) must match the {s.size} steps")
    if s.size < minimum:
        raise CurveError(f"the curve has {s.size} point(s), {summary} needs at least {minimum}: record more "
                         "points or use last_n")
    if not np.isfinite(s).all():
        raise CurveError("steps hold NaN or infinite values: drop those points")
    gaps = np.diff(s)
    if (gaps <= 0).any():
        i = int(np.flatnonzero(gaps <= 0)[0]) + 1
        problem = "duplicate" if gaps[i - 1] == 0 else "unsorted"
        raise CurveError(f"steps are {problem} at index {i} (step {s[i]:g} after {s[i - 1]:g}): sort the curve by "
                         "step and keep one value per step (e.g. the last logged)")
    _check_values(v)
    return s, v
