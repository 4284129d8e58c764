"""Pareto frontiers over several objectives, and the trend of a metric along a swept parameter."""
from __future__ import annotations

import numpy as np

from benchmark_assets.stats.lazy import scipy_stats


def pareto_optimal(values, maximize) -> np.ndarray:
    """Mask of the points no other point dominates.

    ``values`` is (points, objectives); ``maximize`` one bool per objective. A point dominates
    another when it is at least as good on every objective and better on one. Points with a NaN
    objective are never optimal (a failed sweep point has nothing to offer). Vectorised: one
    (points x points x objectives) comparison, fine for the hundreds of points a sweep has."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"values must be (points, objectives), got shape {x.shape}")
    signs = np.where(np.asarray(maximize, dtype=bool), 1.0, -1.0)
    if signs.size != x.shape[1]:
        raise ValueError(f"{x.shape[1]} objectives but {signs.size} directions")
    score = x * signs  # larger is better on every objective
    valid = ~np.isnan(score).any(axis=1)
    at_least = (score[:, None, :] >= score[None, :, :]).all(axis=2)  # [i, j]: i at least as good as j
    better = (score[:, None, :] > score[None, :, :]).any(axis=2)
    dominates = at_least & better & valid[:, None] & valid[None, :]
    return valid & ~dominates.any(axis=0)


def trend(parameter_values, metric_values) -> dict:
    """How a metric moves along a swept parameter: Spearman's rho and its p-value, the direction
    (increasing / decreasing / peaks / dips / flat), and where the best change happens.

    'peaks' ('dips'): the highest (lowest) value is at an interior parameter value and beats both
    ends, as throughput does past a server's capacity. Otherwise the sign of last - first."""
    x = np.asarray(parameter_values, dtype=float)
    y = np.asarray(metric_values, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    out = {"n": int(x.size), "spearman_rho": float("nan"), "p_value": float("nan"), "direction": "flat",
           "extreme_at": float("nan"), "largest_step_between": [float("nan"), float("nan")]}
    if x.size < 2 or np.ptp(y) == 0:
        return out
    if x.size >= 3 and np.ptp(x) > 0:
        result = scipy_stats().spearmanr(x, y)
        out["spearman_rho"], out["p_value"] = float(result.statistic), float(result.pvalue)
    steps = np.diff(y)
    biggest = int(np.argmax(np.abs(steps)))
    out["largest_step_between"] = [float(x[biggest]), float(x[biggest + 1])]
    top, bottom = int(np.argmax(y)), int(np.argmin(y))
    if 0 < top < x.size - 1 and y[top] > max(y[0], y[-1]):
        out["direction"], out["extreme_at"] = "peaks", float(x[top])
    elif 0 < bottom < x.size - 1 and y[bottom] < min(y[0], y[-1]):
        out["direction"], out["extreme_at"] = "dips", float(x[bottom])
    else:
        out["direction"] = "increasing" if y[-1] > y[0] else "decreasing"
        out["extreme_at"] = float(x[top] if y[-1] > y[0] else x[bottom])
    return out
