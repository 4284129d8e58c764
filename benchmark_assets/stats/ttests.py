"""Paired and Welch t-tests with effect sizes, and their assumptions checked rather than trusted."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from benchmark_assets.stats.bootstrap import ALTERNATIVES
from benchmark_assets.stats.lazy import scipy_stats


@dataclass(frozen=True)
class AssumptionCheck:
    """One assumption test; ``passed`` is None when it could not run (``note`` says why)."""

    name: str
    statistic: float
    p_value: float
    passed: bool | None
    note: str

    @property
    def ran(self) -> bool:
        return self.passed is not None


@dataclass(frozen=True)
class TTestResult:
    """A t-test of candidate - control: the test, the mean difference's t-interval, the effect size
    (``d_z`` = mean/SD of the differences for paired, Cohen's ``d`` with the pooled SD for Welch)
    and the assumption checks that were run."""

    test: str
    statistic: float
    df: float
    p_value: float
    mean_difference: float
    standard_error: float
    low: float
    high: float
    effect_size: float
    effect_size_name: str
    confidence_level: float
    alternative: str
    sample_sizes: tuple[int, ...]
    checks: tuple[AssumptionCheck, ...]

    @property
    def warnings(self) -> list[str]:
        """The notes of checks that failed or could not run, for the report."""
        return [check.note for check in self.checks if check.passed is not True]


def _noise(*samples) -> float:
    """A spread this small is float rounding of the values, not variation (an effect size divided
    by it would be a meaningless 1e15)."""
    return 1e-12 * max(1.0, *(float(np.max(np.abs(x))) for x in samples if np.size(x)))


def paired_ttest(
    candidate,
    control,
    *,
    confidence_level: float = 0.95,
    alternative: str = "two-sided",
    alpha: float = 0.05,
) -> TTestResult:
    """Paired t-test of candidate - control on shared seeds (``scipy.stats.ttest_rel``), with d_z and
    a Shapiro-Wilk check of the differences at level ``alpha``."""
    a, b = _sample(candidate, "candidate"), _sample(control, "control")
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal lengths, got {a.size} and {b.size}; use welch_ttest for "
                         "independent groups")
    _check_options(confidence_level, alternative)
    differences = a - b
    n = differences.size
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        result = scipy_stats().ttest_rel(a, b, alternative=alternative)
        interval = result.confidence_interval(confidence_level)
        sd = np.std(differences, ddof=1) if n >= 2 else np.nan
        effect = np.mean(differences) / sd if sd > _noise(a, b) else np.nan  # no spread: no standardised size
    return TTestResult(
        test="paired t-test",
        statistic=float(result.statistic),
        df=float(result.df),
        p_value=float(result.pvalue),
        mean_difference=float(np.mean(differences)),
        standard_error=float(sd / np.sqrt(n)),
        low=float(interval.low),
        high=float(interval.high),
        effect_size=float(effect),
        effect_size_name="d_z",
        confidence_level=confidence_level,
        alternative=alternative,
        sample_sizes=(n,),
        checks=(_shapiro(differences, "differences", alpha),),
    )


def welch_ttest(
    candidate,
    control,
    *,
    confidence_level: float = 0.95,
    alternative: str = "two-sided",
    alpha: float = 0.05,
) -> TTestResult:
    """Welch's unequal-variance t-test of two independent groups (``scipy.stats.ttest_ind`` with
    ``equal_var=False``), with Cohen's d on the pooled SD, Shapiro-Wilk on each group and Levene
    (median-centred) on the variances, each at level ``alpha``."""
    a, b = _sample(candidate, "candidate"), _sample(control, "control")
    _check_options(confidence_level, alternative)
    n_a, n_b = a.size, b.size
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        result = scipy_stats().ttest_ind(a, b, equal_var=False, alternative=alternative)
        interval = result.confidence_interval(confidence_level)
        var_a = np.var(a, ddof=1) if n_a >= 2 else np.nan
        var_b = np.var(b, ddof=1) if n_b >= 2 else np.nan
        pooled_sd = np.sqrt(((n_a - 1) * var_a + (n_b - 1) * var_b) / (n_a + n_b - 2))
        difference = np.mean(a) - np.mean(b)
        effect = difference / pooled_sd if pooled_sd > _noise(a, b) else np.nan
    return TTestResult(
        test="Welch t-test",
        statistic=float(result.statistic),
        df=float(result.df),
        p_value=float(result.pvalue),
        mean_difference=float(difference),
        standard_error=float(np.sqrt(var_a / n_a + var_b / n_b)),
        low=float(interval.low),
        high=float(interval.high),
        effect_size=float(effect),
        effect_size_name="cohen_d",
        confidence_level=confidence_level,
        alternative=alternative,
        sample_sizes=(n_a, n_b),
        checks=(_shapiro(a, "candidate values", alpha), _shapiro(b, "control values", alpha), _levene(a, b, alpha)),
    )


def _sample(values, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per seed), got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values; drop failed trials before testing")
    return x


def _check_options(confidence_level: float, alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r} unknown; choose one of {ALTERNATIVES}")
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level}")


def _not_run(name: str, reason: str) -> AssumptionCheck:
    return AssumptionCheck(name=name, statistic=np.nan, p_value=np.nan, passed=None, note=f"{name} not run: {reason}")


def _shapiro(values: np.ndarray, subject: str, alpha: float) -> AssumptionCheck:
    name = f"shapiro {subject}"
    if values.size < 3:
        return _not_run(name, f"Shapiro-Wilk needs at least 3 {subject}, got {values.size}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        statistic, p = scipy_stats().shapiro(values)
    # scipy only warns (and returns a meaningless p) when the range is zero or below 1e-19.
    if np.ptp(values) == 0 or any("range zero" in str(w.message) for w in caught):
        return _not_run(name, f"the {subject} are all (almost) equal")
    passed = bool(p >= alpha)
    if passed:
        note = f"{subject} look normal (Shapiro p={p:.2g})"
    else:
        note = f"{subject} look non-normal (Shapiro p={p:.2g}): prefer the bootstrap interval"
    return AssumptionCheck(name=name, statistic=float(statistic), p_value=float(p), passed=passed, note=note)


def _levene(a: np.ndarray, b: np.ndarray, alpha: float) -> AssumptionCheck:
    name = "levene variances"
    if min(a.size, b.size) < 2:
        return _not_run(name, f"Levene needs at least 2 values per group, got {a.size} and {b.size}")
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        statistic, p = scipy_stats().levene(a, b)
    if not np.isfinite(p):
        return _not_run(name, "both groups are constant around their medians")
    passed = bool(p >= alpha)
    if passed:
        note = f"variances look equal (Levene p={p:.2g})"
    else:
        note = (f"variances differ (Levene p={p:.2g}): Welch's test allows this, a pooled-variance "
                "t-test would not")
    return AssumptionCheck(name=name, statistic=float(statistic), p_value=float(p), passed=passed, note=note)
