"""A catalog of synthetic A/B-test scenarios whose heterogeneous treatment effects are known exactly.

The whole reference (what it measures, every option, how it fails): docs/reference/templates.md.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

METRICS: dict[str, str] = {"conversion_rate": "binary", "revenue_per_visitor": "hurdle"}
METRIC_ABBREVIATIONS: dict[str, str] = {"conversion_rate": "cr", "revenue_per_visitor": "rpv"}
REVENUE_MODELS = ("lognormal", "gamma")

# Knobs every template accepts, with the value used when a caller leaves one out.
KNOB_DEFAULTS: dict[str, object] = {
    "n_visitors": 2000,
    "treatment_allocation": 0.5,
    "baseline_rate": 0.05,
    "severity_sigma": 0.5,
    "n_nuisance": 5,
    "benefit_prevalence": 0.15,
    "revenue_model": "lognormal",
}
COMMON_KNOBS = ("n_visitors", "treatment_allocation", "baseline_rate", "severity_sigma", "n_nuisance", "revenue_model")
# Knobs only some templates accept, with their defaults for that template.
TEMPLATE_KNOB_DEFAULTS: dict[str, dict[str, object]] = {
    "constant": {},
    "reversal": {"driver": "engagement_score"},
    "sparse_benefit": {"driver": "sessions_per_week", "benefit_prevalence": KNOB_DEFAULTS["benefit_prevalence"]},
    "nonlinear": {},
    "monotone_gradient": {"driver": "tenure_months"},
    "interaction_only": {},
    "clustered": {"n_clusters": 3},
}
# Knobs that change nothing for some metric families; a star sweep only varies them where they matter.
KNOB_FAMILIES: dict[str, tuple[str, ...]] = {"severity_sigma": ("hurdle",), "revenue_model": ("hurdle",)}

REVENUE_MEAN = 40.0  # mean order value of a converting visitor without treatment, in currency units
SEVERITY_SHARE = 0.5  # the order-value lift is this fraction of the conversion lift
CLUSTER_SEPARATION = 0.6  # share of a continuous feature's latent variance explained by the visitor's cluster
MAX_CLUSTERS = 8

# Relative lift at effect_scale 1 for each template (what the shape in _lift multiplies).
LIFT_SIZES: dict[str, float] = {
    "constant": 0.2,
    "reversal": 0.2,
    "sparse_benefit": 0.6,
    "nonlinear": 0.25,
    "monotone_gradient": 0.2,
    "interaction_only": 0.2,
    "clustered": 0.2,
}
NONLINEAR_DRIVERS = ("tenure_months", "engagement_score")
INTERACTION_DRIVERS = ("engagement_score", "days_since_last_visit")
SPARSE_REFERENCE = "engagement_score"  # ranks visitors inside the benefiting level when the driver is categorical


class TemplateError(ValueError):
    """A bad template, knob, metric or catalog request; the message says what is wrong and how to fix it."""


class CoverageError(TemplateError):
    """A catalog that never tests a continuous, or never a categorical, effect driver for some metric family."""


@dataclass(frozen=True)
class FeatureSpec:
    """One column family of the default visitor schema.

    Continuous features are ``loc + scale * u`` ("normal") or ``exp(loc + scale * u)`` ("lognormal") of a latent
    standard normal ``u``; categorical ones (binary included) take ``levels`` with probabilities ``probs``, listed
    from the most to the least common.
    """

    name: str
    kind: str  # "continuous" or "categorical"
    description: str
    distribution: str | None = None
    loc: float = 0.0
    scale: float = 1.0
    levels: tuple | None = None
    probs: tuple[float, ...] | None = None

    @property
    def is_continuous(self) -> bool:
        return self.levels is None

    @property
    def mean(self) -> float:
        if not self.is_continuous:
            return 0.0
        if self.distribution == "lognormal":
            return math.exp(self.loc + self.scale**2 / 2)
        return self.loc

    @property
    def std(self) -> float:
        if not self.is_continuous:
            return 1.0
        if self.distribution == "lognormal":
            return self.mean * math.sqrt(math.expm1(self.scale**2))
        return self.scale

    def column_names(self) -> tuple[str, ...]:
        if self.is_continuous:
            return (self.name,)
        return tuple(f"{self.name}={level}" for level in self.levels)


# The default visitor schema: four continuous features and two categorical ones. Tenure, sessions, device and
# returning status shape the baseline conversion; engagement and recency only ever modify the effect.
FEATURES: dict[str, FeatureSpec] = {
    spec.name: spec
    for spec in (
        FeatureSpec("tenure_months", "continuous", "months since sign-up; lognormal, median 9",
                    "lognormal", math.log(9.0), 0.8),
        FeatureSpec("sessions_per_week", "continuous", "visits in the last week; lognormal, median 3",
                    "lognormal", math.log(3.0), 0.6),
        FeatureSpec("engagement_score", "continuous", "engagement index; normal, mean 50, sd 15",
                    "normal", 50.0, 15.0),
        FeatureSpec("days_since_last_visit", "continuous", "recency in days; lognormal, median 7",
                    "lognormal", math.log(7.0), 0.9),
        FeatureSpec("device", "categorical", "device class, three levels",
                    levels=("mobile", "desktop", "tablet"), probs=(0.6, 0.3, 0.1)),
        FeatureSpec("is_returning", "categorical", "binary: has visited before",
                    levels=(False, True), probs=(0.6, 0.4)),
    )
}
CONTINUOUS_FEATURES = tuple(name for name, spec in FEATURES.items() if spec.is_continuous)
CATEGORICAL_FEATURES = tuple(name for name, spec in FEATURES.items() if not spec.is_continuous)

# Baseline (prognostic) model, on latent u for continuous features and per level for categorical ones.
PROGNOSTIC_LOGIT = {"tenure_months": 0.45, "sessions_per_week": 0.35}
PROGNOSTIC_LOGIT_LEVELS = {"device": {"desktop": 0.3, "tablet": 0.1}, "is_returning": {True: 0.4}}
PROGNOSTIC_LOG_SEVERITY = {"tenure_months": 0.2}
PROGNOSTIC_LOG_SEVERITY_LEVELS = {"device": {"desktop": 0.15}}


@dataclass(frozen=True)
class DriverInfo:
    """What an effect driver is: its kind (binary counts as categorical), population mean and standard deviation
    (continuous only; 0.0 and 1.0 for categorical) and its levels from most to least common (categorical only)."""

    name: str
    kind: str
    mean: float = 0.0
    std: float = 1.0
    levels: tuple | None = None


def driver_info(name: str) -> DriverInfo:
    """Describe one feature of the default schema."""
    if name not in FEATURES:
        raise TemplateError(f"unknown driver feature {name!r}; choose one of {list(FEATURES)}")
    spec = FEATURES[name]
    return DriverInfo(name=name, kind=spec.kind, mean=spec.mean, std=spec.std, levels=spec.levels)


@dataclass(frozen=True)
class ClusterProfile:
    """One latent visitor type of the clustered template: how common it is, where its continuous features sit
    (latent offsets, one per continuous feature in schema order), its baseline shifts and its relative lift."""

    weight: float
    centre: tuple[float, ...]
    baseline_shift: float  # added to the conversion logit
    severity_shift: float  # added to the log mean order value
    lift: float  # relative lift, already multiplied by effect_scale


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything :func:`generate` needs to draw one dataset; the same config always gives the same arrays.

    ``surface`` is the template whose effect shape applies, ``lift`` the size of its relative lift (the template's
    base size times ``effect_scale``), ``drivers`` the features the shape reads and ``clusters`` the latent
    types of the clustered surface (empty otherwise). The seed only changes the sample, never the surface.
    """

    seed: int
    metric_id: str
    family: str
    surface: str
    effect_scale: float
    lift: float
    n_visitors: int = 2000
    treatment_allocation: float = 0.5
    baseline_rate: float = 0.05
    severity_sigma: float = 0.5
    n_nuisance: int = 5
    revenue_model: str = "lognormal"
    drivers: tuple[str, ...] = ()
    benefit_prevalence: float = 0.15
    clusters: tuple[ClusterProfile, ...] = ()

    @property
    def stream(self) -> int:
        """A number naming this scenario (everything but the seed), so that two scenarios drawn with
        the same seed get independent samples: a benchmark may then count every data set of a
        catalog as an independent comparison."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k != "seed"}
        return int.from_bytes(hashlib.sha256(repr(sorted(fields.items())).encode()).digest()[:8], "little")

    def __post_init__(self) -> None:
        _check_seed(self.seed)
        _check_metric(self.metric_id)
        if METRICS[self.metric_id] != self.family:
            raise TemplateError(
                f"metric {self.metric_id!r} is of family {METRICS[self.metric_id]!r}, not {self.family!r}; "
                "leave family to the template"
            )
        if self.surface not in TEMPLATE_KNOB_DEFAULTS:
            raise TemplateError(f"unknown surface {self.surface!r}; choose one of {list(TEMPLATE_KNOB_DEFAULTS)}")
        for knob in (*COMMON_KNOBS, "benefit_prevalence"):
            _check_knob(knob, getattr(self, knob))
        for name in self.drivers:
            driver_info(name)
        if self.surface == "clustered" and len(self.clusters) < 2:
            raise TemplateError("the clustered surface needs at least 2 clusters; build it with the template")


@dataclass(frozen=True, eq=False)
class Dataset:
    """One simulated A/B test: what an estimator sees, plus the truth it is scored against.

    ``features`` is ready for scikit-learn: continuous features as drawn, every categorical level as its own 0/1
    column (``name=level``, nothing dropped), then ``n_nuisance`` pure-noise columns ``noise_0``, ... .
    ``true_effect`` is each visitor's E[Y(1) - Y(0)] in outcome units (given its latent cluster where there is
    one); ``expected_control`` is its E[Y(0)], and ``cluster`` its latent type (clustered surface only). Neither
    of the last two is meant as estimator input.
    """

    features: np.ndarray
    feature_names: tuple[str, ...]
    treatment: np.ndarray
    outcome: np.ndarray
    true_effect: np.ndarray
    metric_id: str
    family: str
    expected_control: np.ndarray | None = None
    cluster: np.ndarray | None = None

    @property
    def true_ate(self) -> float:
        return float(np.mean(self.true_effect))

    @property
    def n(self) -> int:
        return int(self.outcome.shape[0])


# ---------------------------------------------------------------------------------------------------------------
# Validation


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TemplateError(f"seed={seed!r} must be a non-negative integer")
    return int(seed)


def _check_metric(metric_id) -> str:
    if metric_id not in METRICS:
        raise TemplateError(f"unknown metric id {metric_id!r}; choose one of {list(METRICS)}")
    return metric_id


def _check_effect_scale(effect_scale, *, allow_zero: bool) -> float:
    try:
        value = float(effect_scale)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(effect_scale, bool) or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise TemplateError(f"effect_scale={effect_scale!r} must be a finite number {bound}; e.g. 1.0")
    return value


def _as_int(knob: str, value, low: int, high: int | None = None) -> int:
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer))
    if not ok or value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise TemplateError(f"{knob}={value!r} must be an integer {span}; use a whole number {span}")
    return int(value)


def _as_float(knob: str, value, check: Callable[[float], bool], need: str) -> float:
    """``need`` reads "<range>, e.g. <example>"; the message names the range, the fix the example."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or not check(number):
        span, _, example = need.partition(", e.g. ")
        raise TemplateError(f"{knob}={value!r} must be {span}; use a value like {example or span}")
    return number


def _check_knob(knob: str, value):
    """Return the knob's value in canonical form, or raise a TemplateError naming the allowed range."""
    if knob == "n_visitors":
        return _as_int(knob, value, 50)
    if knob == "n_nuisance":
        return _as_int(knob, value, 0, 1000)
    if knob == "n_clusters":
        return _as_int(knob, value, 2, MAX_CLUSTERS)
    if knob in ("treatment_allocation", "baseline_rate"):
        return _as_float(knob, value, lambda v: 0 < v < 1, "strictly between 0 and 1, e.g. 0.5")
    if knob == "benefit_prevalence":
        return _as_float(knob, value, lambda v: 0 < v <= 1, "in (0, 1], e.g. 0.15")
    if knob == "severity_sigma":
        return _as_float(knob, value, lambda v: v > 0, "a finite number > 0, e.g. 0.5")
    if knob == "revenue_model":
        if value not in REVENUE_MODELS:
            raise TemplateError(f"revenue_model={value!r} is unknown; choose one of {list(REVENUE_MODELS)}")
        return value
    if knob == "driver":
        return driver_info(value).name
    raise TemplateError(f"unknown knob {knob!r}; the knobs are {sorted(_all_knobs())}")


def _all_knobs() -> set[str]:
    return set(COMMON_KNOBS) | {k for extra in TEMPLATE_KNOB_DEFAULTS.values() for k in extra}


def _check_template(template) -> str:
    if template not in TEMPLATE_KNOB_DEFAULTS:
        raise TemplateError(f"unknown template {template!r}; choose one of {list(TEMPLATE_KNOB_DEFAULTS)}")
    return template


def template_knobs(template: str) -> tuple[str, ...]:
    """The knobs a template accepts: the common ones, then its own.

    ``severity_sigma`` and ``revenue_model`` are accepted everywhere but only change hurdle metrics."""
    return COMMON_KNOBS + tuple(TEMPLATE_KNOB_DEFAULTS[_check_template(template)])


def _template_defaults(template: str) -> dict[str, object]:
    return {**{k: KNOB_DEFAULTS[k] for k in COMMON_KNOBS}, **TEMPLATE_KNOB_DEFAULTS[template]}


# ---------------------------------------------------------------------------------------------------------------
# Templates


def _cluster_profiles(n_clusters: int, lift: float) -> tuple[ClusterProfile, ...]:
    """Fixed latent types for ``n_clusters`` (the same on every seed): commoner types have a higher baseline and
    a smaller, eventually negative, lift, so baseline and effect are confounded through the latent type."""
    rng = np.random.default_rng([n_clusters, 7919])
    weights = np.arange(n_clusters, 0, -1, dtype=float) + 1.0
    weights /= weights.sum()
    centres = rng.standard_normal((n_clusters, len(CONTINUOUS_FEATURES)))
    centres -= weights @ centres
    centres /= np.sqrt(weights @ centres**2)
    lift_pattern = np.linspace(-0.5, 1.5, n_clusters)
    baseline = np.linspace(0.6, -0.6, n_clusters)
    severity = np.linspace(-0.3, 0.3, n_clusters)
    return tuple(
        ClusterProfile(
            weight=float(weights[k]),
            centre=tuple(float(c) for c in centres[k]),
            baseline_shift=float(baseline[k]),
            severity_shift=float(severity[k]),
            lift=float(lift * lift_pattern[k]),
        )
        for k in range(n_clusters)
    )


def _drivers_of(template: str, knobs: dict) -> tuple[str, ...]:
    if template == "constant":
        return ()
    if template in ("reversal", "monotone_gradient"):
        return (knobs["driver"],)
    if template == "sparse_benefit":
        driver = knobs["driver"]
        return (driver,) if FEATURES[driver].is_continuous else (driver, SPARSE_REFERENCE)
    if template == "nonlinear":
        return NONLINEAR_DRIVERS
    if template == "interaction_only":
        return INTERACTION_DRIVERS
    return CONTINUOUS_FEATURES  # clustered: the continuous features are windows onto the latent type


def _run_template(template: str, metric_id, effect_scale, seed, knobs: dict) -> tuple[GeneratorConfig, dict]:
    metric_id = _check_metric(metric_id)
    effect_scale = _check_effect_scale(effect_scale, allow_zero=True)
    seed = _check_seed(seed)
    accepted = template_knobs(template)
    unknown = [k for k in knobs if k not in accepted]
    if unknown:
        raise TemplateError(f"template {template!r} has no knob {unknown[0]!r}; its knobs are {list(accepted)}")
    values = {k: _check_knob(k, v) for k, v in {**_template_defaults(template), **knobs}.items()}
    family = METRICS[metric_id]
    lift = LIFT_SIZES[template] * effect_scale
    drivers = _drivers_of(template, values)
    config = GeneratorConfig(
        seed=seed,
        metric_id=metric_id,
        family=family,
        surface=template,
        effect_scale=effect_scale,
        lift=lift,
        n_visitors=values["n_visitors"],
        treatment_allocation=values["treatment_allocation"],
        baseline_rate=values["baseline_rate"],
        severity_sigma=values["severity_sigma"],
        n_nuisance=values["n_nuisance"],
        revenue_model=values["revenue_model"],
        drivers=drivers,
        benefit_prevalence=values.get("benefit_prevalence", KNOB_DEFAULTS["benefit_prevalence"]),
        clusters=_cluster_profiles(values["n_clusters"], lift) if template == "clustered" else (),
    )
    metadata = {
        "scenario_class": template,
        "metric_id": metric_id,
        "family": family,
        "effect_scale": effect_scale,
        "seed": seed,
        **values,
        "drivers": drivers,
        "driver_kinds": tuple(sorted({FEATURES[d].kind for d in drivers})),
    }
    return config, metadata


_TEMPLATE_DOCS = {
    "constant": "The same relative lift for every visitor.",
    "reversal": "The lift flips sign with the driver: above vs below its mean, or its rarest level vs the rest.",
    "sparse_benefit": "Only a benefit_prevalence share of visitors, picked by the driver, gain; the rest get none.",
    "nonlinear": "A smooth nonlinear lift in tenure and engagement: a sine of one plus a bump in the other.",
    "monotone_gradient": "The lift rises monotonically with the driver (levels in order for a categorical one).",
    "interaction_only": "The lift is the product of engagement and recency; neither alone carries any effect.",
    "clustered": "Latent visitor types set baseline and lift; continuous features are noisy views of the type.",
}


def _make_template(name: str) -> Callable[..., tuple[GeneratorConfig, dict]]:
    def template(metric_id: str, effect_scale: float, *, seed: int, **knobs) -> tuple[GeneratorConfig, dict]:
        return _run_template(name, metric_id, effect_scale, seed, knobs)

    template.__name__ = template.__qualname__ = f"template_{name}"
    template.__doc__ = (
        f"{_TEMPLATE_DOCS[name]}\n\nReturns the generator config and its metadata "
        "(scenario_class, metric_id, family, effect_scale, seed, every knob, drivers, driver_kinds)."
    )
    return template


TEMPLATES: dict[str, Callable[..., tuple[GeneratorConfig, dict]]] = {
    name: _make_template(name) for name in TEMPLATE_KNOB_DEFAULTS
}


# ---------------------------------------------------------------------------------------------------------------
# Generation


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _upper_threshold(share: float) -> float:
    """The latent value a standard normal exceeds with probability ``share``."""
    if share >= 1:
        return -math.inf
    if share <= 0:
        return math.inf
    return NormalDist().inv_cdf(1.0 - share)


def _calibrated_probability(score: np.ndarray, target: float) -> np.ndarray:
    """``expit(a + score)`` with the intercept ``a`` chosen so its mean is ``target`` (Newton, kept bracketed)."""
    low, high = -60.0, 60.0
    a = math.log(target / (1 - target)) - float(np.mean(score))
    for _ in range(60):
        p = _expit(a + score)
        gap = float(p.mean()) - target
        if abs(gap) < 1e-12:
            break
        if gap > 0:
            high = a
        else:
            low = a
        slope = float(np.mean(p * (1 - p)))
        step = a - gap / slope if slope > 0 else math.nan
        a = step if low < step < high else (low + high) / 2
    return _expit(a + score)


def _level_codes(rng: np.random.Generator, spec: FeatureSpec, n: int) -> np.ndarray:
    cumulative = np.cumsum(spec.probs)
    return np.minimum(np.searchsorted(cumulative, rng.random(n), side="right"), len(spec.levels) - 1)


def _level_effects(codes: dict[str, np.ndarray], table: dict[str, dict], n: int) -> np.ndarray:
    total = np.zeros(n)
    for name, by_level in table.items():
        per_level = np.array([by_level.get(level, 0.0) for level in FEATURES[name].levels])
        total += per_level[codes[name]]
    return total


def _lift(config: GeneratorConfig, latent: dict[str, np.ndarray], codes: dict[str, np.ndarray],
          cluster: np.ndarray | None, n: int) -> np.ndarray:
    """The relative lift of every visitor, before the floor at -1."""
    surface, size = config.surface, config.lift
    if surface == "constant":
        return np.full(n, size)
    if surface == "clustered":
        return np.array([c.lift for c in config.clusters])[cluster]
    if surface == "nonlinear":
        a, b = (latent[d] for d in NONLINEAR_DRIVERS)
        return size * (np.sin(2.0 * a) + 1.5 * np.exp(-(b**2)) - 0.5)
    if surface == "interaction_only":
        a, b = (latent[d] for d in INTERACTION_DRIVERS)
        return size * a * b
    driver = config.drivers[0]
    spec = FEATURES[driver]
    if surface == "reversal":
        if spec.is_continuous:
            x = spec.loc + spec.scale * latent[driver]
            if spec.distribution == "lognormal":
                x = np.exp(x)
            return np.where(x > spec.mean, size, -size)
        return np.where(codes[driver] == len(spec.levels) - 1, size, -size)
    if surface == "monotone_gradient":
        if spec.is_continuous:
            return size * 2.0 * _expit(1.7 * latent[driver])
        return size * 2.0 * codes[driver] / (len(spec.levels) - 1)
    # sparse_benefit: the top benefit_prevalence share of visitors by driver (then reference feature) gain.
    share = config.benefit_prevalence
    if spec.is_continuous:
        benefit = latent[driver] > _upper_threshold(share)
    else:
        in_level = codes[driver] == len(spec.levels) - 1
        level_share = spec.probs[-1]
        reference = latent[SPARSE_REFERENCE]
        if share <= level_share:
            benefit = in_level & (reference > _upper_threshold(share / level_share))
        else:
            benefit = in_level | (reference > _upper_threshold((share - level_share) / (1 - level_share)))
    return np.where(benefit, size, 0.0)


def _order_values(rng: np.random.Generator, config: GeneratorConfig, mean: np.ndarray) -> np.ndarray:
    sigma = config.severity_sigma
    if config.revenue_model == "lognormal":
        return mean * np.exp(sigma * rng.standard_normal(mean.shape[0]) - sigma**2 / 2)
    cv2 = math.expm1(sigma**2)  # gamma with the lognormal's mean and coefficient of variation
    return rng.gamma(1.0 / cv2, mean * cv2)


def generate(config: GeneratorConfig) -> Dataset:
    """Draw one dataset from ``config``; deterministic in ``config.seed`` and the scenario, fully
    vectorised. Scenarios never share random draws, even with the same seed (``config.stream``)."""
    rng = np.random.default_rng([config.seed, config.stream, 20261])
    n = config.n_visitors
    n_cont = len(CONTINUOUS_FEATURES)

    cluster = None
    latent_matrix = rng.standard_normal((n, n_cont))
    if config.clusters:
        weights = np.array([c.weight for c in config.clusters])
        cluster = np.minimum(
            np.searchsorted(np.cumsum(weights) / weights.sum(), rng.random(n), side="right"), len(weights) - 1
        )
        centres = np.array([c.centre for c in config.clusters])
        latent_matrix = (
            math.sqrt(CLUSTER_SEPARATION) * centres[cluster] + math.sqrt(1 - CLUSTER_SEPARATION) * latent_matrix
        )
    latent = {name: latent_matrix[:, j] for j, name in enumerate(CONTINUOUS_FEATURES)}
    codes = {name: _level_codes(rng, FEATURES[name], n) for name in CATEGORICAL_FEATURES}
    nuisance = rng.standard_normal((n, config.n_nuisance))
    treatment = (rng.random(n) < config.treatment_allocation).astype(np.int8)
    conversion_draw = rng.random(n)

    columns, names = [], []
    for name, spec in FEATURES.items():
        if spec.is_continuous:
            values = spec.loc + spec.scale * latent[name]
            columns.append(np.exp(values) if spec.distribution == "lognormal" else values)
        else:
            columns.append((codes[name][:, None] == np.arange(len(spec.levels))[None, :]).astype(float))
        names.extend(spec.column_names())
    columns.append(nuisance)
    names.extend(f"noise_{j}" for j in range(config.n_nuisance))
    features = np.column_stack([c.reshape(n, -1) for c in columns]).astype(np.float64)

    score = sum(w * latent[f] for f, w in PROGNOSTIC_LOGIT.items()) + _level_effects(codes, PROGNOSTIC_LOGIT_LEVELS, n)
    if cluster is not None:
        score = score + np.array([c.baseline_shift for c in config.clusters])[cluster]
    p0 = _calibrated_probability(score, config.baseline_rate)
    lift = np.maximum(_lift(config, latent, codes, cluster, n), -1.0)
    p1 = np.minimum(p0 * (1.0 + lift), 1.0)
    converted = conversion_draw < np.where(treatment == 1, p1, p0)

    if config.family == "binary":
        outcome = converted.astype(np.float64)
        true_effect, expected_control = p1 - p0, p0
    else:
        log_m = sum(w * latent[f] for f, w in PROGNOSTIC_LOG_SEVERITY.items()) + _level_effects(
            codes, PROGNOSTIC_LOG_SEVERITY_LEVELS, n
        )
        if cluster is not None:
            log_m = log_m + np.array([c.severity_shift for c in config.clusters])[cluster]
        m0 = np.exp(log_m)
        m0 *= REVENUE_MEAN / m0.mean()
        m1 = m0 * (1.0 + SEVERITY_SHARE * lift)
        order_value = _order_values(rng, config, np.where(treatment == 1, m1, m0))
        outcome = np.where(converted, order_value, 0.0)
        true_effect, expected_control = p1 * m1 - p0 * m0, p0 * m0

    return Dataset(
        features=features,
        feature_names=tuple(names),
        treatment=treatment,
        outcome=outcome,
        true_effect=true_effect,
        metric_id=config.metric_id,
        family=config.family,
        expected_control=expected_control,
        cluster=cluster,
    )


# ---------------------------------------------------------------------------------------------------------------
# Catalog


@dataclass(frozen=True)
class CatalogEntry:
    """One scenario of a catalog: a template and its arguments, all but the seed.

    ``axis`` is "effect_scale" for the core grid and otherwise the knob this entry varies; ``centre`` marks the
    entry at the default effect scale with every knob at its default, the point every star sweep passes through.
    """

    entry_id: str
    template: str
    kwargs: dict
    axis: str
    axis_value: object
    centre: bool = False

    def build(self, seed: int) -> tuple[GeneratorConfig, dict]:
        return TEMPLATES[self.template](seed=seed, **self.kwargs)


_ID_SAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_ID_LENGTH = 60


def _format_value(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _ID_SAFE.sub("-", str(value))


def _entry_id(template: str, metric_id: str, axis: str, value) -> str:
    prefix = f"{template}.{METRIC_ABBREVIATIONS[metric_id]}.{axis}_"
    entry_id = prefix + _format_value(value)
    if len(entry_id) > MAX_ID_LENGTH:
        entry_id = prefix + hashlib.sha1(repr(value).encode()).hexdigest()[:8]
    return entry_id


def _check_grid(knob: str, grid) -> list:
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Iterable):
        raise TemplateError(f"the grid for {knob} must be a list of values, got {grid!r}")
    grid = list(grid)
    if not grid:
        fix = "give at least one value, e.g. [1.0]" if knob == "effect_scale" else \
            f"give at least one value or leave {knob} out"
        raise TemplateError(f"the grid for {knob} is empty; {fix}")
    return grid


def _entry_kinds(entry: CatalogEntry) -> tuple[str, ...]:
    return entry.build(seed=0)[1]["driver_kinds"]


def check_coverage(entries) -> None:
    """Refuse a catalog unless every metric family in it has an entry whose effect depends on a continuous driver
    and one whose effect depends on a categorical driver."""
    found: dict[str, set[str]] = {}
    for entry in entries:
        family = METRICS[entry.kwargs["metric_id"]]
        found.setdefault(family, set()).update(_entry_kinds(entry))
    advice = {
        "categorical": "add categorical_driver: is_returning, or a reversal entry with driver: device",
        "continuous": "add a nonlinear, monotone_gradient, interaction_only or clustered entry, "
        "or a reversal entry with driver: engagement_score",
    }
    problems = [
        f"family {family!r} has no entry whose effect depends on a {kind} driver ({advice[kind]})"
        for family in sorted(found)
        for kind in ("continuous", "categorical")
        if kind not in found[family]
    ]
    if problems:
        raise CoverageError("coverage gate: " + ", and ".join(problems))


def build_catalog(
    *,
    templates=None,
    metric_ids=None,
    effect_scale_grid,
    knob_grids: dict[str, list] | None = None,
    defaults: dict | None = None,
    default_effect_scale: float = 1.0,
    categorical_driver: str | None = None,
) -> list[CatalogEntry]:
    """A star-sweep catalog, checked by :func:`check_coverage`.

    The core grid crosses ``templates`` x ``metric_ids`` x ``effect_scale_grid`` with every knob at its default
    (``defaults`` overrides :data:`KNOB_DEFAULTS` and the template-specific defaults). Each grid in ``knob_grids``
    then varies one knob around its default at ``default_effect_scale``, for the templates that accept that knob
    and the metric families it matters for; entries identical to one already listed are skipped.
    ``categorical_driver`` adds a reversal entry with that driver for each metric family.
    """
    templates = list(TEMPLATE_KNOB_DEFAULTS) if templates is None else [_check_template(t) for t in templates]
    metric_ids = list(METRICS) if metric_ids is None else [_check_metric(m) for m in metric_ids]
    if not templates or not metric_ids:
        raise TemplateError("templates and metric_ids must not be empty; leave them out to use them all")
    scales = [_check_effect_scale(s, allow_zero=False) for s in _check_grid("effect_scale", effect_scale_grid)]
    centre_scale = _check_effect_scale(default_effect_scale, allow_zero=False)
    overrides = {k: _check_knob(k, v) for k, v in (defaults or {}).items()}
    grids = {k: [_check_knob(k, v) for v in _check_grid(k, grid)] for k, grid in (knob_grids or {}).items()}
    if categorical_driver is not None and driver_info(categorical_driver).kind != "categorical":
        raise TemplateError(
            f"categorical_driver {categorical_driver!r} is continuous; choose one of {list(CATEGORICAL_FEATURES)}"
        )

    entries: list[CatalogEntry] = []
    seen: set = set()

    def centre_kwargs(template: str, metric_id: str) -> dict:
        knobs = _template_defaults(template)
        knobs.update({k: v for k, v in overrides.items() if k in knobs})
        return {"metric_id": metric_id, "effect_scale": centre_scale, **knobs}

    def add(template: str, kwargs: dict, axis: str, value) -> None:
        key = (template, tuple(sorted(kwargs.items(), key=lambda item: item[0])))
        if key in seen:
            return
        seen.add(key)
        centre = kwargs == centre_kwargs(template, kwargs["metric_id"])
        entry_id = _entry_id(template, kwargs["metric_id"], axis, value)
        entries.append(CatalogEntry(entry_id, template, kwargs, axis, value, centre))

    for template in templates:
        for metric_id in metric_ids:
            for scale in scales:
                add(template, {**centre_kwargs(template, metric_id), "effect_scale": scale}, "effect_scale", scale)
    for knob, grid in grids.items():
        for template in templates:
            if knob not in template_knobs(template):
                continue
            for metric_id in metric_ids:
                if METRICS[metric_id] not in KNOB_FAMILIES.get(knob, (METRICS[metric_id],)):
                    continue
                for value in grid:
                    add(template, {**centre_kwargs(template, metric_id), knob: value}, knob, value)
    if categorical_driver is not None:
        first_of_family = {}
        for metric_id in metric_ids:
            first_of_family.setdefault(METRICS[metric_id], metric_id)
        for metric_id in first_of_family.values():
            add("reversal", {**centre_kwargs("reversal", metric_id), "driver": categorical_driver},
                "driver", categorical_driver)

    ids = [e.entry_id for e in entries]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise TemplateError(f"two catalog entries share the id {duplicate!r}; remove near-duplicate grid values")
    check_coverage(entries)
    return entries


# Profiles run at 10,000 visitors per A/B test and a 10 % baseline conversion: at the package
# defaults (2,000 visitors, 5 %) the individual effects drown in the outcome's noise and every
# learner scores worse than predicting no effect, which the `n_visitors` and `baseline_rate`
# sweeps still show.
PROFILE_DEFAULTS = {"n_visitors": 10_000, "baseline_rate": 0.1}
PROFILES: dict[str, dict] = {
    # A smoke test: seconds.
    "validate": {
        "templates": ["constant", "reversal", "nonlinear"],
        "effect_scale_grid": [1.0],
        "defaults": PROFILE_DEFAULTS,
        "categorical_driver": "is_returning",
    },
    # Every template, three effect sizes, and where estimators break as the data shrink or grow,
    # the baseline moves, benefits get rarer and revenue gets noisier: minutes.
    "standard": {
        "effect_scale_grid": [0.5, 1.0, 2.0],
        "knob_grids": {
            "n_visitors": [2000, 40_000],
            "baseline_rate": [0.03, 0.3],
            "benefit_prevalence": [0.05, 0.3],
            "severity_sigma": [0.25, 1.0],
        },
        "defaults": PROFILE_DEFAULTS,
        "categorical_driver": "is_returning",
    },
    # Every knob swept, wider: an hour or more.
    "thorough": {
        "effect_scale_grid": [0.25, 0.5, 1.0, 2.0, 4.0],
        "knob_grids": {
            "n_visitors": [1000, 2000, 40_000, 100_000],
            "treatment_allocation": [0.2, 0.8],
            "baseline_rate": [0.02, 0.05, 0.3],
            "n_nuisance": [0, 20],
            "benefit_prevalence": [0.05, 0.3, 0.6],
            "severity_sigma": [0.25, 1.0, 1.5],
            "revenue_model": ["gamma"],
            "n_clusters": [2, 5],
            "driver": ["device", "is_returning", "tenure_months"],
        },
        "defaults": PROFILE_DEFAULTS,
        "categorical_driver": "is_returning",
    },
}


def profile_catalog(name: str) -> list[CatalogEntry]:
    """The catalog of a named profile."""
    if name not in PROFILES:
        raise TemplateError(f"unknown profile {name!r}; choose one of {list(PROFILES)}")
    return build_catalog(**PROFILES[name])
