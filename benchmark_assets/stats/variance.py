"""How the spread of a seed-averaged summary shrinks with the number of seeds, and the smallest stable N."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark_assets.stats.bootstrap import RandomState, Statistic, _apply, _generator, _statistic, resampled_statistic


@dataclass(frozen=True)
class VarianceCurve:
    """CV of the summary of n seeds for n = 2..N (``curve``: n, cv, cv_low, cv_high) and the
    smallest n whose band's upper edge stays below ``threshold`` from there on (None: never)."""

    curve: pd.DataFrame
    stable_n: int | None
    threshold: float
    confidence_level: float
    n_seeds: int
    seed: int | None


def variance_curve(
    values,
    *,
    statistic: str | Statistic = "mean",
    threshold: float = 0.05,
    confidence_level: float = 0.95,
    n_subsamples: int = 2000,
    n_outer: int = 500,
    rng: RandomState = None,
) -> VarianceCurve:
    """Coefficient of variation of ``statistic`` over n seeds, against n, from N measured seeds.

    For each n, ``n_subsamples`` subsamples of n seeds are drawn with replacement from the N values
    and cv(n) = std(their statistics) / |statistic of all N| (the reference pipeline's definition;
    it estimates SD/(sqrt(n) |mean|) with the plug-in SD). The band is a percentile bootstrap at
    ``confidence_level``: the same curve computed on ``n_outer`` resamples of the N seeds, all
    sharing one set of subsample draws per n. Seeded by ``rng``."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"variance_curve needs one value per seed, at least 2 seeds; got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("values hold NaN or infinite values; drop failed seeds first")
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level}")
    stat = _statistic(statistic)
    generator, seed = _generator(rng)
    n_seeds = x.size
    datasets = np.vstack([x, x[generator.integers(0, n_seeds, size=(n_outer, n_seeds))]])
    centre = np.abs(_apply(stat, datasets))
    if centre[0] == 0:
        raise ValueError("the summary of all seeds is 0, so its coefficient of variation is undefined")
    sizes = np.arange(2, n_seeds + 1)
    cv = np.empty((sizes.size, datasets.shape[0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        for row, size in enumerate(sizes):
            subsamples = generator.integers(0, n_seeds, size=(n_subsamples, size))
            cv[row] = np.std(resampled_statistic(datasets, subsamples, stat), axis=-1, ddof=1) / centre
    tail = (1.0 - confidence_level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an outer resample with summary 0 has cv inf
        low, high = np.quantile(cv[:, 1:], [tail, 1.0 - tail], axis=-1)
    curve = pd.DataFrame({"n": sizes, "cv": cv[:, 0], "cv_low": low, "cv_high": high})
    return VarianceCurve(curve=curve, stable_n=smallest_stable_n(curve, threshold), threshold=threshold,
                         confidence_level=confidence_level, n_seeds=n_seeds, seed=seed)


def smallest_stable_n(curve: pd.DataFrame, threshold: float = 0.05, *, column: str = "cv_high") -> int | None:
    """The smallest n at which ``column`` is below ``threshold`` for that n and every larger n.

    The default ``cv_high`` (the band's upper edge) is the conservative choice: the CV estimate
    itself dips below the threshold earlier by chance. None when even the largest n is above."""
    ordered = curve.sort_values("n")
    below = (ordered[column] < threshold).to_numpy()
    if not below.size or not below[-1]:
        return None
    # The stable run is the trailing block of True values.
    above = np.flatnonzero(~below)
    first = above[-1] + 1 if above.size else 0
    return int(ordered["n"].iloc[first])
