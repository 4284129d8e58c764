import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from statsmodels.stats.power import TTestIndPower, TTestPower

from benchmark_assets.stats import achieved_power, required_n, standardised_effect


@pytest.mark.parametrize(
    ("effect", "alpha", "power", "alternative"),
    [(0.5, 0.05, 0.8, "two-sided"), (0.2, 0.01, 0.9, "two-sided"), (0.8, 0.05, 0.8, "greater"),
     (-0.3, 0.05, 0.8, "less")],
)
def test_required_n_is_statsmodels_solve_power_rounded_up(effect, alpha, power, alternative):
    kind = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
    paired = TTestPower().solve_power(effect_size=effect, alpha=alpha, power=power, alternative=kind)
    unpaired = TTestIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, alternative=kind, ratio=2.0)
    assert required_n(effect, alpha=alpha, power=power, alternative=alternative) == math.ceil(paired)
    assert required_n(effect, alpha=alpha, power=power, alternative=alternative, paired=False,
                      ratio=2.0) == math.ceil(unpaired)


def test_known_sample_sizes():
    assert required_n(0.5) == 34  # paired d_z = 0.5, two-sided 5 %, power 80 %
    assert required_n(0.5, paired=False) == 64  # Cohen's classic 64 per group
    assert required_n(1.0, sd=2.0, paired=False) == 64  # raw units: d = 1 / 2


@settings(max_examples=40, deadline=None)
@given(st.floats(0.15, 2.0), st.floats(0.5, 0.95), st.booleans(), st.sampled_from(["two-sided", "greater"]))
def test_required_n_is_the_smallest_n_reaching_the_power(effect, power, paired, alternative):
    n = required_n(effect, power=power, paired=paired, alternative=alternative)
    assert achieved_power(effect, n=n, paired=paired, alternative=alternative) >= power - 1e-9
    if n > 2:
        assert achieved_power(effect, n=n - 1, paired=paired, alternative=alternative) < power


def test_huge_effects_need_very_few_seeds_and_give_an_answer_without_warnings(recwarn):
    # statsmodels' root finder warns and returns NaN for both: the answer is below its starting point.
    assert required_n(10.0, paired=False) == 2
    # At n=2 statsmodels' power is NaN (scipy's noncentral t underflows in the far tail), so n=3 is the
    # first n shown to reach the power: conservative by at most one seed.
    assert required_n(20.0) == 3 and achieved_power(20.0, n=3) >= 0.8
    assert not recwarn.list


def test_when_statsmodels_does_not_converge_an_integer_search_gives_the_same_n(monkeypatch):
    expected = [required_n(0.3), required_n(0.3, paired=False, ratio=2.0)]
    monkeypatch.setattr(TTestPower, "solve_power", lambda self, **kwargs: np.nan)
    monkeypatch.setattr(TTestIndPower, "solve_power", lambda self, **kwargs: np.nan)
    assert [required_n(0.3), required_n(0.3, paired=False, ratio=2.0)] == expected


def test_achieved_power_is_statsmodels_power():
    assert achieved_power(0.4, n=30) == pytest.approx(TTestPower().power(0.4, 30, 0.05))
    assert achieved_power(2.0, sd=5.0, n=30, paired=False, ratio=1.5) == pytest.approx(
        TTestIndPower().power(0.4, 30, 0.05, ratio=1.5))


@pytest.mark.calibration
def test_simulated_paired_power_matches_achieved_power():
    n = required_n(0.5)
    differences = np.random.default_rng(1).normal(0.5, 1.0, size=(4000, n))  # 4000 experiments at once
    rejected = np.mean(scipy_stats.ttest_1samp(differences, 0.0, axis=-1).pvalue < 0.05)
    assert rejected == pytest.approx(achieved_power(0.5, n=n), abs=0.025)  # binomial SE 0.006


def test_simulated_unpaired_power_matches_achieved_power_with_unequal_groups():
    n = required_n(1.2, sd=2.0, paired=False, ratio=2.0)
    rng = np.random.default_rng(2)
    candidate = rng.normal(1.2, 2.0, size=(4000, n))
    control = rng.normal(0.0, 2.0, size=(4000, math.ceil(2.0 * n)))
    rejected = np.mean(scipy_stats.ttest_ind(candidate, control, axis=-1).pvalue < 0.05)
    assert rejected == pytest.approx(achieved_power(1.2, sd=2.0, n=n, paired=False, ratio=2.0), abs=0.025)
    assert rejected >= 0.8 - 0.025


def test_a_standard_error_passed_as_sd_gives_a_far_too_small_n():
    # The reference pipeline divided the unpaired effect by the pilot's standard error.
    pilot = np.random.default_rng(3).normal(10.0, 2.0, 15)
    sd = pilot.std(ddof=1)
    se = sd / np.sqrt(pilot.size)
    right = required_n(0.5, sd=sd, paired=False)
    wrong = required_n(0.5, sd=se, paired=False)
    assert standardised_effect(0.5, sd=se) == pytest.approx(np.sqrt(15) * standardised_effect(0.5, sd=sd))
    assert right > 100 and wrong < right / 10
    # With the too-small N the test would detect the effect far less often than the 80 % promised.
    rng = np.random.default_rng(4)
    candidate, control = rng.normal(0.5, sd, (4000, wrong)), rng.normal(0.0, sd, (4000, wrong))
    simulated = np.mean(scipy_stats.ttest_ind(candidate, control, axis=-1).pvalue < 0.05)
    assert simulated < 0.3 and simulated == pytest.approx(achieved_power(0.5, sd=sd, n=wrong, paired=False), abs=0.03)


def test_impossible_requests_raise_value_errors():
    with pytest.raises(ValueError, match="non-zero"):
        required_n(0.0)
    with pytest.raises(ValueError, match="positive standard deviation"):
        required_n(1.0, sd=0.0)
    with pytest.raises(ValueError, match="cannot detect an effect of sign -1"):
        required_n(-0.5, alternative="greater")
    with pytest.raises(ValueError, match="alternative"):
        achieved_power(0.5, n=10, alternative="larger")
