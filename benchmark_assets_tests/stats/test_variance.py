import numpy as np
import pandas as pd
import pytest

from benchmark_assets.stats import smallest_stable_n, variance_curve

SEEDS = np.random.default_rng(0).normal(100.0, 10.0, 20)


def test_cv_of_the_mean_of_n_seeds_is_the_plug_in_sd_over_root_n_over_the_mean():
    result = variance_curve(SEEDS, n_subsamples=20_000, n_outer=50, rng=1)
    expected = SEEDS.std(ddof=0) / np.sqrt(result.curve["n"]) / SEEDS.mean()
    np.testing.assert_allclose(result.curve["cv"], expected, rtol=0.03)  # Monte Carlo error about 0.5 %
    assert list(result.curve.columns) == ["n", "cv", "cv_low", "cv_high"]
    assert result.curve["n"].tolist() == list(range(2, 21)) and result.n_seeds == 20


def test_the_band_brackets_the_estimate_and_narrows_with_n():
    curve = variance_curve(SEEDS, rng=2).curve
    assert np.all(curve["cv_low"] <= curve["cv"]) and np.all(curve["cv"] <= curve["cv_high"])
    width = (curve["cv_high"] - curve["cv_low"]).to_numpy()
    assert width[-1] < width[0] / 2


def test_stable_n_uses_the_bands_upper_edge_so_it_is_no_earlier_than_the_estimate():
    result = variance_curve(SEEDS, threshold=0.03, rng=3)
    by_estimate = smallest_stable_n(result.curve, 0.03, column="cv")
    assert result.stable_n == smallest_stable_n(result.curve, 0.03)
    assert by_estimate is not None and result.stable_n is not None and result.stable_n > by_estimate
    assert result.curve.set_index("n").loc[result.stable_n:, "cv_high"].lt(0.03).all()


def test_smallest_stable_n_needs_the_threshold_held_at_every_larger_n():
    curve = pd.DataFrame({"n": [2, 3, 4, 5, 6], "cv": 0.0, "cv_low": 0.0, "cv_high": [0.2, 0.04, 0.06, 0.04, 0.03]})
    assert smallest_stable_n(curve, 0.05) == 5
    assert smallest_stable_n(curve, 0.5) == 2
    assert smallest_stable_n(curve, 0.035) == 6  # 0.04 at n=5 is still above
    assert smallest_stable_n(curve, 0.01) is None


def test_never_stable_gives_none():
    assert variance_curve(np.array([1.0, 5.0, 0.5, 9.0]), threshold=0.01, rng=0).stable_n is None


def test_the_same_seed_gives_the_same_curve_and_an_unseeded_one_records_its_seed():
    a, b = variance_curve(SEEDS, rng=7), variance_curve(SEEDS, rng=7)
    pd.testing.assert_frame_equal(a.curve, b.curve)
    unseeded = variance_curve(SEEDS)
    pd.testing.assert_frame_equal(unseeded.curve, variance_curve(SEEDS, rng=unseeded.seed).curve)


def test_another_summary_than_the_mean_can_be_used():
    mean = variance_curve(SEEDS, n_subsamples=1000, n_outer=20, rng=4).curve
    median = variance_curve(SEEDS, statistic=np.median, n_subsamples=1000, n_outer=20, rng=4).curve
    # On normal data the median is the noisier summary (about 1.25 times the mean's spread).
    assert np.median(median["cv"] / mean["cv"]) == pytest.approx(1.2, abs=0.15)


def test_bad_input_raises_value_errors():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        variance_curve(np.array([1.0]))
    with pytest.raises(ValueError, match="NaN"):
        variance_curve(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="undefined"):
        variance_curve(np.array([-1.0, 1.0]))
