import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as scipy_stats

from benchmark_assets.stats import describe, paired_ttest, welch_ttest


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_paired_ttest_matches_scipy_ttest_rel(alternative):
    rng = np.random.default_rng(1)
    control = rng.normal(10, 2, 20)
    candidate = control + rng.normal(0.4, 1.0, 20)
    ours = paired_ttest(candidate, control, alternative=alternative, confidence_level=0.9)
    theirs = scipy_stats.ttest_rel(candidate, control, alternative=alternative)
    interval = theirs.confidence_interval(0.9)
    assert ours.statistic == pytest.approx(theirs.statistic) and ours.p_value == pytest.approx(theirs.pvalue)
    assert ours.df == 19 and (ours.low, ours.high) == pytest.approx((interval.low, interval.high))
    differences = candidate - control
    assert ours.mean_difference == pytest.approx(differences.mean())
    assert ours.effect_size == pytest.approx(differences.mean() / differences.std(ddof=1))
    assert ours.effect_size_name == "d_z" and ours.sample_sizes == (20,)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_welch_ttest_matches_scipy_ttest_ind_with_unequal_variances(alternative):
    rng = np.random.default_rng(2)
    candidate, control = rng.normal(1.0, 3.0, 12), rng.normal(0.0, 1.0, 25)
    ours = welch_ttest(candidate, control, alternative=alternative)
    theirs = scipy_stats.ttest_ind(candidate, control, equal_var=False, alternative=alternative)
    interval = theirs.confidence_interval(0.95)
    assert ours.statistic == pytest.approx(theirs.statistic) and ours.p_value == pytest.approx(theirs.pvalue)
    assert (ours.low, ours.high) == pytest.approx((interval.low, interval.high))
    va, vb = candidate.var(ddof=1) / 12, control.var(ddof=1) / 25
    assert ours.df == pytest.approx((va + vb) ** 2 / (va**2 / 11 + vb**2 / 24))  # Welch-Satterthwaite
    assert ours.standard_error == pytest.approx(np.sqrt(va + vb))
    pooled = np.sqrt((11 * candidate.var(ddof=1) + 24 * control.var(ddof=1)) / 35)
    assert ours.effect_size == pytest.approx((candidate.mean() - control.mean()) / pooled)
    assert ours.effect_size_name == "cohen_d" and ours.sample_sizes == (12, 25)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, st.integers(2, 30), elements=st.floats(-100, 100)),
       hnp.arrays(np.float64, 30, elements=st.floats(-100, 100)))
def test_paired_ttest_interval_is_the_t_interval_of_the_differences(candidate, control):
    control = control[: candidate.size]
    result = paired_ttest(candidate, control)
    summary = describe(candidate - control)
    if summary.std > 1e-9:
        assert (result.low, result.high) == pytest.approx((summary.t_low, summary.t_high), rel=1e-9, abs=1e-9)


def test_shapiro_on_skewed_differences_fails_and_says_to_prefer_the_bootstrap():
    rng = np.random.default_rng(3)
    control = rng.normal(size=40)
    candidate = control + rng.lognormal(0, 1.2, 40)
    result = paired_ttest(candidate, control, alpha=0.05)
    (check,) = result.checks
    assert check.name == "shapiro differences" and check.ran and check.passed is False
    assert check.p_value == pytest.approx(scipy_stats.shapiro(candidate - control).pvalue) and check.p_value < 0.05
    assert check.note.startswith("differences look non-normal (Shapiro p=") and "prefer the bootstrap" in check.note
    assert result.warnings == [check.note]


def test_shapiro_check_reports_scipys_statistic_and_passes_on_normal_differences():
    rng = np.random.default_rng(4)
    control = rng.normal(size=30)
    noise = rng.normal(size=30)
    (check,) = paired_ttest(control + noise, control).checks
    expected = scipy_stats.shapiro((control + noise) - control)
    assert (check.statistic, check.p_value) == pytest.approx((expected.statistic, expected.pvalue))
    assert check.passed and check.note == f"differences look normal (Shapiro p={expected.pvalue:.2g})"


def test_welch_runs_shapiro_per_group_and_levene_and_flags_unequal_variances():
    rng = np.random.default_rng(5)
    candidate, control = rng.normal(0, 5.0, 40), rng.normal(0, 1.0, 40)
    result = welch_ttest(candidate, control)
    names = [c.name for c in result.checks]
    assert names == ["shapiro candidate values", "shapiro control values", "levene variances"]
    levene = result.checks[2]
    expected = scipy_stats.levene(candidate, control)
    assert levene.p_value == pytest.approx(expected.pvalue) and levene.passed is False
    assert levene.note.startswith("variances differ (Levene p=") and "Welch's test allows this" in levene.note


def test_too_few_values_for_shapiro_mark_the_check_not_run_with_the_reason():
    result = paired_ttest([1.0, 2.0], [0.5, 0.7])
    (check,) = result.checks
    assert not check.ran and check.passed is None and np.isnan(check.p_value)
    assert "needs at least 3 differences, got 2" in check.note
    assert np.isfinite(result.statistic) and result.df == 1
    welch = welch_ttest([1.0], [0.0, 1.0, 2.0])
    assert [c.ran for c in welch.checks] == [False, True, False]
    assert "at least 2 values per group" in welch.checks[2].note
    assert np.isnan(welch.statistic) and np.isnan(welch.low)


def test_constant_differences_skip_shapiro_instead_of_warning(recwarn):
    (check,) = paired_ttest([2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0]).checks
    assert not check.ran and "all (almost) equal" in check.note
    (check,) = paired_ttest([0.0, 1e-20, 2e-20, 0.0], [0.0, 0.0, 0.0, 0.0]).checks  # below scipy's 1e-19 range
    assert not check.ran and not recwarn.list


def test_bad_input_raises_value_errors():
    with pytest.raises(ValueError, match="equal lengths"):
        paired_ttest([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        welch_ttest([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        paired_ttest(np.ones((2, 3)), np.ones((2, 3)))
