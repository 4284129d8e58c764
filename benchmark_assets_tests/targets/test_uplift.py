"""Uplift estimators: real scikit-learn fits on simulated randomised experiments, the baselines, and how
a trial resolves, calls and checks an estimator."""
import numpy as np
import pytest
from scipy import stats as scipy_stats

from benchmark_assets.stats.uplift import pehe, qini_coefficient, uplift_metrics
from benchmark_assets.targets.uplift import (
    BUILTIN,
    REGRESSOR_DEFAULTS,
    Estimate,
    EstimatorError,
    constant_effect,
    difference_in_means,
    resolve_estimator,
    run_estimator,
    zero_effect,
)


def experiment(n: int, *, seed: int, features: int = 5, base_effect: float = 0.0):
    """A randomised A/B test: X ~ N(0, 1), a fair coin for treatment, outcome = baseline + T tau + noise
    with tau(x) = base_effect + 0.3 x0 (population ATE = base_effect). (X, treatment, outcome, tau)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features))
    treatment = rng.integers(0, 2, size=n)
    tau = base_effect + 0.3 * X[:, 0]
    outcome = X[:, 1] + 0.5 * X[:, 2] + treatment * tau + rng.normal(0.0, 0.5, size=n)
    return X, treatment, outcome, tau


@pytest.fixture(scope="module")
def heterogeneous():
    return experiment(4000, seed=0)


# Estimators a test refers to as "benchmark_assets_tests.targets.test_uplift:<name>".
def half_the_outcome_gap(X, treatment, outcome, *, seed, scale=1.0):
    gap = np.mean(outcome[treatment == 1]) - np.mean(outcome[treatment == 0])
    return {"effects": np.full(len(outcome), scale * gap), "ate_lower": -1.0, "ate_upper": 1.0}


def raises_inside(X, treatment, outcome, *, seed):
    raise ZeroDivisionError(f"user bug with seed {seed}")


NOT_CALLABLE = 42


@pytest.mark.parametrize("name", ["s_learner", "t_learner", "x_learner"])
def test_meta_learners_find_a_strong_heterogeneous_effect(heterogeneous, name):
    X, treatment, outcome, tau = heterogeneous
    estimate, seconds = run_estimator(BUILTIN[name], X, treatment, outcome, seed=0, name=name)
    baseline, _ = run_estimator(constant_effect, X, treatment, outcome, seed=0)
    assert estimate.effects.shape == (4000,) and estimate.ate == pytest.approx(np.mean(estimate.effects))
    assert seconds > 0
    assert pehe(estimate.effects, tau) < 0.7 * pehe(baseline.effects, tau)
    assert qini_coefficient(estimate.effects, tau) > 0.5
    assert abs(estimate.ate - np.mean(tau)) < 0.05


def test_learners_are_reproducible_by_seed_and_take_regressor_options(heterogeneous):
    X, treatment, outcome, _ = heterogeneous
    first, _ = run_estimator(BUILTIN["x_learner"], X, treatment, outcome, seed=3)
    again, _ = run_estimator(BUILTIN["x_learner"], X, treatment, outcome, seed=3)
    np.testing.assert_array_equal(first.effects, again.effects)
    tiny, _ = run_estimator(BUILTIN["t_learner"], X, treatment, outcome, seed=3, options={"max_iter": 1})
    assert np.ptp(tiny.effects) < np.ptp(first.effects)  # one small boosting step barely moves off the mean
    logistic, _ = run_estimator(BUILTIN["x_learner"], X, treatment, outcome, seed=3,
                                options={"propensity": "logistic", **REGRESSOR_DEFAULTS})
    assert np.corrcoef(logistic.effects, first.effects)[0, 1] > 0.95  # a randomised test: about the same


@pytest.mark.parametrize("name, options, message", [
    ("s_learner", {"max_depht": 3}, "estimator 's_learner' got unknown options max_depht; use "
                                    "HistGradientBoostingRegressor parameters"),
    ("t_learner", {"random_state": 1}, "estimator 't_learner' got unknown options random_state"),
    ("x_learner", {"propensity": "oracle"}, "estimator 'x_learner' got propensity='oracle'; use one of share, "
                                            "logistic"),
    ("difference_in_means", {"seed": 1}, "estimator 'difference_in_means' got 'seed' among its options; pass it as "
                                         "seed="),
])
def test_unknown_options_are_refused(heterogeneous, name, options, message):
    X, treatment, outcome, _ = heterogeneous
    with pytest.raises(EstimatorError) as raised:
        run_estimator(BUILTIN[name], X[:100], treatment[:100], outcome[:100], seed=0, options=options)
    assert str(raised.value).startswith(message)


def test_difference_in_means_is_welchs_interval():
    X, treatment, outcome, _ = experiment(300, seed=1, base_effect=0.2)
    estimate, _ = run_estimator(difference_in_means, X, treatment, outcome, seed=0)
    treated, control = outcome[treatment == 1], outcome[treatment == 0]
    welch = scipy_stats.ttest_ind(treated, control, equal_var=False).confidence_interval()
    assert estimate.effects is None and estimate.lower is None
    assert estimate.ate == pytest.approx(treated.mean() - control.mean(), rel=1e-12)
    assert (estimate.ate_lower, estimate.ate_upper) == (welch.low, welch.high)
    narrower = difference_in_means(X, treatment, outcome, seed=0, confidence_level=0.8)
    assert estimate.ate_lower < narrower.ate_lower < narrower.ate_upper < estimate.ate_upper


@pytest.mark.calibration
def test_difference_in_means_covers_the_true_ate_about_95_percent_of_the_time():
    covered = []
    for seed in range(200):
        X, treatment, outcome, _ = experiment(80, seed=100 + seed, features=3, base_effect=0.2)
        estimate, _ = run_estimator(difference_in_means, X, treatment, outcome, seed=seed)
        covered.append(estimate.ate_lower <= 0.2 <= estimate.ate_upper)
    assert scipy_stats.binomtest(sum(covered), len(covered), 0.95).pvalue > 0.01


@pytest.mark.filterwarnings("ignore:Precision loss occurred")
def test_difference_in_means_of_constant_arms_has_scipys_zero_width_interval():
    estimate = difference_in_means(np.zeros((6, 1)), [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1.0], seed=0)
    assert (estimate.ate, estimate.ate_lower, estimate.ate_upper) == (1.0, 1.0, 1.0)


def test_the_baselines(heterogeneous):
    X, treatment, outcome, tau = heterogeneous
    zero, _ = run_estimator(zero_effect, X, treatment, outcome, seed=0)
    assert zero.ate == 0.0 and not zero.effects.any() and zero.ate_lower is None
    constant, _ = run_estimator(constant_effect, X, treatment, outcome, seed=0)
    average = difference_in_means(X, treatment, outcome, seed=0)
    assert np.all(constant.effects == average.ate) and constant.ate == average.ate
    assert (constant.ate_lower, constant.ate_upper) == (average.ate_lower, average.ate_upper)
    metrics = uplift_metrics(constant, tau)
    assert metrics["qini"] == 0.0 and metrics["ate_covered"] == 1.0
    assert metrics["pehe"] == pytest.approx(np.std(tau), rel=0.05)  # all the heterogeneity missed


def test_estimators_resolve_by_builtin_name_or_module_function():
    assert resolve_estimator("t_learner") is BUILTIN["t_learner"]
    assert set(BUILTIN) == {"difference_in_means", "zero_effect", "constant_effect", "s_learner", "t_learner",
                            "x_learner", "causal_forest"}
    user = resolve_estimator("benchmark_assets_tests.targets.test_uplift:half_the_outcome_gap")
    X, treatment, outcome, _ = experiment(200, seed=2, base_effect=1.0)
    estimate, _ = run_estimator(user, X, treatment, outcome, seed=0, options={"scale": 0.5})
    gap = np.mean(outcome[treatment == 1]) - np.mean(outcome[treatment == 0])
    assert estimate.ate == pytest.approx(gap / 2) and (estimate.ate_lower, estimate.ate_upper) == (-1.0, 1.0)


@pytest.mark.parametrize("reference, message", [
    ("magic_learner", "unknown estimator 'magic_learner'; use a builtin (difference_in_means, zero_effect, "
                      "constant_effect, s_learner, t_learner, x_learner, causal_forest) or 'module:function'"),
    ("no_such_module_here:fit", "estimator 'no_such_module_here:fit': cannot import module 'no_such_module_here' "
                                "for 'no_such_module_here:fit': ModuleNotFoundError: No module named "
                                "'no_such_module_here'"),
    ("benchmark_assets_tests.targets.test_uplift:missing", "module 'benchmark_assets_tests.targets.test_uplift' "
                                                           "has no function 'missing'"),
    ("benchmark_assets_tests.targets.test_uplift:NOT_CALLABLE", "has no function 'NOT_CALLABLE' (it is a int)"),
])
def test_unresolvable_references_say_why(reference, message):
    with pytest.raises(EstimatorError) as raised:
        resolve_estimator(reference)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_an_exception_inside_the_estimator_propagates_unchanged():
    user = resolve_estimator("benchmark_assets_tests.targets.test_uplift:raises_inside")
    X, treatment, outcome, _ = experiment(20, seed=0)
    with pytest.raises(ZeroDivisionError, match="user bug with seed 7"):
        run_estimator(user, X, treatment, outcome, seed=7)


N = 20
ONES = np.ones(N)


@pytest.mark.parametrize("returned, expected", [
    (Estimate(effects=ONES), Estimate(effects=ONES, ate=1.0)),
    (list(2 * ONES), Estimate(effects=2 * ONES, ate=2.0)),
    ({"effects": ONES, "ate": 0.5}, Estimate(effects=ONES, ate=0.5)),  # an ATE estimated its own way is kept
    ({"ate": 0.5, "ate_lower": 0.1, "ate_upper": 0.9}, Estimate(effects=None, ate=0.5, ate_lower=0.1, ate_upper=0.9)),
    ((ONES, ONES - 1, ONES + 1), Estimate(effects=ONES, ate=1.0, lower=ONES - 1, upper=ONES + 1)),
])
def test_the_shapes_an_estimator_may_return(returned, expected):
    X, treatment, outcome, _ = experiment(N, seed=0)
    estimate, _ = run_estimator(lambda *args, seed: returned, X, treatment, outcome, seed=0)
    for field in ("effects", "lower", "upper"):
        got, want = getattr(estimate, field), getattr(expected, field)
        assert (got is None and want is None) or (got.dtype == np.float64 and np.array_equal(got, want))
    assert (estimate.ate, estimate.ate_lower, estimate.ate_upper) == (expected.ate, expected.ate_lower,
                                                                      expected.ate_upper)


@pytest.mark.parametrize("returned, message", [
    (ONES[:, None], f"estimator 'fake' returned effects shaped ({N}, 1); return one effect per row, shaped ({N},)"),
    (ONES[:5], "returned effects shaped (5,)"),
    (np.where(np.arange(N) == 3, np.nan, 1.0), "returned effects with 1 NaN or infinite values (first row 3); "
                                               "return finite values"),
    ((ONES, ONES + 1, ONES - 1), f"returned lower > upper in {N} rows (first row 0); return lower <= upper"),
    ({"effects": ONES, "cate": ONES, "std": 1}, "returned unknown keys cate, std; use only effects, ate, lower"),
    ({"effects": ONES, "lower": ONES}, "returned only lower; give both bounds of the effect interval or neither"),
    ({"ate": 0.1, "ate_upper": 0.2}, "returned only ate_upper; give both bounds of the ATE interval"),
    ({"ate": 0.3, "ate_lower": 0.5, "ate_upper": 0.4}, "returned ate_lower 0.5 > ate_upper 0.4"),
    ({"ate": float("inf")}, "returned ate = inf; return a finite number"),
    ({"lower": ONES, "upper": ONES, "ate": 1.0}, "returned effect bounds without effects"),
    ({}, "returned neither effects nor an ate; return at least one"),
    (None, "returned None; return an Estimate"),
    ((ONES, ONES), "returned a tuple of 2; return (effects, lower, upper)"),
    (["a"] * N, "returned effects that are not numbers (list)"),
])
def test_unusable_answers_are_refused_with_one_line_saying_what_to_return(returned, message):
    X, treatment, outcome, _ = experiment(N, seed=0)
    with pytest.raises(EstimatorError) as raised:
        run_estimator(lambda *args, seed: returned, X, treatment, outcome, seed=0, name="fake")
    assert str(raised.value).startswith("estimator 'fake' returned") and message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("treatment, outcome, message", [
    (np.arange(N) % 3, np.zeros(N), "got treatment values [0, 1, 2]; pass 0 (control) or 1 (treated)"),
    (np.r_[1, np.zeros(N - 1)], np.zeros(N), "got 1 treated and 19 control rows; each arm needs at least two"),
    (np.arange(N) % 2, np.r_[np.nan, np.zeros(N - 1)], "got NaN or infinite values in X or outcome"),
    (np.arange(N) % 2, np.zeros(N - 1), f"got X shaped ({N}, 5), treatment ({N},), outcome ({N - 1},)"),
])
def test_unusable_data_is_refused_before_the_call(treatment, outcome, message):
    X, _, _, _ = experiment(N, seed=0)
    with pytest.raises(EstimatorError) as raised:
        run_estimator(raises_inside, X, treatment, outcome, seed=0, name="t_learner")
    assert str(raised.value).startswith("estimator 't_learner' got") and message in str(raised.value)


def test_the_causal_forest_gives_intervals_that_cover_the_individual_effects(heterogeneous):
    """EconML's causal forest (the `causal` extra): its effects beat the constant baseline, its 95 %
    intervals hold most individual effects (pointwise, so not every one) and the average effect."""
    X, treatment, outcome, tau = heterogeneous
    estimate, _ = run_estimator(BUILTIN["causal_forest"], X, treatment, outcome, seed=0,
                                options={"n_estimators": 100}, name="causal_forest")
    baseline, _ = run_estimator(constant_effect, X, treatment, outcome, seed=0)
    assert pehe(estimate.effects, tau) < 0.7 * pehe(baseline.effects, tau)
    metrics = uplift_metrics(estimate, tau)
    assert 0.8 <= metrics["coverage"] <= 1.0 and metrics["interval_width"] > 0
    assert metrics["ate_covered"] == 1.0
    assert estimate.lower.shape == estimate.upper.shape == (4000,) and (estimate.lower <= estimate.upper).all()
