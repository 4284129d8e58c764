"""Alpha spending: the looks' levels add up to the budget, and repeated looks at growing data keep
the error rate when each look is tested at its share (checked by simulation)."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from benchmark_assets.stats.sequential import look_levels, spent


@pytest.mark.parametrize("spending", ["pocock", "obrien_fleming"])
def test_spending_starts_at_zero_ends_at_alpha_and_only_grows(spending):
    assert spent(0.0, 0.05, spending) == 0.0
    assert spent(1.0, 0.05, spending) == 0.05
    ts = np.linspace(0.0, 1.0, 101)
    values = [spent(t, 0.05, spending) for t in ts]
    assert all(b >= a for a, b in itertools.pairwise(values))


def test_spending_functions_match_their_formulas():
    t = 1 / 3
    assert spent(t, 0.05, "pocock") == pytest.approx(0.05 * math.log(1 + (math.e - 1) * t), rel=1e-12)
    # O'Brien-Fleming-type at half the information: 2 - 2 Phi(1.95996 / sqrt(0.5)) = 0.00557.
    assert spent(0.5, 0.05, "obrien_fleming") == pytest.approx(2 - 2 * stats.norm.cdf(1.959964 / math.sqrt(0.5)),
                                                               rel=1e-5)
    assert spent(0.5, 0.05, "obrien_fleming") == pytest.approx(0.00557, abs=1e-5)


@given(st.lists(st.integers(1, 200), min_size=1, max_size=6, unique=True),
       st.sampled_from(["pocock", "obrien_fleming"]), st.floats(0.001, 0.2))
def test_look_levels_are_positive_and_add_up_to_what_is_spent(sizes, spending, alpha):
    sizes = sorted(sizes)
    budget = sizes[-1] + 5
    levels = look_levels(sizes, budget, alpha, spending)
    assert (levels >= 0).all() and levels.sum() <= alpha + 1e-12
    assert levels.sum() == pytest.approx(spent(sizes[-1] / budget, alpha, spending), rel=1e-9, abs=1e-15)
    assert look_levels(sizes, sizes[-1], alpha, spending).sum() == pytest.approx(alpha)


def test_look_levels_refuse_sizes_that_do_not_grow():
    with pytest.raises(ValueError, match="must increase"):
        look_levels([10, 10], 20, 0.05)
    with pytest.raises(ValueError, match="must increase"):
        look_levels([10, 30], 20, 0.05)


@pytest.mark.calibration
def test_three_looks_at_growing_null_data_reject_at_most_alpha_of_the_time():
    """Under the null, testing after 15, 30 and 45 paired differences at the Pocock levels rejects
    at some look in at most 5 % of experiments; testing each look at 5 % would not. (An exact
    t-test on normal differences keeps this fast; the union bound holds for any valid test.)"""
    rng = np.random.default_rng(5)
    levels = look_levels([15, 30, 45], 45, 0.05, "pocock")
    experiments = 20_000
    d = rng.normal(size=(experiments, 45))
    p = np.column_stack([stats.ttest_1samp(d[:, :n], 0.0, axis=1).pvalue for n in (15, 30, 45)])
    spent_ok = int((p <= levels).any(axis=1).sum())
    naive = int((p <= 0.05).any(axis=1).sum())
    assert stats.binomtest(spent_ok, experiments, 0.05, alternative="greater").pvalue > 0.01
    assert naive / experiments > 0.08  # the reason for spending: three looks at 5 % each reject more often
