"""Summary statistics and Student-t intervals of many rows of samples at once."""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np

from benchmark_assets.stats.lazy import scipy_stats


@functools.lru_cache(maxsize=4096)
def t_quantile(q: float, df: int) -> float:
    """Student-t's quantile, remembered: a stopping rule asks for the same few again and again."""
    return float(scipy_stats().t.ppf(q, df))


@dataclass(frozen=True)
class Description:
    """Per-row summary of samples; every field is an array over the leading axes."""

    n: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    cv: np.ndarray
    se: np.ndarray
    t_low: np.ndarray
    t_high: np.ndarray


def t_interval(mean, std, n, *, confidence_level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Student-t interval of a mean; NaN where n < 2 (one run has no spread)."""
    mean, std, n = np.asarray(mean, float), np.asarray(std, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = std / np.sqrt(n)
        critical = scipy_stats().t.ppf(0.5 + confidence_level / 2.0, np.where(n >= 2, n - 1, np.nan))
    half = critical * se
    return mean - half, mean + half


def describe(samples, *, confidence_level: float = 0.95) -> Description:
    """n, mean, std (ddof=1), min, max, cv, se and t-interval along the last axis, ignoring NaN."""
    x = np.asarray(samples, dtype=float)
    n = np.sum(~np.isnan(x), axis=-1)
    # All-NaN rows (no successful trial) are expected: they summarise to NaN without warnings.
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=-1)
        std = np.where(n >= 2, np.nanstd(x, axis=-1, ddof=1) if x.shape[-1] > 1 else np.nan, np.nan)
        low = np.nanmin(x, axis=-1) if x.shape[-1] else np.full(n.shape, np.nan)
        high = np.nanmax(x, axis=-1) if x.shape[-1] else np.full(n.shape, np.nan)
        se = std / np.sqrt(n)
        cv = np.where(mean != 0, std / np.abs(mean), np.nan)
    t_low, t_high = t_interval(mean, std, n, confidence_level=confidence_level)
    return Description(n=n, mean=mean, std=std, min=low, max=high, cv=cv, se=se, t_low=t_low, t_high=t_high)


def positive_mean_interval(values, *, confidence_level: float = 0.95) -> tuple[float, float]:
    """An interval for the mean of a positive quantity (a latency, a throughput) that stays
    positive: Cox's method on the log scale with a Student-t critical value, exp(m + s2/2 +- t *
    sqrt(s2/n + s2^2 / (2 (n - 1)))), m and s2 the mean and variance of the logs. With two or three
    trials a t-interval of the mean often reaches below 0 (TTFT p99 34 [-16, 84] ms) and covers
    skewed spreads too rarely. NaN with fewer than two values or any value <= 0."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n < 2 or (x <= 0).any():
        return float("nan"), float("nan")
    logs = np.log(x)
    variance = float(logs.var(ddof=1))
    centre = float(logs.mean()) + variance / 2.0
    se = np.sqrt(variance / n + variance**2 / (2.0 * (n - 1)))
    half = t_quantile(0.5 + confidence_level / 2.0, n - 1) * se
    with np.errstate(over="ignore"):  # two far-apart trials at 99 %: no upper bound (inf) is the honest one
        return float(np.exp(centre - half)), float(np.exp(centre + half))
