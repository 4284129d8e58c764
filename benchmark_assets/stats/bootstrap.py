"""The bootstrap engine: seeded percentile, basic and BCa intervals and p-values for many metrics at once."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from benchmark_assets.stats.lazy import ndtr, ndtri

METHODS = ("percentile", "basic", "bca")
ALTERNATIVES = ("two-sided", "less", "greater")
DESIGNS = ("one-sample", "paired", "unpaired")

Statistic = Callable[..., np.ndarray]
RandomState = np.random.Generator | int | Sequence[int] | None

# Resampled data for a non-mean statistic is materialised in chunks of at most this many values.
_CHUNK_VALUES = 4_000_000
_BLOCK_VALUES = 400_000  # resample indices drawn at a time by drawn_statistic
_LOOP_UNITS = 150  # above this many units, counting per resample is faster (see resample_counts)


class Interval(NamedTuple):
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Bootstrap interval of a statistic for every leading row of the data.

    ``distribution[..., b]`` is the statistic on resample ``b``; every row used the same resampled
    units, so rows measured on the same units (metrics of the same trials, constants paired on the
    same scenarios) stay jointly resampled. Rows with fewer than two units (per group) have NaN
    intervals and p-values: one run has no spread to resample. Rows whose data are constant get a
    zero-width interval at the estimate."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    distribution: np.ndarray  # (..., n_resamples)
    method: str
    confidence_level: float
    alternative: str
    design: str
    sample_sizes: tuple[int, ...]  # units per group: (n,) or (n_candidate, n_control)
    bias_correction: np.ndarray | None = None  # BCa z0, None for the other methods
    acceleration: np.ndarray | None = None  # BCa a (jackknife), None for the other methods
    seed: int | None = None  # pass as ``rng`` to reproduce; None when a Generator was passed
    sorted_distribution: np.ndarray = field(default=None, repr=False)
    constant: np.ndarray = field(default=None, repr=False)

    @property
    def n_resamples(self) -> int:
        return self.distribution.shape[-1]

    @property
    def valid(self) -> np.ndarray:
        """Rows with at least two units in every group, the ones that have an interval."""
        return np.broadcast_to(min(self.sample_sizes) >= 2, np.shape(self.estimate))

    @property
    def standard_error(self) -> np.ndarray:
        """Standard deviation (ddof=1) of the bootstrap distribution, as scipy reports it."""
        if self.n_resamples < 2:
            return np.full(np.shape(self.estimate), np.nan)[()]
        return np.where(self.valid, np.std(self.distribution, axis=-1, ddof=1), np.nan)[()]

    def interval_at(self, confidence_level) -> Interval:
        """The interval at another level (scalar, or one per row) from the same resamples.

        Used for multiplicity-corrected levels: each hypothesis gets its own level, no new draws."""
        return _interval(
            confidence_level=confidence_level, estimate=self.estimate, method=self.method,
            alternative=self.alternative, sample_sizes=self.sample_sizes, bias_correction=self.bias_correction,
            acceleration=self.acceleration, sorted_distribution=self.sorted_distribution, constant=self.constant,
        )

    def p_value(self, null=0.0) -> np.ndarray:
        """Bootstrap p-value for 'the statistic equals ``null``' against ``alternative``.

        It is the smallest ``1 - confidence_level`` at which this method's interval excludes
        ``null`` (so p < alpha agrees with the interval at 1 - alpha), with tail counts
        ``(count + 1) / (n_resamples + 1)`` so it is never 0. NaN where there is no interval."""
        return _p_value(self, null)


def bootstrap_ci(
    data,
    *,
    statistic: str | Statistic = "mean",
    method: str = "percentile",
    confidence_level: float = 0.95,
    alternative: str = "two-sided",
    n_resamples: int = 9999,
    rng: RandomState = None,
) -> BootstrapResult:
    """Bootstrap interval of ``statistic`` along the last axis of ``data``, for every leading row.

    One array computation for all rows: one (n_resamples, n) matrix of resample counts shared by
    every row, and for the mean a single matrix product. ``statistic`` is "mean" (fast path) or a
    function vectorised along ``axis=-1`` (``np.median``), evaluated on resampled indices.
    ``method`` is "percentile" (default: BCa covers better on skewed data but worse on heavy
    tails, see benchmarks/coverage.py), "basic" or "bca"; ``alternative`` as in ``scipy.stats.bootstrap``
    ("less" gives (-inf, high], "greater" gives [low, inf)). NaN data raise ValueError; a row with
    one value has a NaN interval. The same ``rng`` seed gives the same numbers; with the same seed
    scipy.stats.bootstrap draws the same resamples for a single row."""
    options = _options(method, alternative, confidence_level, n_resamples)
    x = _as_data(data, "data")
    generator, seed = _generator(rng)
    stat = _statistic(statistic)
    estimate = _apply(stat, x)
    distribution = drawn_statistic(x, generator, n_resamples, stat)
    jackknife = [_jackknife(x, stat)] if options[0] == "bca" else None
    return _result(estimate, distribution, jackknife, np.ptp(x, axis=-1) == 0, (x.shape[-1],), "one-sample",
                   options, seed)


def bootstrap_difference(
    candidate,
    control,
    *,
    paired: bool,
    statistic: str | Statistic = "mean",
    method: str = "percentile",
    confidence_level: float = 0.95,
    alternative: str = "two-sided",
    n_resamples: int = 9999,
    rng: RandomState = None,
) -> BootstrapResult:
    """Bootstrap interval of candidate - control along the last axis, for every leading row.

    ``paired=True``: the two arrays are measured on the same units (shared seeds) and the
    interval is the one-sample bootstrap of ``statistic`` of the differences (for the mean, the
    difference of means). ``paired=False``: two independent groups, each resampled on its own
    (candidate first, then control, as scipy does), the statistic is ``statistic(candidate) -
    statistic(control)`` and BCa's acceleration is the jackknife over both groups, as scipy's
    multi-sample BCa. Other options as in ``bootstrap_ci``."""
    if paired:
        a, b = _as_data(candidate, "candidate"), _as_data(control, "control")
        if a.shape != b.shape:
            raise ValueError(f"paired samples need equal shapes, got {a.shape} and {b.shape}; use paired=False "
                             "for independent groups")
        result = bootstrap_ci(a - b, statistic=statistic, method=method, confidence_level=confidence_level,
                              alternative=alternative, n_resamples=n_resamples, rng=rng)
        return dataclasses.replace(result, design="paired")
    options = _options(method, alternative, confidence_level, n_resamples)
    a, b = _as_data(candidate, "candidate"), _as_data(control, "control")
    lead = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    a = np.broadcast_to(a, lead + a.shape[-1:])
    b = np.broadcast_to(b, lead + b.shape[-1:])
    generator, seed = _generator(rng)
    stat = _statistic(statistic)
    indices_a = generator.integers(0, a.shape[-1], size=(n_resamples, a.shape[-1]))
    indices_b = generator.integers(0, b.shape[-1], size=(n_resamples, b.shape[-1]))
    estimate_a, estimate_b = _apply(stat, a), _apply(stat, b)
    distribution = resampled_statistic(a, indices_a, stat) - resampled_statistic(b, indices_b, stat)
    jackknife = None
    if options[0] == "bca":
        jackknife = [_jackknife(a, stat) - estimate_b[..., None], estimate_a[..., None] - _jackknife(b, stat)]
    constant = (np.ptp(a, axis=-1) == 0) & (np.ptp(b, axis=-1) == 0)
    return _result(estimate_a - estimate_b, distribution, jackknife, constant, (a.shape[-1], b.shape[-1]),
                   "unpaired", options, seed)


def resampled_statistic(x, indices, statistic: str | Statistic = "mean") -> np.ndarray:
    """``statistic`` of ``x[..., indices[b]]`` for every resample ``b``: shape (..., n_resamples).

    ``indices`` is (n_resamples, m) positions into the last axis of ``x`` (m may differ from the
    number of units, for subsamples). For the mean this is one matrix product with resample
    counts, which costs no memory per row; other statistics index the data in chunks."""
    x = np.asarray(x, dtype=float)
    stat = _statistic(statistic)
    indices = np.asarray(indices)
    n_resamples, size = indices.shape
    units = x.shape[-1]
    if stat is None:
        weights = resample_counts(indices, units) / size
        return np.matmul(x.reshape(-1, units), weights.T).reshape(x.shape[:-1] + (n_resamples,))
    rows = max(1, int(np.prod(x.shape[:-1])))
    chunk = max(1, _CHUNK_VALUES // (rows * size))
    parts = [stat(x[..., indices[start:start + chunk]], axis=-1) for start in range(0, n_resamples, chunk)]
    return np.concatenate(parts, axis=-1)


def drawn_statistic(x: np.ndarray, generator: np.random.Generator, n_resamples: int,
                    statistic: str | Statistic = "mean") -> np.ndarray:
    """``resampled_statistic`` of ``n_resamples`` resamples drawn from ``generator`` a block of
    rows at a time: the same draws (a generator's integers come in the same order whatever the
    block shape) without holding n_resamples x units indices and counts, whose fresh pages cost
    more than the counting at a thousand units."""
    units = x.shape[-1]
    block = max(1, _BLOCK_VALUES // units)
    parts = [resampled_statistic(x, generator.integers(0, units, size=(min(block, n_resamples - start), units)),
                                 statistic) for start in range(0, n_resamples, block)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)


def resample_counts(indices: np.ndarray, units: int) -> np.ndarray:
    """How often each unit is drawn in each resample: (n_resamples, units). Generator.multinomial
    is an order of magnitude slower for thousands of resamples. Few units: one bincount of the
    indices offset per resample; many (1,000 scenarios): one bincount per resample, which stays
    in cache and is ten times faster than the single scatter over n_resamples x units counts."""
    n_resamples = indices.shape[0]
    if units < _LOOP_UNITS:
        offsets = (np.arange(n_resamples) * units)[:, None]
        return np.bincount((indices + offsets).ravel(), minlength=n_resamples * units).reshape(n_resamples, units)
    counts = np.empty((n_resamples, units), dtype=np.int64)
    for b, drawn in enumerate(indices):
        counts[b] = np.bincount(drawn, minlength=units)
    return counts


def result_from_distribution(
    estimate,
    distribution,
    *,
    method: str = "percentile",
    confidence_level: float = 0.95,
    alternative: str = "two-sided",
    design: str,
    sample_sizes: tuple[int, ...],
    constant=False,
    seed: int | None = None,
) -> BootstrapResult:
    """A result (intervals, ``interval_at``, ``p_value``) from a bootstrap distribution drawn
    elsewhere, e.g. a stratified resampling. Percentile and basic only: BCa needs the jackknife of
    the design that drew the resamples."""
    options = _options(method, alternative, confidence_level, 1)
    if options[0] == "bca":
        raise ValueError("BCa needs the design's jackknife; use bootstrap_ci/bootstrap_difference, or percentile "
                         "or basic here")
    estimate = np.asarray(estimate, dtype=float)
    distribution = np.asarray(distribution, dtype=float)
    constant = np.broadcast_to(np.asarray(constant, dtype=bool), estimate.shape)
    return _result(estimate, distribution, None, constant, tuple(sample_sizes), design, options, seed)


def _options(method: str, alternative: str, confidence_level: float, n_resamples: int) -> tuple:
    method = str(method).lower()
    if method not in METHODS:
        raise ValueError(f"bootstrap method {method!r} unknown; choose one of {METHODS}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r} unknown; choose one of {ALTERNATIVES}")
    if not 0.0 < float(confidence_level) < 1.0:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples}")
    return method, alternative, float(confidence_level)


def _as_data(data, name: str) -> np.ndarray:
    x = np.asarray(data, dtype=float)
    if x.ndim == 0 or x.shape[-1] < 1:
        raise ValueError(f"{name}: the bootstrap needs at least one value along the last axis, got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(f"{name} holds {int(bad.sum())} NaN or infinite values; drop failed trials (or keep only "
                         "the seeds measured everywhere) before resampling")
    return x


def _generator(rng: RandomState) -> tuple[np.random.Generator, int | None]:
    """The generator to draw from and the seed that reproduces it (fresh entropy is recorded too)."""
    if isinstance(rng, np.random.Generator):
        return rng, None
    sequence = np.random.SeedSequence(rng)
    return np.random.default_rng(sequence), sequence.entropy


def _statistic(statistic) -> Statistic | None:
    """None stands for the mean, which has the matrix-product fast path."""
    if statistic is None or statistic is np.mean or (isinstance(statistic, str) and statistic == "mean"):
        return None
    if callable(statistic):
        return statistic
    raise ValueError(f"statistic {statistic!r} unknown; pass 'mean' or a function vectorised along axis=-1")


def _apply(stat: Statistic | None, x: np.ndarray) -> np.ndarray:
    return np.mean(x, axis=-1) if stat is None else np.asarray(stat(x, axis=-1), dtype=float)


def _jackknife(x: np.ndarray, stat: Statistic | None) -> np.ndarray:
    """The statistic with each unit left out in turn: (..., n)."""
    n = x.shape[-1]
    if n < 2:
        return np.full(x.shape, np.nan)
    if stat is None:
        return (np.sum(x, axis=-1, keepdims=True) - x) / (n - 1)
    keep = ~np.eye(n, dtype=bool)
    leave_one_out = np.broadcast_to(np.arange(n), (n, n))[keep].reshape(n, n - 1)
    return np.asarray(stat(x[..., leave_one_out], axis=-1), dtype=float)


def _acceleration(jackknife: list[np.ndarray]) -> np.ndarray:
    """BCa acceleration from per-group jackknife values (Efron & Tibshirani eq. 14.15; scipy's
    sum over samples for several groups)."""
    numerator = denominator = 0.0
    for values in jackknife:
        n = values.shape[-1]
        u = (n - 1) * (np.mean(values, axis=-1, keepdims=True) - values)
        numerator = numerator + np.sum(u**3, axis=-1) / n**3
        denominator = denominator + np.sum(u**2, axis=-1) / n**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / (6.0 * denominator**1.5), 0.0)


def _result(estimate, distribution, jackknife, constant, sample_sizes, design, options, seed) -> BootstrapResult:
    method, alternative, confidence_level = options
    sorted_distribution = np.sort(distribution, axis=-1)
    z0 = a = None
    if method == "bca":
        with np.errstate(invalid="ignore", divide="ignore"):
            below = np.sum(distribution < estimate[..., None], axis=-1)
            at_or_below = np.sum(distribution <= estimate[..., None], axis=-1)
            z0 = ndtri((below + at_or_below) / (2.0 * distribution.shape[-1]))
            a = _acceleration(jackknife)
        # Constant data have no bias or skew to correct, and their resampled means differ from the
        # estimate only by rounding, which would otherwise make z0 infinite.
        z0, a = np.where(constant, 0.0, z0)[()], np.where(constant, 0.0, a)[()]
    fields = {"estimate": estimate[()], "method": method, "alternative": alternative, "sample_sizes": sample_sizes,
              "bias_correction": z0, "acceleration": a, "sorted_distribution": sorted_distribution,
              "constant": constant}
    low, high = _interval(confidence_level=confidence_level, **fields)
    return BootstrapResult(low=low, high=high, distribution=distribution, confidence_level=confidence_level,
                           design=design, seed=seed, **fields)


def _interval(*, confidence_level, estimate, method, alternative, sample_sizes, bias_correction, acceleration,
              sorted_distribution, constant) -> Interval:
    level = np.asarray(confidence_level, dtype=float)
    if np.any((level <= 0.0) | (level >= 1.0)):
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level}")
    tail = (1.0 - level) / 2.0 if alternative == "two-sided" else 1.0 - level
    estimate = np.asarray(estimate, dtype=float)
    if method == "bca":
        z0, a, z = bias_correction, acceleration, ndtri(tail)
        with np.errstate(invalid="ignore", divide="ignore"):
            lower_level = ndtr(z0 + (z0 + z) / (1.0 - a * (z0 + z)))
            upper_level = ndtr(z0 + (z0 - z) / (1.0 - a * (z0 - z)))
    else:
        lower_level, upper_level = tail, 1.0 - tail
    lower_level, upper_level, estimate = np.broadcast_arrays(lower_level, upper_level, estimate)
    low, high = sorted_quantiles(sorted_distribution, np.stack([lower_level, upper_level], axis=-1))
    if method == "basic":
        low, high = 2.0 * estimate - high, 2.0 * estimate - low
    constant = np.broadcast_to(constant, estimate.shape)
    low, high = np.where(constant, estimate, low), np.where(constant, estimate, high)
    if alternative == "less":
        low = np.full(estimate.shape, -np.inf)
    elif alternative == "greater":
        high = np.full(estimate.shape, np.inf)
    valid = min(sample_sizes) >= 2
    return Interval(np.where(valid, low, np.nan)[()], np.where(valid, high, np.nan)[()])


def sorted_quantiles(sorted_distribution: np.ndarray, levels) -> tuple[np.ndarray, ...]:
    """Quantiles of each row of an already sorted (..., B) array at that row's own levels.

    ``levels`` is (..., k), broadcast against the leading shape; numpy's default 'linear' rule
    (also scipy.stats.quantile's), so results equal ``np.quantile`` row by row. NaN levels give
    NaN. Returns k arrays of the leading shape. Sorting once and gathering beats ``np.partition``
    here: numpy's SIMD sort of 10^7 values is faster than two partitions."""
    values = np.asarray(sorted_distribution, dtype=float)
    count = values.shape[-1]
    levels = np.asarray(levels, dtype=float)
    levels = np.broadcast_to(levels, values.shape[:-1] + levels.shape[-1:])
    missing = np.isnan(levels)
    position = np.where(missing, 0.0, np.clip(levels, 0.0, 1.0)) * (count - 1)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, count - 1)
    weight = position - below
    left = np.take_along_axis(values, below, axis=-1)
    right = np.take_along_axis(values, above, axis=-1)
    difference = right - left
    # numpy's lerp: interpolate from the nearer end so the result is exact at both ends.
    result = np.where(weight >= 0.5, right - difference * (1.0 - weight), left + difference * weight)
    result = np.where(missing, np.nan, result)
    return tuple(result[..., j][()] for j in range(result.shape[-1]))


def _p_value(result: BootstrapResult, null) -> np.ndarray:
    distribution = result.distribution
    estimate = np.asarray(result.estimate, dtype=float)
    null = np.broadcast_to(np.asarray(null, dtype=float), estimate.shape)
    resamples = distribution.shape[-1]
    # The basic interval reflects the distribution about the estimate, so it excludes ``null``
    # exactly when the percentile interval excludes the reflected point.
    reference = 2.0 * estimate - null if result.method == "basic" else null
    at_or_below = (np.sum(distribution <= reference[..., None], axis=-1) + 1.0) / (resamples + 1.0)
    at_or_above = (np.sum(distribution >= reference[..., None], axis=-1) + 1.0) / (resamples + 1.0)
    if result.method == "basic":
        p_greater, p_less = at_or_above, at_or_below
    elif result.method == "percentile":
        p_greater, p_less = at_or_below, at_or_above
    else:
        z0, a = result.bias_correction, result.acceleration
        p_greater = _invert_bca(ndtri(at_or_below) - z0, z0, a, resamples)
        p_less = _invert_bca(ndtri(at_or_above) + z0, -z0, -a, resamples)
    if result.alternative == "greater":
        p = p_greater
    elif result.alternative == "less":
        p = p_less
    else:
        p = np.minimum(1.0, 2.0 * np.minimum(p_greater, p_less))
    return np.where(result.valid, p, np.nan)[()]


def _invert_bca(w, z0, a, resamples: int) -> np.ndarray:
    """The one-sided alpha whose BCa lower bound sits at quantile level Phi(w + z0) of the
    distribution: solve Phi(z0 + (z0 + z)/(1 - a (z0 + z))) = Phi(w + z0) for z = Phi^-1(alpha).

    The upper side is the same problem mirrored (z0 and a change sign). Where 1 + a w <= 0 the
    bound can never reach that quantile: the null is always excluded (w < 0) or never (w > 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        reachable = 1.0 + a * w > 0
        alpha = ndtr(w / (1.0 + a * w) - z0)
    alpha = np.where(reachable, alpha, np.where(w < 0, 0.0, 1.0))
    # Every resample on one side of the null puts w at +-inf (the quantile is 0 or 1): the bound
    # reaches the null never (alpha 1) or always (alpha 0), not NaN.
    alpha = np.where(np.isinf(w), np.where(w > 0, 1.0, 0.0), alpha)
    return np.clip(alpha, 1.0 / (resamples + 1.0), 1.0)
