"""Per-group confidence aggregates of many metrics: n, mean, std, min, max, cv, se, t and bootstrap CIs."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from benchmark_assets.stats.bootstrap import bootstrap_ci
from benchmark_assets.stats.intervals import describe


def stable_seed(*parts) -> int:
    """A seed derived from labels, so a group's interval never depends on what else was run."""
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little")


def aggregate_metrics(
    samples: pd.DataFrame,
    metrics: list[str],
    *,
    confidence_level: float = 0.95,
    n_resamples: int = 10_000,
    rng_seed: int = 0,
    label: str = "",
) -> pd.DataFrame:
    """One row per metric for one group of samples (rows = trials, NaN = not measured).

    Each metric's percentile interval resamples the trials that measured it; metrics measured
    on the same trials are resampled jointly. A metric measured once has a NaN interval, never
    an error."""
    values = samples[metrics].to_numpy(dtype=float).T  # (metrics, trials)
    summary = describe(values, confidence_level=confidence_level)
    boot_low = np.full(len(metrics), np.nan)
    boot_high = np.full(len(metrics), np.nan)
    # Each metric is resampled over the trials that measured it, like its n, mean and t-interval;
    # metrics measured on the same trials (the usual case) share one array computation.
    groups: dict[bytes, list[int]] = {}
    for row, observed in enumerate(~np.isnan(values)):
        if observed.any():
            groups.setdefault(np.packbits(observed).tobytes(), []).append(row)
    for rows in groups.values():
        observed = ~np.isnan(values[rows[0]])
        result = bootstrap_ci(values[np.ix_(rows, observed)], method="percentile", confidence_level=confidence_level,
                              n_resamples=n_resamples, rng=stable_seed(rng_seed, label))
        boot_low[rows], boot_high[rows] = result.low, result.high
    return pd.DataFrame(
        {
            "metric": metrics,
            "n": summary.n.astype(int),
            "mean": summary.mean,
            "std": summary.std,
            "min": summary.min,
            "max": summary.max,
            "cv": summary.cv,
            "se": summary.se,
            "t_low": summary.t_low,
            "t_high": summary.t_high,
            "bootstrap_low": boot_low,
            "bootstrap_high": boot_high,
        }
    )
