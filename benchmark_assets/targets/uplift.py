"""Treatment-effect (uplift) estimators for randomised A/B tests, and how a trial calls one. No Dagster.

An estimator is a function ``fn(X, treatment, outcome, *, seed, **options)`` of an (n, p) feature
matrix, a 0/1 treatment per row and a finite outcome per row (a 0/1 conversion or a non-negative
metric such as revenue per visitor). It returns an ``Estimate`` of the rows it was given, or, for
short, a 1-D array of n effects, a dict of ``Estimate``'s fields, or a tuple (effects, lower, upper).
``BUILTIN`` holds the baselines and the meta-learners on scikit-learn's HistGradientBoostingRegressor;
``resolve_estimator`` finds a builtin or a ``module:function``; ``run_estimator`` times one call and
checks what came back.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from benchmark_assets.stats.lazy import scipy_stats
from benchmark_assets.targets.calls import load_callable

# The meta-learners' regressor, where it differs from scikit-learn's defaults. An effect is a difference
# of fits, so noise in either fit is noise in the effect: smaller trees (7 leaves of at least 50 rows)
# learning more slowly (0.05) roughly halve the T- and X-learners' PEHE on small effects at the same 100
# iterations, and cost the S-learner a little. No early stopping, so a fit does not change at 10,000 rows.
REGRESSOR_DEFAULTS = {"max_iter": 100, "learning_rate": 0.05, "max_leaf_nodes": 7, "min_samples_leaf": 50,
                      "early_stopping": False}
_FIELDS = ("effects", "ate", "lower", "upper", "ate_lower", "ate_upper")
PROPENSITIES = ("share", "logistic")


class EstimatorError(ValueError):
    """An estimator that cannot be found, is given options it does not take, or returned something
    unusable; the message is one line: which estimator, what is wrong, the fix."""


@dataclass(frozen=True, eq=False)
class Estimate:
    """An estimator's answer for the rows it was fitted on: individual effects (or None when it
    estimates the average effect only), the average effect (the mean of the effects when not given),
    and optional intervals for the individual effects and for the average effect."""

    effects: np.ndarray | None  # (n,)
    ate: float | None = None  # None on construction means mean(effects)
    lower: np.ndarray | None = None  # (n,) individual-effect interval
    upper: np.ndarray | None = None
    ate_lower: float | None = None
    ate_upper: float | None = None

    def __post_init__(self):
        if self.ate is None and self.effects is not None:
            object.__setattr__(self, "ate", float(np.mean(self.effects)))


def difference_in_means(X, treatment, outcome, *, seed: int, confidence_level: float = 0.95) -> Estimate:
    """The average effect only: mean outcome of the treated minus that of the control rows, with a
    Welch t-interval (``scipy.stats.ttest_ind(equal_var=False)``); no interval when both arms are
    constant (then the interval has no width to estimate). ``seed`` is unused."""
    _, t, y = _data(X, treatment, outcome, "difference_in_means")
    treated, control = y[t == 1], y[t == 0]
    ate = float(np.mean(treated) - np.mean(control))
    low, high = scipy_stats().ttest_ind(treated, control, equal_var=False).confidence_interval(confidence_level)
    if not (math.isfinite(low) and math.isfinite(high)):
        return Estimate(effects=None, ate=ate)
    return Estimate(effects=None, ate=ate, ate_lower=float(low), ate_upper=float(high))


def zero_effect(X, treatment, outcome, *, seed: int) -> Estimate:
    """Every effect 0: the baseline that knows nothing."""
    x, _, _ = _data(X, treatment, outcome, "zero_effect")
    return Estimate(effects=np.zeros(x.shape[0]), ate=0.0)


def constant_effect(X, treatment, outcome, *, seed: int, confidence_level: float = 0.95) -> Estimate:
    """Every unit gets the difference-in-means average effect, with its interval: the baseline with
    no heterogeneity, which individual-effect estimators have to beat."""
    average = difference_in_means(X, treatment, outcome, seed=seed, confidence_level=confidence_level)
    return Estimate(effects=np.full(np.shape(outcome)[0], average.ate), ate=average.ate,
                    ate_lower=average.ate_lower, ate_upper=average.ate_upper)


def s_learner(X, treatment, outcome, *, seed: int, **options) -> Estimate:
    """One regressor of the outcome on [X, treatment]; effect = f(x, 1) - f(x, 0). ``options`` go to
    the HistGradientBoostingRegressor (over ``REGRESSOR_DEFAULTS``)."""
    x, t, y = _data(X, treatment, outcome, "s_learner")
    model = _regressor("s_learner", seed, options).fit(np.column_stack([x, t]), y)
    ones, zeros = np.ones((x.shape[0], 1)), np.zeros((x.shape[0], 1))
    return Estimate(effects=model.predict(np.hstack([x, ones])) - model.predict(np.hstack([x, zeros])))


def t_learner(X, treatment, outcome, *, seed: int, **options) -> Estimate:
    """One regressor per arm; effect = mu1(x) - mu0(x). ``options`` go to both regressors."""
    x, t, y = _data(X, treatment, outcome, "t_learner")
    mu0, mu1 = _arm_models("t_learner", x, t, y, seed, options)
    return Estimate(effects=mu1.predict(x) - mu0.predict(x))


def x_learner(X, treatment, outcome, *, seed: int, propensity: str = "share", **options) -> Estimate:
    """Kunzel et al.'s X-learner: the T-learner's two arm models impute each row's effect (treated:
    y - mu0(x); control: mu1(x) - y), a regressor per arm fits the imputed effects (tau1, tau0), and
    tau(x) = e(x) tau0(x) + (1 - e(x)) tau1(x) with e the propensity. The A/B test is randomised, so
    by default e is the treated share of the rows (``propensity="share"``); ``propensity="logistic"``
    fits a LogisticRegression of treatment on X instead (for imbalanced or drifting assignment).
    ``options`` go to all four regressors."""
    x, t, y = _data(X, treatment, outcome, "x_learner")
    if propensity not in PROPENSITIES:
        raise EstimatorError(f"estimator 'x_learner' got propensity={propensity!r}; "
                             f"use one of {', '.join(PROPENSITIES)}")
    mu0, mu1 = _arm_models("x_learner", x, t, y, seed, options)
    treated, control = t == 1, t == 0
    tau1 = _regressor("x_learner", seed, options).fit(x[treated], y[treated] - mu0.predict(x[treated]))
    tau0 = _regressor("x_learner", seed, options).fit(x[control], mu1.predict(x[control]) - y[control])
    if propensity == "share":
        e = np.full(x.shape[0], np.mean(t))
    else:
        from sklearn.linear_model import LogisticRegression

        e = LogisticRegression(random_state=seed).fit(x, t).predict_proba(x)[:, 1]
    return Estimate(effects=e * tau0.predict(x) + (1 - e) * tau1.predict(x))


def causal_forest(X, treatment, outcome, *, seed: int, confidence_level: float = 0.95, n_estimators: int = 200,
                  min_samples_leaf: int = 20, **options) -> Estimate:
    """EconML's causal forest (``CausalForestDML``; the ``causal`` extra): outcome residuals from the
    meta-learners' regressor (cross-fitted), treatment residuals from the treated share (the test is
    randomised: the propensity is known up to sampling), a forest of honest trees on the residuals.
    It gives intervals for every individual effect and for the average effect, at
    ``confidence_level``. ``options`` go to the outcome regressor."""
    try:
        from econml.dml import CausalForestDML
        from sklearn.dummy import DummyClassifier
    except ImportError as error:
        raise EstimatorError(f"estimator 'causal_forest' needs EconML, which does not import ({error}); "
                             "pip install 'benchmark_assets[causal]'") from None
    x, t, y = _data(X, treatment, outcome, "causal_forest")
    model = CausalForestDML(model_y=_regressor("causal_forest", seed, options),
                            model_t=DummyClassifier(strategy="prior"), discrete_treatment=True,
                            n_estimators=n_estimators, min_samples_leaf=min_samples_leaf, random_state=seed)
    model.fit(y, t, X=x)
    alpha = 1.0 - confidence_level
    lower, upper = model.effect_interval(x, alpha=alpha)
    ate_lower, ate_upper = model.ate_interval(x, alpha=alpha)
    return Estimate(effects=model.effect(x), ate=float(model.ate(x)), lower=lower, upper=upper,
                    ate_lower=float(ate_lower), ate_upper=float(ate_upper))


BUILTIN: dict[str, Callable] = {
    "difference_in_means": difference_in_means,
    "zero_effect": zero_effect,
    "constant_effect": constant_effect,
    "s_learner": s_learner,
    "t_learner": t_learner,
    "x_learner": x_learner,
    "causal_forest": causal_forest,  # needs the `causal` extra (EconML)
}
# The pip extra each shipped estimator needs beyond the base install (benchmark_assets.extras).
EXTRA_OF = {"s_learner": "estimators", "t_learner": "estimators", "x_learner": "estimators", "causal_forest": "causal"}


def resolve_estimator(reference: str) -> Callable:
    """The estimator a name in ``BUILTIN`` or a ``module:function`` (``package.module:function``) names."""
    if reference in BUILTIN:
        return BUILTIN[reference]
    if ":" not in reference:
        raise EstimatorError(f"unknown estimator {reference!r}; use a builtin ({', '.join(BUILTIN)}) "
                             "or 'module:function'")
    try:
        return load_callable(reference)
    except ValueError as error:
        raise EstimatorError(f"estimator {reference!r}: {error}") from None


def run_estimator(function: Callable, X, treatment, outcome, *, seed: int, options: dict | None = None,
                  name: str = "") -> tuple[Estimate, float]:
    """(the checked Estimate, seconds the call took): calls ``function(X, treatment, outcome,
    seed=seed, **options)`` on X as float64, treatment as int64 0/1 and outcome as float64, timed with
    ``time.perf_counter``, and accepts its answer as an Estimate, n effects, a dict of Estimate's
    fields or a tuple (effects, lower, upper).

    The answer must give effects shaped (n,) or an ATE or both, finite, both bounds of an interval or
    neither, lower <= upper; arrays come back as float64. EstimatorError otherwise; an exception the
    function itself raises propagates unchanged."""
    name = name or getattr(function, "__name__", repr(function))
    options = dict(options or {})
    if "seed" in options:
        raise EstimatorError(f"estimator {name!r} got 'seed' among its options; pass it as seed=")
    x, t, y = _data(X, treatment, outcome, name)
    start = time.perf_counter()
    returned = function(x, t, y, seed=seed, **options)
    seconds = time.perf_counter() - start
    return _checked(returned, x.shape[0], name), seconds


def _checked(returned, n: int, name: str) -> Estimate:
    """The Estimate an estimator's answer stands for, with float64 arrays, or EstimatorError."""
    if isinstance(returned, Estimate):
        fields = {key: getattr(returned, key) for key in _FIELDS}
    elif isinstance(returned, dict):
        unknown = sorted(map(str, set(returned) - set(_FIELDS)))
        if unknown:
            raise EstimatorError(f"estimator {name!r} returned unknown keys {', '.join(unknown)}; "
                                 f"use only {', '.join(_FIELDS)}")
        fields = {key: returned.get(key) for key in _FIELDS}
    elif isinstance(returned, tuple):
        if len(returned) != 3:
            raise EstimatorError(f"estimator {name!r} returned a tuple of {len(returned)}; return (effects, lower, "
                                 "upper), an Estimate, n effects or a dict")
        fields = dict(zip(("effects", "lower", "upper"), returned), ate=None, ate_lower=None, ate_upper=None)
    elif returned is None:
        raise EstimatorError(f"estimator {name!r} returned None; return an Estimate, n effects, a dict or "
                             "(effects, lower, upper)")
    else:
        fields = {"effects": returned, "ate": None, "lower": None, "upper": None, "ate_lower": None, "ate_upper": None}
    effects = _effects(fields["effects"], n, name, "effects")
    lower, upper = (_effects(fields[key], n, name, key) for key in ("lower", "upper"))
    if (lower is None) != (upper is None):
        raise EstimatorError(f"estimator {name!r} returned only {'lower' if upper is None else 'upper'}; "
                             "give both bounds of the effect interval or neither")
    if lower is not None:
        if effects is None:
            raise EstimatorError(f"estimator {name!r} returned effect bounds without effects; return the effects too")
        if (lower > upper).any():
            rows = np.flatnonzero(lower > upper)
            raise EstimatorError(f"estimator {name!r} returned lower > upper in {rows.size} rows (first row "
                                 f"{rows[0]}); return lower <= upper")
    ate = fields["ate"]
    if ate is None and effects is None:
        raise EstimatorError(f"estimator {name!r} returned neither effects nor an ate; return at least one")
    ate = float(np.mean(effects)) if ate is None else _number(ate, name, "ate")
    ate_lower, ate_upper = fields["ate_lower"], fields["ate_upper"]
    if (ate_lower is None) != (ate_upper is None):
        raise EstimatorError(f"estimator {name!r} returned only {'ate_lower' if ate_upper is None else 'ate_upper'}; "
                             "give both bounds of the ATE interval or neither")
    if ate_lower is not None:
        ate_lower, ate_upper = _number(ate_lower, name, "ate_lower"), _number(ate_upper, name, "ate_upper")
        if ate_lower > ate_upper:
            raise EstimatorError(f"estimator {name!r} returned ate_lower {ate_lower} > ate_upper {ate_upper}; "
                                 "return ate_lower <= ate_upper")
    return Estimate(effects=effects, ate=ate, lower=lower, upper=upper, ate_lower=ate_lower, ate_upper=ate_upper)


def _effects(values, n: int, name: str, field: str) -> np.ndarray | None:
    if values is None:
        return None
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise EstimatorError(f"estimator {name!r} returned {field} that are not numbers ({type(values).__name__}); "
                             "return a float array shaped (n,)") from None
    if array.shape != (n,):
        raise EstimatorError(f"estimator {name!r} returned {field} shaped {array.shape}; return one "
                             f"{field[:-1] if field == 'effects' else field} per row, shaped ({n},)")
    if not np.isfinite(array).all():
        bad = np.flatnonzero(~np.isfinite(array))
        raise EstimatorError(f"estimator {name!r} returned {field} with {bad.size} NaN or infinite values (first "
                             f"row {bad[0]}); return finite values")
    return array


def _number(value, name: str, field: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EstimatorError(f"estimator {name!r} returned {field} = {value!r}; return a number") from None
    if not math.isfinite(number):
        raise EstimatorError(f"estimator {name!r} returned {field} = {number}; return a finite number")
    return number


def _data(X, treatment, outcome, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X as (n, p) float64, treatment as (n,) int 0/1 with both arms of at least two rows, outcome as
    (n,) float64, all finite; EstimatorError naming the estimator otherwise."""
    x = np.asarray(X, dtype=np.float64)
    t = np.asarray(treatment)
    y = np.asarray(outcome, dtype=np.float64)
    if x.ndim != 2 or t.shape != (x.shape[0],) or y.shape != (x.shape[0],):
        raise EstimatorError(f"estimator {name!r} got X shaped {x.shape}, treatment {t.shape}, outcome {y.shape}; "
                             "pass X shaped (n, p) and one treatment and outcome per row")
    if not (np.isin(t, (0, 1)).all()):
        raise EstimatorError(f"estimator {name!r} got treatment values {np.unique(t)[:5].tolist()}; "
                             "pass 0 (control) or 1 (treated) per row")
    t = t.astype(np.int64)
    if min(np.sum(t == 1), np.sum(t == 0)) < 2:
        raise EstimatorError(f"estimator {name!r} got {np.sum(t == 1)} treated and {np.sum(t == 0)} control rows; "
                             "each arm needs at least two")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise EstimatorError(f"estimator {name!r} got NaN or infinite values in X or outcome; impute or drop them")
    return x, t, y


def _regressor(name: str, seed: int, options: dict):
    """The learners' HistGradientBoostingRegressor. scikit-learn is imported here, on first use: a
    study of another kind (or the CLI's start) does not pay the second it takes to import."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    unknown = sorted(set(options) - (set(HistGradientBoostingRegressor().get_params()) - {"random_state"}))
    if unknown:
        raise EstimatorError(f"estimator {name!r} got unknown options {', '.join(unknown)}; use "
                             "HistGradientBoostingRegressor parameters (max_iter, learning_rate, max_leaf_nodes, "
                             "min_samples_leaf, ...), the seed sets random_state")
    return HistGradientBoostingRegressor(**{**REGRESSOR_DEFAULTS, **options, "random_state": seed})


def _arm_models(name: str, x, t, y, seed: int, options: dict):
    """(mu0, mu1): a regressor fitted on each arm."""
    control, treated = t == 0, t == 1
    return (_regressor(name, seed, options).fit(x[control], y[control]),
            _regressor(name, seed, options).fit(x[treated], y[treated]))
