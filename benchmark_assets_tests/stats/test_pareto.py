import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark_assets.stats.pareto import pareto_optimal, trend


def brute_force(values, maximize):
    signs = np.where(maximize, 1.0, -1.0)
    score = np.asarray(values, float) * signs
    out = []
    for i, a in enumerate(score):
        if np.isnan(a).any():
            out.append(False)
            continue
        dominated = any(not np.isnan(b).any() and (b >= a).all() and (b > a).any() for j, b in enumerate(score) if j != i)
        out.append(not dominated)
    return np.array(out)


def test_throughput_latency_frontier_keeps_the_knee_and_drops_dominated_points():
    # (throughput, ttft_p99) for concurrency 1, 2, 4, 8, 16: 16 is slower and no faster than 8.
    values = [[10, 30], [19, 31], [35, 40], [50, 80], [49, 200]]
    assert pareto_optimal(values, [True, False]).tolist() == [True, True, True, True, False]
    assert pareto_optimal([[1, np.nan], [0, 5]], [True, False]).tolist() == [False, True]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=25),
       st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_pareto_mask_matches_brute_force(points, maximize):
    values = np.array(points, float)
    assert pareto_optimal(values, list(maximize)).tolist() == brute_force(values, list(maximize)).tolist()


def test_trend_names_the_shape_of_a_sweep_curve():
    concurrency = [1, 2, 4, 8, 16, 32]
    peaked = trend(concurrency, [10, 19, 35, 50, 48, 40])
    assert peaked["direction"] == "peaks" and peaked["extreme_at"] == 8
    rising = trend(concurrency, [30, 31, 40, 80, 200, 400])
    assert rising["direction"] == "increasing" and rising["spearman_rho"] == pytest.approx(1.0)
    assert rising["largest_step_between"] == [16, 32]
    assert trend([1, 2, 3], [5, 5, 5])["direction"] == "flat"
    assert trend([1, 2, 4], [3, 1, 2])["direction"] == "dips"
