"""Summary statistics, Student-t intervals and a vectorised, seeded bootstrap of the mean."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats


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
        critical = scipy_stats.t.ppf(0.5 + confidence_level / 2.0, np.where(n >= 2, n - 1, np.nan))
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


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile interval of the mean, the resampled means and a two-sided p-value against 0."""

    low: np.ndarray
    high: np.ndarray
    distribution: np.ndarray  # (..., n_resamples)

    def p_value_against_zero(self) -> np.ndarray:
        """Two-sided bootstrap p-value for 'mean is 0', with the +1 correction so it is never 0."""
        dist = self.distribution
        resamples = dist.shape[-1]
        at_or_below = (np.sum(dist <= 0, axis=-1) + 1) / (resamples + 1)
        at_or_above = (np.sum(dist >= 0, axis=-1) + 1) / (resamples + 1)
        return np.minimum(1.0, 2.0 * np.minimum(at_or_below, at_or_above))


def bootstrap_mean(
    samples,
    *,
    confidence_level: float = 0.95,
    n_resamples: int = 10_000,
    rng: np.random.Generator | int | None = None,
) -> BootstrapResult:
    """Seeded percentile bootstrap of the mean along the last axis, for every leading row at once.

    Rows share one set of resampling weights, so rows measured on the same units (metrics of
    the same trials, deltas paired on the same scenarios) are resampled jointly. The means are
    one matrix product of multinomial counts with the data, not a Python loop per row.
    """
    x = np.asarray(samples, dtype=float)
    if x.shape[-1] < 1:
        raise ValueError("bootstrap needs at least one sample")
    if np.isnan(x).any():
        raise ValueError("bootstrap samples hold NaN; drop failed trials before resampling")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = x.shape[-1]
    # Resample counts (multinomial(n, 1/n) per resample) from drawn indices with one bincount,
    # an order of magnitude faster than Generator.multinomial for thousands of resamples.
    drawn = generator.integers(0, n, size=(n_resamples, n))
    offsets = (np.arange(n_resamples) * n)[:, None]
    counts = np.bincount((drawn + offsets).ravel(), minlength=n_resamples * n).reshape(n_resamples, n).astype(float)
    distribution = np.matmul(x.reshape(-1, n), counts.T).reshape(*x.shape[:-1], n_resamples) / n
    tail = (1.0 - confidence_level) / 2.0
    low, high = np.quantile(distribution, [tail, 1.0 - tail], axis=-1)
    return BootstrapResult(low=low, high=high, distribution=distribution)
