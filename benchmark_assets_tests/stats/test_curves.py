import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from benchmark_assets.stats import CurveError, CurveSpec, auc, last_n_mean, slope, summarise_curve, window_start

STEPS = np.array([0.0, 10.0, 50.0, 80.0, 100.0])


def test_window_is_the_last_fraction_of_the_step_range_not_of_the_points():
    assert window_start(STEPS, 0.25) == 75.0  # 100 - 0.25 * (100 - 0)
    assert window_start([200, 300, 600], 0.5) == 400.0


def test_auc_of_a_line_is_its_average_over_the_window_with_the_start_interpolated():
    values = 2.0 * STEPS + 1.0
    # Window [75, 100] starts between the points at 50 and 80; a line's average there is its midpoint value.
    assert auc(STEPS, values) == pytest.approx(2.0 * 87.5 + 1.0)
    assert auc(STEPS, values, window=1.0) == pytest.approx(2.0 * 50.0 + 1.0)


def test_auc_equals_a_dense_trapezoid_of_the_interpolated_curve():
    rng = np.random.default_rng(0)
    steps = np.sort(rng.choice(np.arange(1, 500), size=40, replace=False)).astype(float)
    values = rng.normal(size=40).cumsum()
    start = window_start(steps, 0.3)
    dense = np.linspace(start, steps[-1], 200_001)
    expected = np.trapezoid(np.interp(dense, steps, values), dense) / (steps[-1] - start)
    assert auc(steps, values, window=0.3) == pytest.approx(expected, rel=1e-6)


def test_a_curve_summary_is_vectorised_over_curves_sharing_steps():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(3, 4, STEPS.size))
    for spec in ({"type": "auc", "window": 0.4}, {"type": "slope", "window": 0.5}, {"type": "last_n", "n": 2}):
        together = summarise_curve(STEPS, values, spec)
        assert together.shape == (3, 4)
        for i, j in np.ndindex(3, 4):
            assert together[i, j] == pytest.approx(float(summarise_curve(STEPS, values[i, j], spec)))


def test_slope_is_the_least_squares_fit_over_the_points_in_the_window():
    values = np.array([5.0, 3.0, 1.0, 4.0, 2.0])
    inside = window_start(STEPS, 0.6) <= STEPS  # steps 50, 80, 100
    assert slope(STEPS, values, window=0.6) == pytest.approx(np.polyfit(STEPS[inside], values[inside], 1)[0])
    assert slope(STEPS, 3.0 * STEPS - 2.0, window=0.25) == pytest.approx(3.0)


def test_last_n_mean_is_the_mean_of_the_last_points():
    assert last_n_mean([1.0, 2.0, 3.0, 4.0], 2) == 3.5
    assert summarise_curve(STEPS, [1.0, 2.0, 3.0, 4.0, 6.0], CurveSpec(type="last_n", n=3)) == pytest.approx(13 / 3)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.integers(2, 30), elements=st.floats(-1e3, 1e3)), st.floats(0.01, 1.0))
def test_auc_is_an_average_so_it_lies_within_the_curves_range(values, window):
    steps = np.arange(values.size) * 3.0 + 7.0
    result = auc(steps, values, window=window)
    assert values.min() - 1e-9 <= result <= values.max() + 1e-9


@pytest.mark.parametrize(
    ("steps", "values", "spec", "message"),
    [
        ([0.0], [1.0], {"type": "auc"}, "1 point.*auc needs at least 2"),
        ([0.0, 2.0, 1.0], [1.0, 2.0, 3.0], {"type": "auc"}, "unsorted at index 2.*sort the curve"),
        ([0.0, 1.0, 1.0], [1.0, 2.0, 3.0], {"type": "slope"}, "duplicate at index 2.*one value per step"),
        ([0.0, 1.0, 2.0], [1.0, np.nan, 3.0], {"type": "auc"}, "NaN.*drop or interpolate"),
        ([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], {"type": "last_n", "n": 5}, "3 points, last_n needs 5"),
        ([0.0, 1.0, 2.0, 10.0], [1.0, 2.0, 3.0, 4.0], {"type": "slope"}, "holds 1 point; slope needs 2: widen"),
        ([0.0, 1.0], [1.0, 2.0], {"type": "area"}, "summary type 'area' unknown"),
        ([0.0, 1.0], [1.0, 2.0], {"type": "auc", "windw": 0.2}, r"keys \['windw'\] unknown"),
        ([0.0, 1.0], [1.0, 2.0], {"type": "auc", "window": 1.5}, r"window is a fraction"),
        ([0.0, 1.0], [1.0, 2.0, 3.0], {"type": "auc"}, "must match the 2 steps"),
    ],
)
def test_unusable_curves_raise_a_curve_error_naming_the_problem_and_the_fix(steps, values, spec, message):
    with pytest.raises(CurveError, match=message):
        summarise_curve(np.asarray(steps), np.asarray(values), spec)
    assert issubclass(CurveError, ValueError)
