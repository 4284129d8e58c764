"""Step-down max-T with joint sign flips: against a brute-force enumeration written out loop by loop,
against the single sign-flip test and Holm where they must agree or bound it, and by simulation of
correlated families like a ratchet's (every proposal measured against one run of today's values)."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from benchmark_assets.stats.maxt import max_t_family, step_down_max_t
from benchmark_assets.stats.multiple import adjust_p_values
from benchmark_assets.stats.permutation import SignFlip, sign_patterns


def brute_force(d: np.ndarray, alternative: str, offsets=None) -> list[float]:
    """Westfall and Young's algorithm 2.8 spelled out: every sign pattern, every step, in loops
    (with ``offsets``: each hypothesis's statistic plus its fixed offset)."""
    n, m = d.shape
    noise = 1e-12 * max(1.0, max(abs(d[i, j]) for i in range(n) for j in range(m)))  # float noise: no change
    norms = [math.sqrt(sum(d[i, j] ** 2 for i in range(n))) if max(abs(d[i, j]) for i in range(n)) > noise else 0.0
             for j in range(m)]

    def z(signs, j):
        shift = 0.0 if offsets is None else offsets[j]
        if norms[j] == 0:
            return shift
        value = sum(signs[i] * d[i, j] for i in range(n)) / norms[j]
        return (abs(value) if alternative == "two-sided" else value) + shift

    identity = [1] * n
    observed = [z(identity, j) for j in range(m)]
    order = sorted(range(m), key=lambda j: -observed[j])  # stable for ties, as argsort(kind="stable")
    patterns = list(itertools.product([1, -1], repeat=n))
    adjusted, previous = [0.0] * m, 0.0
    for rank, j in enumerate(order):
        in_play = order[rank:]
        hits = sum(max(z(signs, k) for k in in_play) >= observed[j] - 1e-9 for signs in patterns)
        previous = max(previous, hits / len(patterns))
        adjusted[j] = previous
    return adjusted


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 7), st.integers(1, 4), st.sampled_from(["two-sided", "greater"]), st.data())
def test_it_is_the_step_down_max_t_of_every_sign_pattern(n, m, alternative, data):
    values = data.draw(st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=n * m, max_size=n * m))
    d = np.array(values, dtype=float).reshape(n, m)
    np.testing.assert_allclose(step_down_max_t(d, alternative=alternative), brute_force(d, alternative), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-40, 40), min_size=1, max_size=12))
def test_one_hypothesis_is_the_sign_flip_test_itself(eighths):
    d = np.asarray(eighths) / 8.0  # exact in binary: the two statistics tie where they should
    assert step_down_max_t(d[:, None])[0] == pytest.approx(SignFlip(d).p_value())


def test_rounding_noise_is_no_change_however_consistent():
    d = np.column_stack([np.full(10, 0.1 + 0.2 - 0.3), np.linspace(0.5, 1.5, 10)])  # 5.6e-17 each time
    adjusted = step_down_max_t(d)
    assert adjusted[0] == 1.0 and adjusted[1] < 0.01


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.01, 5), min_size=3, max_size=9), st.integers(2, 5), st.integers(0, 2**32 - 1))
def test_where_every_hypothesis_has_the_same_null_distribution_holm_bounds_it(sizes, m, seed):
    """Columns with the same sizes of delta in each scenario (signs differ) have one null
    distribution; then P(max >= t) <= sum of P(z_k >= t) is Holm's own bound, term by term."""
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(len(sizes), m))
    d = np.asarray(sizes)[:, None] * signs
    marginal = [SignFlip(d[:, j]).p_value() for j in range(m)]
    assert np.all(step_down_max_t(d) <= adjust_p_values(marginal, "holm") + 1e-12)


def test_an_unchanged_hypothesis_is_never_rejected_and_bad_input_is_refused():
    d = np.column_stack([np.zeros(8), np.linspace(1, 2, 8)])
    adjusted = step_down_max_t(d)
    assert adjusted[0] == 1.0 and adjusted[1] == pytest.approx(2 / 2**8)  # all +: itself and all -
    assert step_down_max_t(np.empty((5, 0))).shape == (0,)
    for bad in (np.ones(5), np.array([[np.nan, 1.0]])):
        with pytest.raises(ValueError, match="scenarios x hypotheses"):
            step_down_max_t(bad)
    with pytest.raises(ValueError, match="alternative"):
        step_down_max_t(d, alternative="less")


def ratchet_like_family(rng, gains: np.ndarray, n: int = 15) -> np.ndarray:
    """Deltas of m proposals against one measurement of today's value on n scenarios: a scenario's
    level cancels, today's noise is shared by every column (correlation 0.5 between columns)."""
    today = rng.normal(0.0, 1.0, n)
    return rng.normal(0.0, 1.0, (n, gains.size)) + gains * math.sqrt(2) - today[:, None]


@pytest.mark.calibration
def test_in_correlated_null_families_it_holds_five_percent_and_uncorrected_tests_do_not():
    """400 families of 20 null proposals on 15 scenarios: max-T rejects any in at most 5 % (binomial
    test); taking each proposal's own p below 5 % fails the same test at this size."""
    rng = np.random.default_rng(20261205)
    any_max_t = any_uncorrected = 0
    runs, patterns = 400, sign_patterns(15)
    for _ in range(runs):
        d = ratchet_like_family(rng, np.zeros(20))
        any_max_t += bool((step_down_max_t(d) <= 0.05).any())
        own = (np.abs(patterns @ d) >= np.abs(d.sum(axis=0)) - 1e-9).mean(axis=0)  # each one's sign-flip p
        any_uncorrected += bool((own <= 0.05).any())
    assert stats.binomtest(any_max_t, runs, 0.05, alternative="greater").pvalue > 0.01, any_max_t
    assert stats.binomtest(any_uncorrected, runs, 0.05, alternative="greater").pvalue < 0.01, any_uncorrected


@pytest.mark.calibration
def test_it_finds_a_real_improvement_more_often_than_holm_on_the_same_families():
    """One proposal improves by 1 SD of a delta among 20 correlated ones: max-T uses the
    correlation Holm must ignore, so it accepts it more often (Holm on the one-sided sign-flip p)."""
    rng = np.random.default_rng(7)
    gains = np.zeros(20)
    gains[0] = 1.0
    max_t = holm = 0
    patterns = sign_patterns(15)
    for _ in range(200):
        d = ratchet_like_family(rng, gains)
        adjusted = step_down_max_t(d, alternative="greater")
        marginal = ((patterns @ d) >= d.sum(axis=0) - 1e-9).mean(axis=0)
        holm_adjusted = adjust_p_values(marginal, "holm")
        max_t += adjusted[0] <= 0.05
        holm += holm_adjusted[0] <= 0.05
    assert max_t > holm, (max_t, holm)


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 10), st.integers(1, 5), st.sampled_from([0.05, 0.1, 0.2]), st.integers(0, 2**32 - 1),
       st.sampled_from(["two-sided", "greater"]))
def test_each_level_makes_the_own_test_reject_exactly_when_the_step_down_does(n, m, alpha, seed, alternative):
    """``max_t_family``'s levels: a hypothesis's own sign-flip test at its level rejects exactly
    when its adjusted p is at most alpha, so the interval that inverts it agrees with the verdict."""
    rng = np.random.default_rng(seed)
    d = np.round(rng.normal(rng.uniform(-1, 2, m), 1.0, (n, m)), 3)
    family = max_t_family(d, alpha=alpha, alternative=alternative)
    np.testing.assert_allclose(family.adjusted, step_down_max_t(d, alternative=alternative))
    for j in range(m):
        own = SignFlip(d[:, j]).p_value(0.0, alternative=alternative)
        assert (own <= family.levels[j] + 1e-12) == (family.adjusted[j] <= alpha), (j, own, family)
        if alternative == "greater" and 0 < family.levels[j] < 0.5:
            low = SignFlip(d[:, j]).interval(1 - 2 * family.levels[j])[0]
            assert (low > 0) == (family.adjusted[j] <= alpha) or abs(low) < 1e-6


def test_with_one_hypothesis_the_level_is_alpha_rounded_down_to_the_pattern_grid():
    d = np.linspace(0.1, 1.0, 6)[:, None]  # 64 patterns: one-sided p of all-positive is 1/64
    family = max_t_family(d, alpha=0.05, alternative="greater")
    assert family.adjusted[0] == pytest.approx(1 / 64) and family.levels[0] == pytest.approx(3 / 64)
    with pytest.raises(ValueError, match="alpha"):
        max_t_family(d, alpha=1.5)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 7), st.integers(1, 4), st.sampled_from(["two-sided", "greater"]), st.data())
def test_offsets_are_the_step_down_of_every_pattern_with_each_statistic_shifted(n, m, alternative, data):
    values = data.draw(st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=n * m, max_size=n * m))
    offsets = data.draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=m, max_size=m))
    d = np.array(values, dtype=float).reshape(n, m)
    family = max_t_family(d, alternative=alternative, offsets=offsets)
    np.testing.assert_allclose(family.adjusted, brute_force(d, alternative, offsets), atol=1e-12)
    for j in range(m):  # each own test at its level still agrees with the step-down
        own = SignFlip(d[:, j]).p_value(0.0, alternative=alternative) if np.abs(d[:, j]).max() > 1e-9 else 1.0
        assert (own <= family.levels[j] + 1e-12) == (family.adjusted[j] <= 0.05) or np.abs(d[:, j]).max() <= 1e-9


@pytest.mark.calibration
def test_offsets_keep_five_percent_in_null_families_and_favour_the_weighted_hypothesis():
    """Offsets fixed before the data (as the ratchet's train evidence is): 400 null families of 20
    stay under 5 %; a 1-SD gain whose hypothesis carries a larger offset is found more often."""
    rng = np.random.default_rng(11)
    offsets = rng.uniform(0.0, 1.0, 20)
    any_reject = 0
    for _ in range(400):
        any_reject += bool((max_t_family(ratchet_like_family(rng, np.zeros(20)), alternative="greater",
                                         offsets=offsets).adjusted <= 0.05).any())
    assert stats.binomtest(any_reject, 400, 0.05, alternative="greater").pvalue > 0.01, any_reject
    gains = np.zeros(20)
    gains[0] = 1.0
    favoured = plain = 0
    weights = np.r_[1.0, np.full(19, 0.25)]
    for _ in range(200):
        d = ratchet_like_family(rng, gains)
        favoured += max_t_family(d, alternative="greater", offsets=weights).adjusted[0] <= 0.05
        plain += max_t_family(d, alternative="greater").adjusted[0] <= 0.05
    assert favoured > plain + 10, (favoured, plain)
    with pytest.raises(ValueError, match="offsets"):
        max_t_family(np.ones((3, 2)), offsets=[1.0])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.01, 10.0)), min_size=1, max_size=6),
       st.sampled_from([0.01, 0.05, 0.2]))
def test_weighted_holm_is_the_closed_test_of_weighted_bonferroni(pairs, alpha):
    """Brute force: H_i is rejected iff every intersection holding it is rejected by weighted
    Bonferroni (some j in the set with p_j <= alpha w_j / W_set). The levels agree with the
    rejections, the adjusted p-values too, and equal weights give Holm (the project's, checked
    against statsmodels in test_intervals; statsmodels' own ends in a gc.collect per call)."""
    from itertools import combinations

    from benchmark_assets.stats.multiple import weighted_holm

    p = np.array([a for a, _ in pairs])
    w = np.array([b for _, b in pairs])
    adjusted, tails = weighted_holm(p, w, alpha)
    m = p.size
    ps, ws = p.tolist(), w.tolist()  # plain floats: the enumeration is pure Python
    subsets = [s for size in range(1, m + 1) for s in combinations(range(m), size)]
    rejected = {s: any(ps[j] <= alpha * ws[j] / sum(ws[k] for k in s) for j in s) for s in subsets}
    for i in range(m):
        closed = all(rejected[s] for s in subsets if i in s)
        assert (p[i] <= tails[i]) == closed or abs(p[i] - tails[i]) < 1e-12  # a tie, as rounded two ways
        assert (adjusted[i] <= alpha) == closed or abs(adjusted[i] - alpha) < 1e-12
    equal = weighted_holm(p, np.ones(m), alpha)[0]
    assert np.allclose(equal, adjust_p_values(p, "holm"))
