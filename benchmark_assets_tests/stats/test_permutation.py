"""The sign-flip test against scipy's permutation_test, its interval as the test's inversion, and
its coverage by simulation where a percentile bootstrap falls short."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from benchmark_assets.stats.bootstrap import bootstrap_ci
from benchmark_assets.stats.permutation import SignFlip, sign_flip_interval, sign_flip_test, sign_patterns


@pytest.mark.parametrize("n", [3, 8, 15])
def test_the_p_value_is_scipys_exact_sign_flip_permutation_test(n):
    rng = np.random.default_rng(n)
    for _ in range(5):
        d = rng.standard_t(3, n) + 0.4
        expected = stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf,
                                          vectorized=True, alternative="two-sided").pvalue
        assert sign_flip_test(d) == pytest.approx(expected)
        shifted = stats.permutation_test((d - 0.3,), np.mean, permutation_type="samples", n_resamples=np.inf,
                                         vectorized=True, alternative="two-sided").pvalue
        assert sign_flip_test(d, 0.3) == pytest.approx(shifted)


def test_patterns_are_every_sign_vector_up_to_sixteen_pairs_then_a_seeded_sample():
    patterns = sign_patterns(4)
    assert patterns.shape == (16, 4) and len({tuple(p) for p in patterns}) == 16
    sampled = sign_patterns(20, rng=1)
    assert (sampled[0] == 1).all() and sampled.shape == (20_001, 20)
    assert np.array_equal(sampled, sign_patterns(20, rng=1))


@settings(max_examples=80, deadline=None)
@given(st.integers(6, 16), st.integers(0, 2**16), st.floats(-1.0, 1.0), st.sampled_from([0.9, 0.95, 0.99]))
def test_the_interval_is_the_set_of_shifts_the_test_keeps(n, seed, shift, level):
    d = np.random.default_rng(seed).normal(shift, 1.0, n)
    flip = SignFlip(d)
    low, high = flip.interval(level)
    alpha = 1 - level
    if not np.isfinite(low):
        return
    assert low <= flip.mean <= high
    width = high - low
    assert flip.p_value(low + 1e-6 * width) > alpha >= flip.p_value(low - 1e-3 * width)
    assert flip.p_value(high - 1e-6 * width) > alpha >= flip.p_value(high + 1e-3 * width)
    # A verdict on the test agrees with the interval: 0 is rejected exactly when it lies outside.
    if abs(low) > 1e-3 * width and abs(high) > 1e-3 * width:
        assert (flip.p_value(0.0) <= alpha) == (low > 0 or high < 0)


def test_too_few_pairs_for_the_level_give_the_whole_line():
    # Four pairs have 16 sign patterns: the smallest two-sided p is 2/16, above 0.05.
    assert sign_flip_interval([1.0, 2.0, 3.0, 4.0], 0.95) == (-np.inf, np.inf)
    assert sign_flip_test([1.0, 2.0, 3.0, 4.0]) == pytest.approx(2 / 16)


@pytest.mark.calibration
def test_it_covers_where_the_percentile_bootstrap_does_not():
    """12 paired differences, heavy-tailed and skewed-free (t with 3 degrees of freedom around the
    true mean), 1,000 draws: the sign-flip interval holds the truth at least 95 % of the time (a
    binomial test must not put it lower), the percentile bootstrap visibly less often."""
    rng = np.random.default_rng(20261201)
    held_flip = held_boot = 0
    runs = 1000
    for _ in range(runs):
        d = 0.2 + rng.standard_t(3, 12)
        low, high = sign_flip_interval(d, 0.95)
        held_flip += low <= 0.2 <= high
        boot = bootstrap_ci(d, method="percentile", confidence_level=0.95, n_resamples=2000, rng=rng)
        held_boot += boot.low <= 0.2 <= boot.high
    assert stats.binomtest(held_flip, runs, 0.95, alternative="less").pvalue > 0.01, held_flip
    assert held_boot < held_flip
