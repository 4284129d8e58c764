"""Uplift metrics against the known true effects: PEHE, sign accuracy, the uplift curve with ties, Qini, coverage."""
import itertools
import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from benchmark_assets.stats.uplift import (
    METRICS,
    auuc,
    interval_coverage,
    pehe,
    qini_coefficient,
    sign_accuracy,
    uplift_curve,
    uplift_metrics,
)


@dataclass(frozen=True, eq=False)
class FakeEstimate:
    effects: np.ndarray | None
    ate: float | None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    ate_lower: float | None = None
    ate_upper: float | None = None


def untied_area(order, true) -> float:
    """Area under the curve treating units one by one in ``order``: n + 1 vertices, no tie handling."""
    n = len(true)
    gains = np.concatenate(([0.0], np.cumsum(np.asarray(true)[order]) / n))
    return float(np.trapezoid(gains, np.arange(n + 1) / n))


def expected_area_over_tie_orders(estimate, true, *, permutations=None, rng=None) -> float:
    """The area averaged over random orders within each tie group of the estimate (ranked highest first):
    every order when ``permutations`` is None, else that many random ones."""
    estimate = np.asarray(estimate)
    groups = [np.flatnonzero(estimate == value) for value in sorted(set(estimate), reverse=True)]
    if permutations is None:
        orders = [np.concatenate(p) for p in itertools.product(*(itertools.permutations(g) for g in groups))]
    else:
        orders = [np.concatenate([rng.permutation(g) for g in groups]) for _ in range(permutations)]
    return float(np.mean([untied_area(order, true) for order in orders]))


def test_pehe_is_the_root_mean_squared_error():
    assert pehe([1.0, 2.0, 3.0], [1.0, 0.0, 5.0]) == pytest.approx(math.sqrt((0 + 4 + 4) / 3))
    rng = np.random.default_rng(0)
    e, t = rng.normal(size=500), rng.normal(size=500)
    assert pehe(e, t) == pytest.approx(np.sqrt(np.mean([(a - b) ** 2 for a, b in zip(e, t)])), rel=1e-12)


def test_sign_accuracy_counts_non_zero_true_effects_and_a_zero_estimate_as_wrong():
    estimated = [0.5, -0.2, 0.0, 0.3, -1.0, 7.0]
    true = [1.0, 1.0, 1.0, -2.0, -0.1, 0.0]  # right, wrong, wrong (estimate 0), wrong, right, ignored (true 0)
    assert sign_accuracy(estimated, true) == pytest.approx(2 / 5)
    assert sign_accuracy([1.0, -1.0], [1e-15, -1.0]) == 1.0  # 1e-15 is zero next to 1
    assert math.isnan(sign_accuracy([1.0, 2.0], [0.0, 0.0]))


def test_uplift_curve_without_ties_is_the_running_sum_of_true_effects_in_estimated_order():
    fractions, gains = uplift_curve([0.9, 0.1, 0.5, 0.7], [2.0, -1.0, 0.0, 1.0])
    # order: units 0, 3, 2, 1 -> true 2, 1, 0, -1
    np.testing.assert_allclose(fractions, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(gains, np.array([0, 2, 3, 3, 2]) / 4)


def test_uplift_curve_has_one_vertex_per_tie_group():
    fractions, gains = uplift_curve([1.0, 1.0, 0.0, 3.0, 0.0], [1.0, 3.0, -1.0, 2.0, 0.5])
    np.testing.assert_allclose(fractions, [0, 0.2, 0.6, 1.0])
    np.testing.assert_allclose(gains, np.array([0, 2, 6, 5.5]) / 5)


def test_a_constant_estimate_is_the_random_targeting_line():
    true = np.array([0.3, -0.1, 0.8, 0.0])
    fractions, gains = uplift_curve(np.full(4, 2.0), true)
    assert fractions.tolist() == [0.0, 1.0] and gains.tolist() == [0.0, np.mean(true)]
    assert auuc(np.zeros(4), true) == np.mean(true) / 2
    assert qini_coefficient(np.zeros(4), true) == 0.0


def test_auuc_is_the_trapezoid_area():
    rng = np.random.default_rng(1)
    e, t = rng.normal(size=50), rng.normal(size=50)
    assert auuc(e, t) == pytest.approx(untied_area(np.argsort(-e), t), rel=1e-12)
    assert auuc(e, t) == pytest.approx(np.trapezoid(*uplift_curve(e, t)[::-1]), rel=1e-12)


def test_ties_score_as_every_order_within_them_would_on_average():
    estimate = [2.0, 1.0, 2.0, 1.0, 1.0, 0.0, 2.0]
    true = [0.5, -1.0, 2.0, 3.0, 0.0, 1.0, -0.5]
    assert auuc(estimate, true) == pytest.approx(expected_area_over_tie_orders(estimate, true), rel=1e-12)


def test_ties_score_as_random_orders_do_on_average_in_a_larger_sample():
    rng = np.random.default_rng(2)
    estimate = rng.integers(0, 5, size=60).astype(float)  # 5 large tie groups
    true = rng.normal(0.2, 1.0, size=60) + 0.1 * estimate
    sampled = expected_area_over_tie_orders(estimate, true, permutations=4000, rng=rng)
    assert auuc(estimate, true) == pytest.approx(sampled, abs=3e-3)
    assert auuc(estimate, true) != pytest.approx(untied_area(np.argsort(-estimate, kind="stable"), true), abs=3e-3)


def test_qini_is_one_for_the_oracle_zero_for_random_and_negative_reversed():
    rng = np.random.default_rng(3)
    true = 0.3 * rng.normal(size=400)
    assert qini_coefficient(true, true) == 1.0
    assert qini_coefficient(np.full(400, 0.1), true) == 0.0
    assert qini_coefficient(-true, true) < -0.9
    noisy = true + rng.normal(0, 0.3, size=400)
    assert 0.3 < qini_coefficient(noisy, true) < 0.95
    shuffled = [qini_coefficient(rng.permutation(true), true) for _ in range(200)]
    assert abs(np.mean(shuffled)) < 0.05


def test_qini_is_the_normalised_area_above_random():
    rng = np.random.default_rng(4)
    e, t = rng.normal(size=30), rng.normal(0.5, 1.0, size=30)
    random_area = np.mean(t) / 2
    expected = (untied_area(np.argsort(-e), t) - random_area) / (untied_area(np.argsort(-t), t) - random_area)
    assert qini_coefficient(e, t) == pytest.approx(expected, rel=1e-10)


def test_qini_does_not_change_under_increasing_transforms_of_the_estimate():
    rng = np.random.default_rng(5)
    true = rng.normal(size=200)
    estimate = np.round(true + rng.normal(0, 0.5, size=200), 1)  # ties included
    base = qini_coefficient(estimate, true)
    assert qini_coefficient(3.0 * estimate + 7.0, true) == base
    assert qini_coefficient(np.exp(estimate), true) == base
    assert qini_coefficient(np.argsort(np.argsort(estimate)), true) != base  # ranks break ties: a different curve


def test_qini_is_undefined_for_a_constant_true_effect():
    assert math.isnan(qini_coefficient([1.0, 2.0, 3.0], [0.1, 0.1, 0.1]))
    assert math.isnan(qini_coefficient([1.0, 2.0, 3.0], [0.0, 0.0, 0.0]))


def test_interval_coverage_counts_closed_intervals():
    covered, width = interval_coverage([0.0, 1.0, 2.0, -1.0], [1.0, 2.0, 3.0, 1.0], [1.0, 2.5, 2.0, 5.0])
    assert covered == 0.75 - 0.25 and width == pytest.approx(1.25)
    assert interval_coverage([0.0], [0.0], [0.0]) == (1.0, 0.0)


def test_metrics_of_an_individual_estimate():
    true = np.array([0.2, -0.1, 0.4, 0.0])
    effects = np.array([0.1, -0.2, 0.5, -0.1])  # the truth's order, each 0.1 off
    lower, upper = effects - 0.15, effects + np.array([0.05, 0.15, 0.15, 0.15])  # the first misses 0.2
    metrics = uplift_metrics(FakeEstimate(effects, float(np.mean(effects)), lower, upper, 0.0, 0.2), true)
    assert tuple(metrics) == METRICS
    rms = np.sqrt(np.mean(true**2))
    assert metrics["ate_estimate"] == pytest.approx(0.075) and metrics["true_ate"] == pytest.approx(0.125)
    assert metrics["ate_bias"] == pytest.approx(-0.05) and metrics["ate_abs_error"] == pytest.approx(0.05)
    assert metrics["ate_covered"] == 1.0 and metrics["ate_interval_width"] == pytest.approx(0.2)
    assert metrics["ate_error_normalised"] == pytest.approx(0.05 / rms)
    assert metrics["pehe"] == pytest.approx(0.1) and metrics["pehe_normalised"] == pytest.approx(0.1 / rms)
    assert metrics["sign_accuracy"] == 1.0 and metrics["qini"] == 1.0
    assert metrics["auuc"] == auuc(true, true)
    assert metrics["coverage"] == 0.75 and metrics["interval_width"] == pytest.approx(0.275)


def test_metrics_of_an_average_only_estimate_are_nan_for_individual_effects():
    true = np.array([1.0, 3.0])
    metrics = uplift_metrics(FakeEstimate(None, 2.5, ate_lower=2.2, ate_upper=2.9), true)
    assert metrics["ate_bias"] == 0.5 and metrics["ate_abs_error"] == 0.5 and metrics["ate_covered"] == 0.0
    assert metrics["ate_error_normalised"] == pytest.approx(0.5 / math.sqrt(5))
    for key in ("pehe", "pehe_normalised", "sign_accuracy", "auuc", "qini", "coverage", "interval_width"):
        assert math.isnan(metrics[key]), key


def test_metrics_without_intervals_or_with_an_all_zero_truth():
    metrics = uplift_metrics(FakeEstimate(np.array([0.1, -0.1]), None), np.zeros(2))
    assert metrics["ate_estimate"] == 0.0  # mean of the effects
    for key in ("ate_covered", "ate_interval_width", "pehe_normalised", "ate_error_normalised", "sign_accuracy",
                "qini", "coverage", "interval_width"):
        assert math.isnan(metrics[key]), key
    assert metrics["pehe"] == pytest.approx(0.1)


@pytest.mark.parametrize("estimated, true, message", [
    ([1.0, 2.0], [1.0], "must cover the same units"),
    ([[1.0], [2.0]], [1.0, 2.0], "shaped (n,)"),
    ([], [], "shaped (n,)"),
    ([np.nan], [1.0], "NaN or infinite"),
])
def test_bad_inputs_are_refused(estimated, true, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pehe(estimated, true)


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False)
vectors = st.integers(1, 40).flatmap(lambda n: st.tuples(hnp.arrays(np.float64, n, elements=finite),
                                                         hnp.arrays(np.float64, n, elements=finite)))


@settings(max_examples=200, deadline=None)
@given(vectors)
def test_pehe_is_non_negative_and_zero_exactly_for_equal_effects(pair):
    estimated, true = pair
    assert pehe(estimated, true) >= 0
    assert (pehe(estimated, true) == 0) == np.array_equal(estimated, true)
    assert pehe(true, true) == 0


@settings(max_examples=200, deadline=None)
@given(vectors, finite)
def test_a_constant_estimate_has_exactly_half_the_ate_as_area(pair, constant):
    _, true = pair
    assert auuc(np.full(true.size, constant), true) == np.mean(true) / 2


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 40).flatmap(lambda n: hnp.arrays(np.float64, n, elements=finite)))
def test_the_oracle_has_a_qini_of_one_whenever_the_effect_varies(true):
    assume(np.ptp(true) > 1e-6 * np.max(np.abs(true)))
    assert qini_coefficient(true, true) == 1.0
    assert -1.0 - 1e-9 <= qini_coefficient(-true, true) < 0  # the reversed ranking is the worst there is


@settings(max_examples=200, deadline=None)
@given(vectors)
def test_no_ranking_beats_the_oracle(pair):
    estimated, true = pair
    assume(np.ptp(true) > 1e-6 * np.max(np.abs(true)))
    assert qini_coefficient(estimated, true) <= 1.0 + 1e-9
