import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as scipy_stats

from benchmark_assets.stats import iqm, optimality_gap, probability_of_improvement, stratified_bootstrap_ci

SCORES = np.random.default_rng(0).uniform(0.0, 1.4, size=(10, 6))  # 10 runs x 6 tasks


def test_known_values():
    assert iqm(np.arange(1.0, 9.0).reshape(4, 2)) == 4.5  # middle half of 1..8 is 3, 4, 5, 6
    assert optimality_gap(np.array([[0.5, 1.2], [0.8, 0.9]])) == pytest.approx(0.2)  # gaps 0.5, 0, 0.2, 0.1
    assert optimality_gap(np.array([[0.5, 1.2]]), gamma=2.0) == pytest.approx(1.15)
    # Pairs on the one task: 1 vs 1 tie (1/2), 1 > 0, 2 > 1, 2 > 0 -> 3.5 / 4.
    assert probability_of_improvement([[1.0], [2.0]], [[1.0], [0.0]]) == pytest.approx(0.875)


def test_iqm_is_scipys_trimmed_mean_of_all_scores():
    assert iqm(SCORES) == pytest.approx(scipy_stats.trim_mean(SCORES.ravel(), 0.25))
    assert iqm(np.stack([SCORES, SCORES + 1.0])) == pytest.approx(iqm(SCORES) + np.array([0.0, 1.0]))


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 4)), elements=st.integers(0, 5).map(float)),
    st.integers(1, 6),
)
def test_probability_of_improvement_is_the_mann_whitney_u_over_nm_averaged_over_tasks(x, y_runs):
    y = np.random.default_rng(y_runs).integers(0, 6, size=(y_runs, x.shape[1])).astype(float)  # ties included
    expected = np.mean([
        scipy_stats.mannwhitneyu(x[:, t], y[:, t], alternative="greater").statistic / (x.shape[0] * y_runs)
        for t in range(x.shape[1])
    ])
    assert probability_of_improvement(x, y) == pytest.approx(expected)
    assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == pytest.approx(1.0)


def test_stratified_bootstrap_resamples_runs_within_each_task():
    tasks = np.arange(4) * 100.0
    scores = tasks + np.random.default_rng(1).uniform(size=(5, 4))
    seen = []

    def record(resampled):
        seen.append(resampled)
        return resampled.mean(axis=(-2, -1))

    stratified_bootstrap_ci(scores, record, n_resamples=300, rng=2)
    resampled = np.concatenate(seen[:-1])  # the last call is the estimate on the data themselves
    assert resampled.shape == (300, 5, 4)
    for task in range(4):
        assert np.isin(resampled[:, :, task], scores[:, task]).all()  # a task's column never mixes tasks
        assert len(np.unique(resampled[:, :, task])) == 5  # and draws from all of its runs


def test_stratified_bootstrap_matches_a_direct_loop_with_the_same_draws():
    result = stratified_bootstrap_ci(SCORES, "iqm", n_resamples=500, rng=3)
    draws = np.random.default_rng(3).integers(0, 10, size=(500, 10, 6))
    direct = [scipy_stats.trim_mean(SCORES[draws[b], np.arange(6)].ravel(), 0.25) for b in range(500)]
    np.testing.assert_allclose(result.distribution, direct)
    assert (result.low, result.high) == pytest.approx(tuple(np.quantile(direct, [0.025, 0.975])))
    assert result.estimate == pytest.approx(iqm(SCORES)) and result.design == "stratified"


def test_probability_of_improvement_interval_resamples_both_score_sets_independently():
    rng = np.random.default_rng(4)
    better, worse = rng.normal(0.6, 0.2, (12, 5)), rng.normal(0.4, 0.2, (8, 5))
    result = stratified_bootstrap_ci(better, "probability_of_improvement", other=worse, n_resamples=2000, rng=5)
    draws = np.random.default_rng(5)
    first, second = draws.integers(0, 12, size=(2000, 12, 5)), draws.integers(0, 8, size=(2000, 8, 5))
    b = 7
    direct = probability_of_improvement(better[first[b], np.arange(5)], worse[second[b], np.arange(5)])
    assert result.distribution[b] == pytest.approx(direct)
    assert 0.5 < result.low < result.estimate < result.high <= 1.0
    assert result.sample_sizes == (12, 8) and result.p_value(0.5) < 0.01


def test_optimality_gap_interval_is_seeded_and_bca_is_refused():
    a = stratified_bootstrap_ci(SCORES, "optimality_gap", n_resamples=400, rng=6)
    b = stratified_bootstrap_ci(SCORES, optimality_gap, n_resamples=400, rng=6)
    np.testing.assert_array_equal(a.distribution, b.distribution)
    assert a.low < optimality_gap(SCORES) < a.high
    with pytest.raises(ValueError, match="BCa"):
        stratified_bootstrap_ci(SCORES, "iqm", method="bca")
    with pytest.raises(ValueError, match="NaN"):
        iqm(np.array([[1.0, np.nan]]))
