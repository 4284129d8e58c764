import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

from benchmark_assets.stats import adjust_p_values, bootstrap_mean, corrected_confidence_levels, describe, t_interval
from benchmark_assets.stats.aggregate import aggregate_metrics


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=40))
def test_describe_and_t_interval_match_numpy_and_scipy(values):
    x = np.asarray(values)
    d = describe(x)
    assert d.n == len(x)
    assert d.mean == pytest.approx(x.mean())
    assert d.std == pytest.approx(x.std(ddof=1), abs=1e-9)
    if x.std() > 1e-9:
        low, high = scipy_stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=scipy_stats.sem(x))
        assert d.t_low == pytest.approx(low) and d.t_high == pytest.approx(high)


def test_a_single_run_has_no_interval_rather_than_an_error():
    d = describe(np.array([[0.5, np.nan, np.nan]]))
    assert d.n[0] == 1 and d.mean[0] == 0.5
    assert np.isnan(d.std[0]) and np.isnan(d.t_low[0]) and np.isnan(d.t_high[0])
    low, high = t_interval(1.0, np.nan, 1)
    assert np.isnan(low) and np.isnan(high)


def test_bootstrap_matches_scipy_percentile_interval():
    rng = np.random.default_rng(3)
    data = rng.lognormal(size=(4, 30))
    ours = bootstrap_mean(data, n_resamples=20_000, rng=1)
    for row in range(4):
        theirs = scipy_stats.bootstrap((data[row],), np.mean, n_resamples=20_000, method="percentile",
                                       rng=np.random.default_rng(2)).confidence_interval
        spread = data[row].std() / np.sqrt(30)
        assert ours.low[row] == pytest.approx(theirs.low, abs=0.1 * spread)
        assert ours.high[row] == pytest.approx(theirs.high, abs=0.1 * spread)


def test_bootstrap_is_reproducible_with_a_seed_and_refuses_nan():
    data = np.arange(20.0)
    a, b = bootstrap_mean(data, rng=7), bootstrap_mean(data, rng=7)
    assert a.low == b.low and a.high == b.high
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_mean(np.array([1.0, np.nan]))


def test_bootstrap_interval_covers_the_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    samples = rng.normal(loc=2.0, size=(1000, 30))  # 1000 experiments at once, one array pass
    result = bootstrap_mean(samples, n_resamples=2000, rng=12)
    coverage = np.mean((result.low <= 2.0) & (2.0 <= result.high))
    assert 0.92 <= coverage <= 0.97, coverage


def test_p_value_against_zero_is_small_for_a_clear_shift_and_large_for_none():
    rng = np.random.default_rng(5)
    shifted, centred = rng.normal(1.0, 1.0, 30), rng.normal(0.0, 1.0, 30) - 0.0
    result = bootstrap_mean(np.vstack([shifted, centred - centred.mean()]), rng=1)
    p = result.p_value_against_zero()
    assert p[0] < 0.01 and p[1] > 0.5


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=25), st.sampled_from(["holm", "bh"]))
def test_adjusted_p_values_are_statsmodels_and_levels_follow_the_step_thresholds(p, method):
    p = np.asarray(p)
    expected = multipletests(p, method={"holm": "holm", "bh": "fdr_bh"}[method])[1]
    np.testing.assert_allclose(adjust_p_values(p, method), expected)
    levels = corrected_confidence_levels(p, method, 0.95)
    m = len(p)
    smallest = np.argmin(p)
    assert levels[smallest] == pytest.approx(1 - 0.05 / m)  # both methods test the smallest at alpha/m
    assert np.all(levels >= 0.95 - 1e-12)


def test_aggregate_metrics_gives_every_statistic_per_metric():
    import pandas as pd

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, np.nan, 0.5, 0.5]})
    table = aggregate_metrics(frame, ["a", "b"], n_resamples=500, rng_seed=1, label="x").set_index("metric")
    assert table.loc["a", "n"] == 4 and table.loc["a", "mean"] == 2.5
    assert table.loc["a", "cv"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2.5)
    assert table.loc["a", "bootstrap_low"] < 2.5 < table.loc["a", "bootstrap_high"]
    assert table.loc["b", "n"] == 3 and table.loc["b", "std"] == 0.0
