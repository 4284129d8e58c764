"""Aggregates of scores shaped (runs, tasks), as rliable: IQM, optimality gap, probability of improvement."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmark_assets.stats.bootstrap import BootstrapResult, RandomState, _generator, result_from_distribution
from benchmark_assets.stats.lazy import scipy_stats

# Resampled score arrays are evaluated in chunks of at most this many compared values.
_CHUNK_VALUES = 4_000_000


def iqm(scores) -> np.ndarray:
    """Interquartile mean of all run x task scores (``scipy.stats.trim_mean(flat, 0.25)``): the mean
    of the middle half, robust to outlier runs and tasks. Leading axes are kept."""
    s = _scores(scores, "scores")
    return scipy_stats().trim_mean(s.reshape(s.shape[:-2] + (-1,)), 0.25, axis=-1)


def optimality_gap(scores, *, gamma: float = 1.0) -> np.ndarray:
    """Mean shortfall below ``gamma``: mean of max(gamma - score, 0) over runs and tasks."""
    s = _scores(scores, "scores")
    return np.mean(np.maximum(gamma - s, 0.0), axis=(-2, -1))


def mean_score(scores) -> np.ndarray:
    """Mean over runs and tasks."""
    return np.mean(_scores(scores, "scores"), axis=(-2, -1))


def probability_of_improvement(scores_x, scores_y) -> np.ndarray:
    """P(X > Y) + P(X = Y)/2 for a random run of X against a random run of Y on the same task,
    averaged over tasks: the Mann-Whitney U / (n m) per task. Runs may differ in number."""
    x, y = _scores(scores_x, "scores_x"), _scores(scores_y, "scores_y")
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"both score sets need the same tasks, got {x.shape[-1]} and {y.shape[-1]}")
    left, right = x[..., :, None, :], y[..., None, :, :]
    per_task = np.mean(left > right, axis=(-3, -2)) + 0.5 * np.mean(left == right, axis=(-3, -2))
    return np.mean(per_task, axis=-1)


AGGREGATES: dict[str, Callable] = {
    "iqm": iqm,
    "optimality_gap": optimality_gap,
    "mean": mean_score,
    "probability_of_improvement": probability_of_improvement,
}


def stratified_bootstrap_ci(
    scores,
    statistic: str | Callable = "iqm",
    *,
    other=None,
    method: str = "percentile",
    confidence_level: float = 0.95,
    alternative: str = "two-sided",
    n_resamples: int = 9999,
    rng: RandomState = None,
) -> BootstrapResult:
    """Stratified bootstrap interval of an aggregate of (runs, tasks) scores: runs are resampled
    within each task independently (and, with ``other``, the other score set on its own too).

    ``statistic`` is a name in ``AGGREGATES`` or a function of (..., runs, tasks) arrays (two of
    them when ``other`` is given, e.g. ``probability_of_improvement``) returning the leading shape.
    Percentile or basic interval (BCa would need a stratified jackknife). Seeded by ``rng``."""
    aggregate = AGGREGATES[statistic] if isinstance(statistic, str) else statistic
    groups = [_scores(scores, "scores")] + ([] if other is None else [_scores(other, "other")])
    if any(g.ndim != 2 for g in groups):
        raise ValueError("stratified_bootstrap_ci takes scores shaped (runs, tasks)")
    generator, seed = _generator(rng)
    indices = [generator.integers(0, g.shape[0], size=(n_resamples,) + g.shape) for g in groups]
    per_resample = int(np.prod([g.size for g in groups]))
    chunk = max(1, _CHUNK_VALUES // per_resample)
    distribution = np.concatenate([
        aggregate(*(_take(g, i[start:start + chunk]) for g, i in zip(groups, indices)))
        for start in range(0, n_resamples, chunk)
    ])
    return result_from_distribution(
        aggregate(*groups), distribution, method=method, confidence_level=confidence_level, alternative=alternative,
        design="stratified", sample_sizes=tuple(g.shape[0] for g in groups), seed=seed,
    )


def _take(scores: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """scores[indices[b, r, t], t]: resampled runs, task by task."""
    return scores[indices, np.arange(scores.shape[1])]


def _scores(scores, name: str) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    if s.ndim < 2 or s.shape[-2] < 1 or s.shape[-1] < 1:
        raise ValueError(f"{name} must be shaped (runs, tasks) with at least one of each, got {s.shape}")
    if np.isnan(s).any():
        raise ValueError(f"{name} hold NaN; drop or impute failed runs first")
    return s
