"""Acceptance criteria judged on intervals, not on one run: ``met`` when the whole interval of the
effect lies inside the region the criterion asks for, ``not_met`` when it lies wholly outside,
``inconclusive`` when it straddles a boundary (with about how many repeats would settle it).
No Dagster.

Every criterion is a region ``[low, high]`` (either end may be infinite) for one effect:

- ``ratio``: mean(optimised) / mean(baseline) on paired repeats, estimated on the log of the
  paired ratios (a t-interval on their mean, so the ratio is a geometric-mean ratio; the values
  must be positive). A band "reduction 45-55 %" is the region [0.45, 0.55]; "at least 2x faster"
  (times) is [0, 0.5]; "accuracy loss below 2 %" is [0.98, inf); "within +-5 %" is [0.95, 1.05].
- ``difference``: mean(optimised - baseline) on paired repeats (a t-interval).
- ``mean``: the optimised side's own mean (a t-interval), for "mean latency below 10 ms".

The claim a criterion makes (met or not_met) is a one-sided test at each boundary: met is an
intersection-union test (every boundary crossed; its p-value is the largest), not_met rejects the
region at the nearer boundary. Across a suite, Holm's step-down on those p-values controls the
chance of any false claim at 1 - confidence_level; each criterion's interval is reported at the
two-sided level whose one-sided tails are its Holm level, so "met" always means the reported
interval is inside the region.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from benchmark_assets.stats.lazy import scipy_stats
from benchmark_assets.stats.multiple import adjust_p_values, step_down_tails

EFFECTS = ("ratio", "difference", "mean")
VERDICTS = ("met", "not_met", "inconclusive")


@dataclass(frozen=True)
class Criterion:
    """Where ``effect`` must lie: ``low <= effect <= high`` (on the effect's own scale)."""

    name: str
    effect: str
    low: float = -math.inf
    high: float = math.inf

    def __post_init__(self):
        if self.effect not in EFFECTS:
            raise ValueError(f"{self.name}: effect {self.effect!r} unknown; choose one of {', '.join(EFFECTS)}")
        if not self.low <= self.high:
            raise ValueError(f"{self.name}: the region's low end {self.low} is above its high end {self.high}")
        if math.isinf(self.low) and math.isinf(self.high):
            raise ValueError(f"{self.name}: the region has no finite end, so there is nothing to judge; give it "
                             "a low or a high end")
        if self.effect == "ratio" and self.high <= 0:
            raise ValueError(f"{self.name}: a ratio region must reach above 0")


@dataclass(frozen=True)
class Judgement:
    criterion: str
    verdict: str
    estimate: float
    low: float  # the interval, at confidence_level (two-sided)
    high: float
    confidence_level: float
    p_value: float  # of the claim the estimate points to (met or not_met), before correction
    adjusted_p_value: float
    repeats: int
    repeats_needed: int | None  # inconclusive only: about how many would settle it
    reason: str
    # The same interval without the correction: each boundary a one-sided test at 1 -
    # confidence_level, a (1 - 2 alpha) interval as in TOST.
    plain_low: float = math.nan
    plain_high: float = math.nan
    plain_level: float = math.nan


@dataclass(frozen=True)
class Unpaired:
    """Independent repeats of each side (no shared seeds, e.g. two pytest-benchmark runs): the
    effect's interval is Welch's, on the logs for a ratio (a ratio of geometric means)."""

    baseline: object
    optimised: object
    unit: str = "repeats"  # what each value is one of, for "about N <unit> would settle it"


@dataclass(frozen=True)
class Summary:
    """Only each side's mean, standard deviation and number of rounds are known: Welch's interval
    from those figures (for a ratio, the delta method on the log of the means)."""

    baseline_mean: float
    baseline_sd: float
    baseline_n: int
    optimised_mean: float
    optimised_sd: float
    optimised_n: int


@dataclass(frozen=True)
class _Pivot:
    """A t pivot on the scale the test is done on (log for ratios)."""

    estimate: float
    se: float
    df: float
    n: int
    low: float  # the region on the same scale
    high: float
    unit: str = "repeats"


def _region(criterion: Criterion) -> tuple[float, float]:
    """The criterion's region on the scale its test uses (log for a ratio)."""
    low, high = criterion.low, criterion.high
    if criterion.effect == "ratio":
        return (math.log(low) if low > 0 else -math.inf), (math.log(high) if math.isfinite(high) else math.inf)
    return low, high


def _welch(variances: tuple[float, float], counts: tuple[int, int]) -> tuple[float, float]:
    """Standard error of a difference of two independent means and its Welch-Satterthwaite df."""
    parts = [v / n for v, n in zip(variances, counts)]
    se2 = sum(parts)
    if se2 == 0:
        return 0.0, float(sum(counts) - 2)
    return math.sqrt(se2), se2**2 / sum(p**2 / (n - 1) for p, n in zip(parts, counts))


def _independent(criterion: Criterion, sample) -> _Pivot:
    """The pivot of an Unpaired or a Summary sample."""
    low, high = _region(criterion)
    if criterion.effect == "mean":
        if not isinstance(sample, Summary):
            raise ValueError(f"{criterion.name}: a mean criterion takes the optimised side's values, not two sides")
        n = int(sample.optimised_n)
        if n < 2:
            raise ValueError(f"{criterion.name}: at least 2 rounds are needed for an interval, got {n}")
        return _Pivot(float(sample.optimised_mean), float(sample.optimised_sd) / math.sqrt(n), n - 1, n, low, high)
    if isinstance(sample, Summary):
        means = (sample.baseline_mean, sample.optimised_mean)
        counts = (int(sample.baseline_n), int(sample.optimised_n))
        variances = (sample.baseline_sd**2, sample.optimised_sd**2)
        if criterion.effect == "ratio":
            if min(means) <= 0:
                raise ValueError(f"{criterion.name}: a ratio needs positive means on both sides")
            variances = tuple(v / m**2 for v, m in zip(variances, means))  # delta method: var of log(mean)
            estimate = math.log(means[1]) - math.log(means[0])
        else:
            estimate = means[1] - means[0]
    else:
        values = [np.asarray(v, dtype=float) for v in (sample.baseline, sample.optimised)]
        if criterion.effect == "ratio":
            if any((v <= 0).any() for v in values):
                raise ValueError(f"{criterion.name}: a ratio needs positive values on both sides")
            values = [np.log(v) for v in values]
        counts = (values[0].size, values[1].size)
        if min(counts) < 2:
            raise ValueError(f"{criterion.name}: at least 2 repeats per side are needed for an interval, "
                             f"got {min(counts)}")
        variances = (float(values[0].var(ddof=1)), float(values[1].var(ddof=1)))
        estimate = float(values[1].mean() - values[0].mean())
    if min(counts) < 2:
        raise ValueError(f"{criterion.name}: at least 2 rounds per side are needed for an interval, got {min(counts)}")
    se, df = _welch(variances, counts)
    return _Pivot(estimate, se, df, min(counts), low, high, getattr(sample, "unit", "repeats"))


def _pivot(criterion: Criterion, sample) -> _Pivot:
    if isinstance(sample, (Unpaired, Summary)):
        return _independent(criterion, sample)
    baseline, optimised = sample
    optimised = np.asarray(optimised, dtype=float)
    baseline = np.asarray(baseline, dtype=float) if baseline is not None else None
    low, high = _region(criterion)
    if criterion.effect == "mean":
        values = optimised
    else:
        if baseline is None or baseline.shape != optimised.shape:
            raise ValueError(f"{criterion.name}: a {criterion.effect} needs the same number of paired repeats "
                             f"on both sides")
        if criterion.effect == "ratio":
            if (baseline <= 0).any() or (optimised <= 0).any():
                raise ValueError(f"{criterion.name}: a ratio needs positive values on both sides")
            values = np.log(optimised) - np.log(baseline)
        else:
            values = optimised - baseline
    n = values.size
    if n < 2:
        raise ValueError(f"{criterion.name}: at least 2 repeats are needed for an interval, got {n}")
    return _Pivot(float(values.mean()), float(values.std(ddof=1) / math.sqrt(n)), n - 1, n, low, high)


def _pivot_or_reason(criterion: Criterion, sample) -> _Pivot | str:
    """The pivot, or why the data cannot be judged (too few repeats, a ratio of values <= 0)."""
    try:
        return _pivot(criterion, sample)
    except ValueError as error:
        return str(error).removeprefix(f"{criterion.name}: ")


def _one_sided(pivot: _Pivot) -> tuple[float, float, float, float]:
    """p-values of: effect <= low (rejected: above low), effect >= high (below high), effect >= low
    (below low), effect <= high (above high). A degenerate spread decides by the estimate."""
    def sf(bound: float) -> float:  # P(T >= t) for the claim "above bound"
        if not math.isfinite(bound):
            return 0.0 if bound < 0 else 1.0
        if pivot.se == 0:
            return 0.0 if pivot.estimate > bound else 1.0
        return float(scipy_stats().t.sf((pivot.estimate - bound) / pivot.se, pivot.df))

    def cdf(bound: float) -> float:  # claim "below bound"
        if not math.isfinite(bound):
            return 0.0 if bound > 0 else 1.0
        if pivot.se == 0:
            return 0.0 if pivot.estimate < bound else 1.0
        return float(scipy_stats().t.cdf((pivot.estimate - bound) / pivot.se, pivot.df))

    return sf(pivot.low), cdf(pivot.high), cdf(pivot.low), sf(pivot.high)


def _claim(pivot: _Pivot) -> tuple[str, float]:
    """The claim the data point to and its p-value: met (inside: above low and below high, an
    intersection-union test) or not_met (outside, at the nearer boundary)."""
    above_low, below_high, below_low, above_high = _one_sided(pivot)
    if pivot.low <= pivot.estimate <= pivot.high:
        return "met", max(above_low, below_high)
    p = min(below_low, above_high)
    if math.isfinite(pivot.low) and math.isfinite(pivot.high) and pivot.se > 0:
        # An estimate this far outside could also have fallen as far outside the other end: with
        # a narrow band both tails count, else a true effect on an edge would be called not met
        # up to twice as often as promised (the sup over the band of P(as far outside)).
        distance = max(pivot.low - pivot.estimate, pivot.estimate - pivot.high) / pivot.se
        width = (pivot.high - pivot.low) / pivot.se
        p = min(1.0, p + float(scipy_stats().t.cdf(-distance - width, pivot.df)))
    return "not_met", p


CORRECTIONS = ("holm", "bonferroni", "none")


def fewest_runs(criterion: Criterion, baseline: tuple[float, float] | None, optimised: tuple[float, float],
                alpha: float) -> int:
    """How many independent runs of each side a criterion needs at the least, when each side has
    one run and so no measure of how runs differ: each side's (mean, standard error of that mean
    within its run) stands in for the spread of run means, which it can only understate (runs
    add machine state that rounds within a run share). A lower bound, at least 2."""
    low, high = _region(criterion)
    sides = ([baseline] if baseline else []) + [optimised]
    means, errors = [m for m, _ in sides], [se for _, se in sides]
    if criterion.effect == "ratio":
        if min(means) <= 0:
            return 2
        estimate = math.log(optimised[0]) - math.log(baseline[0])
        errors = [se / m for se, m in zip(errors, means)]
    else:
        estimate = optimised[0] - (baseline[0] if criterion.effect == "difference" else 0.0)
    gap = min(abs(estimate - b) for b in (low, high) if math.isfinite(b))
    spread = math.sqrt(sum(e**2 for e in errors))  # of a difference of one run each: n runs divide it by sqrt(n)
    if gap == 0:
        return 2
    return max(2, math.ceil((scipy_stats().norm.isf(alpha) * spread / gap) ** 2))


def _repeats_needed(pivot: _Pivot, alpha: float) -> int | None:
    """About how many paired repeats would put the interval on one side of the boundary it now
    straddles, if the spread and the estimate stayed as observed (a normal approximation)."""
    gap = min(abs(pivot.estimate - b) for b in (pivot.low, pivot.high) if math.isfinite(b))
    spread = pivot.se * math.sqrt(pivot.n)
    if gap == 0 or spread == 0:
        return None
    return max(pivot.n + 1, math.ceil((scipy_stats().norm.isf(alpha) * spread / gap) ** 2))


INTERVALS = ("t", "bootstrap")


@dataclass(frozen=True)
class _Bootstrap:
    """A paired percentile bootstrap of the effect on its own scale (the ratio of the means, the
    mean difference, the optimised mean): its estimate, one-sided p-values and intervals."""

    estimate: float
    two_sided: object  # BootstrapResult
    greater: object
    less: object

    def above(self, bound: float) -> float:
        """p-value of 'the effect is above ``bound``' (1 where it cannot be, 0 where it must be)."""
        return 0.0 if bound == -math.inf else 1.0 if bound == math.inf else float(self.greater.p_value(bound))

    def below(self, bound: float) -> float:
        return 0.0 if bound == math.inf else 1.0 if bound == -math.inf else float(self.less.p_value(bound))


def _bootstrap(criterion: Criterion, sample, n_resamples: int, seed) -> _Bootstrap:
    from benchmark_assets.stats.bootstrap import resampled_statistic, result_from_distribution

    baseline, optimised = sample
    optimised = np.asarray(optimised, dtype=float)
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, optimised.size, size=(n_resamples, optimised.size))
    if criterion.effect == "mean":
        estimate, distribution = float(optimised.mean()), resampled_statistic(optimised, indices)
    else:
        pair = np.vstack([np.asarray(baseline, dtype=float), optimised])
        means = resampled_statistic(pair, indices)  # both sides resampled on the same repeats
        if criterion.effect == "ratio":
            estimate, distribution = float(optimised.mean() / pair[0].mean()), means[1] / means[0]
        else:
            estimate, distribution = float(optimised.mean() - pair[0].mean()), means[1] - means[0]
    results = [result_from_distribution(estimate, distribution, method="percentile", alternative=alternative,
                                        design="paired", sample_sizes=(optimised.size,))
               for alternative in ("two-sided", "greater", "less")]
    return _Bootstrap(estimate, *results)


def _bootstrap_claim(boot: _Bootstrap, criterion: Criterion) -> tuple[str, float]:
    low = criterion.low if not (criterion.effect == "ratio" and criterion.low <= 0) else -math.inf
    if low <= boot.estimate <= criterion.high:
        return "met", max(boot.above(low), boot.below(criterion.high))
    return "not_met", min(boot.below(low), boot.above(criterion.high))


def judge(criteria: list[Criterion], samples: list, *, confidence_level: float = 0.95,
          correction: str = "holm", interval: str = "t", n_resamples: int = 10_000, rng_seed: int = 0
          ) -> list[Judgement]:
    """Judge each criterion on its (baseline, optimised) paired repeats (baseline may be None for
    a ``mean``), an ``Unpaired`` or a ``Summary``; the claims are corrected across all of them
    together. A criterion whose data cannot be judged (a side that failed, a metric it did not
    return) is given as a string, the reason: it is ``inconclusive`` with that reason and still
    counts in the suite's correction (with p = 1), so a broken benchmark never makes the others
    look more certain.

    ``interval="bootstrap"``: paired samples are judged on the effect's own scale (a ratio of
    arithmetic means) with a paired percentile bootstrap, and the reported interval is the
    bootstrap's; a claim then needs the t-test to make the same claim too (its p-value is the
    larger of the two). At a handful of repeats the bootstrap alone is far too narrow (with two
    repeats of one sign every resample agrees), so it never claims more than the t-test would."""
    if len(criteria) != len(samples):
        raise ValueError("one (baseline, optimised) pair of samples per criterion")
    if not 0.5 < confidence_level < 1:
        raise ValueError(f"confidence_level must be between 0.5 and 1, got {confidence_level}")
    if interval not in INTERVALS:
        raise ValueError(f"interval {interval!r} unknown; choose one of {', '.join(INTERVALS)}")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction {correction!r} unknown; choose one of {', '.join(CORRECTIONS)} (a false "
                         "discovery rate would not make 'N of M met' mean what it says)")
    alpha = 1.0 - confidence_level
    pivots = [s if isinstance(s, str) else _pivot_or_reason(c, s) for c, s in zip(criteria, samples)]
    claims = [("inconclusive", 1.0) if isinstance(p, str) else _claim(p) for p in pivots]
    boots: list[_Bootstrap | None] = [None] * len(criteria)
    if interval == "bootstrap":
        for i, (criterion, sample, pivot) in enumerate(zip(criteria, samples, pivots)):
            if isinstance(pivot, str) or isinstance(sample, (str, Unpaired, Summary)):
                continue
            boots[i] = _bootstrap(criterion, sample, n_resamples, [rng_seed, i])
            t_claim, t_p = claims[i]
            boot_claim, boot_p = _bootstrap_claim(boots[i], criterion)
            claims[i] = (t_claim, max(t_p, boot_p)) if boot_claim == t_claim else ("disagree", 1.0)
    p_values = np.array([p for _, p in claims])
    adjusted = adjust_p_values(p_values, correction)
    tails = step_down_tails(p_values, correction, alpha)
    out = []
    for criterion, pivot, boot, (claim, p), p_adj, tail in zip(criteria, pivots, boots, claims, adjusted, tails):
        if isinstance(pivot, str):
            out.append(Judgement(criterion.name, "inconclusive", math.nan, math.nan, math.nan, 1.0 - 2.0 * tail, 1.0,
                                 float(p_adj), 0, None, pivot, plain_level=1.0 - 2.0 * alpha))
            continue
        # each one-sided test at its corrected level: a (1 - 2 tail) interval
        to_scale = math.exp if criterion.effect == "ratio" else float

        def interval(at: float) -> tuple[float, float]:
            """The (1 - 2 at) interval: the bootstrap's when judged by it, else the t pivot's."""
            if boot is not None:
                return tuple(float(v) for v in boot.two_sided.interval_at(1.0 - 2.0 * at))
            half = scipy_stats().t.isf(at, pivot.df) * pivot.se
            return to_scale(pivot.estimate - half), to_scale(pivot.estimate + half)

        estimate = boot.estimate if boot is not None else to_scale(pivot.estimate)
        (low, high), plain = interval(tail), interval(alpha)
        verdict = claim if p_adj <= alpha and claim != "disagree" else "inconclusive"
        needed = _repeats_needed(pivot, tail) if verdict == "inconclusive" else None
        reason = {"met": "the whole interval is inside the region",
                  "not_met": "the whole interval is outside the region",
                  "inconclusive": "the interval straddles a boundary of the region"
                  + (f"; about {needed} {pivot.unit} would settle it if the spread stays as observed" if needed
                     else "; the estimate sits on the boundary")}[verdict]
        if verdict == "inconclusive" and claim == "not_met" and (high < criterion.low or low > criterion.high):
            reason = ("the interval lies outside the region, but the region is so narrow that an effect on its edge "
                      "would fall this far outside on either side by chance" + (
                          f"; about {needed} {pivot.unit} would settle it" if needed else ""))
        if claim == "disagree":
            reason = ("the bootstrap and the t-test on the log ratios point different ways (one inside the region, "
                      "one outside)")
        out.append(Judgement(criterion.name, verdict, estimate, low, high, 1.0 - 2.0 * tail, float(p), float(p_adj),
                             pivot.n, needed, reason, *plain, 1.0 - 2.0 * alpha))
    return out
