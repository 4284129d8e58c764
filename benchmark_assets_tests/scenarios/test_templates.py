import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark_assets.scenarios.templates import (
    FEATURES,
    KNOB_DEFAULTS,
    METRICS,
    PROFILES,
    REVENUE_MODELS,
    TEMPLATES,
    CatalogEntry,
    CoverageError,
    Dataset,
    GeneratorConfig,
    TemplateError,
    build_catalog,
    check_coverage,
    driver_info,
    generate,
    profile_catalog,
    template_knobs,
)

ALL_CASES = [(t, m) for t in TEMPLATES for m in METRICS]
ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,60}$")


def make(template, metric_id="conversion_rate", effect_scale=1.0, seed=0, **knobs) -> Dataset:
    config, _ = TEMPLATES[template](metric_id, effect_scale, seed=seed, **knobs)
    return generate(config)


def column(data: Dataset, name: str) -> np.ndarray:
    return data.features[:, data.feature_names.index(name)]


def latent(data: Dataset, name: str) -> np.ndarray:
    """The latent standard normal behind a continuous feature of the default schema."""
    spec = FEATURES[name]
    x = column(data, name)
    return ((np.log(x) if spec.distribution == "lognormal" else x) - spec.loc) / spec.scale


def arm_difference(data: Dataset) -> tuple[float, float]:
    treated, control = data.outcome[data.treatment == 1], data.outcome[data.treatment == 0]
    se = math.sqrt(treated.var(ddof=1) / treated.size + control.var(ddof=1) / control.size)
    return float(treated.mean() - control.mean()), se


# --------------------------------------------------------------------------------------------------- generation


def test_the_template_registry_is_exactly_the_seven_shapes():
    assert set(TEMPLATES) == {
        "constant", "reversal", "sparse_benefit", "nonlinear", "monotone_gradient", "interaction_only", "clustered",
    }
    assert METRICS == {"conversion_rate": "binary", "revenue_per_visitor": "hurdle"}
    assert KNOB_DEFAULTS == {
        "n_visitors": 2000, "treatment_allocation": 0.5, "baseline_rate": 0.05, "severity_sigma": 0.5,
        "n_nuisance": 5, "benefit_prevalence": 0.15, "revenue_model": "lognormal",
    }
    assert REVENUE_MODELS == ("lognormal", "gamma")


@pytest.mark.parametrize(("template", "metric_id"), ALL_CASES)
def test_every_template_and_metric_generates_well_formed_data(template, metric_id):
    config, metadata = TEMPLATES[template](metric_id, 1.0, seed=11, n_visitors=3000, n_nuisance=3)
    data = generate(config)
    n, p = 3000, 4 + 3 + 2 + 3
    assert data.features.shape == (n, p) and data.features.dtype == np.float64
    assert len(data.feature_names) == p and data.feature_names[-3:] == ("noise_0", "noise_1", "noise_2")
    assert data.treatment.shape == (n,) and data.treatment.dtype == np.int8
    assert set(np.unique(data.treatment)) == {0, 1}
    for array in (data.outcome, data.true_effect, data.expected_control):
        assert array.shape == (n,) and array.dtype == np.float64 and np.all(np.isfinite(array))
    assert np.all(np.isfinite(data.features))
    assert data.metric_id == metric_id and data.family == METRICS[metric_id]
    assert np.any(data.true_effect != 0), "a positive effect_scale must give a non-zero effect somewhere"
    assert data.true_ate == pytest.approx(float(data.true_effect.mean()))
    if data.family == "binary":
        assert set(np.unique(data.outcome)) <= {0.0, 1.0}
        assert np.all(np.abs(data.true_effect) <= 1)
    else:
        assert np.all(data.outcome >= 0) and np.any(data.outcome > 0)
        assert np.mean(data.outcome > 0) < 0.2  # a hurdle: most visitors buy nothing
    assert metadata["scenario_class"] == template and metadata["family"] == METRICS[metric_id]
    assert metadata["seed"] == 11 and metadata["effect_scale"] == 1.0
    assert metadata["n_visitors"] == 3000 and metadata["n_nuisance"] == 3
    for knob in template_knobs(template):
        assert knob in metadata
    assert metadata["driver_kinds"] == tuple(sorted(set(metadata["driver_kinds"])))


def test_one_hot_columns_keep_every_level_and_sum_to_one():
    data = make("constant", n_visitors=40_000)
    for name in ("device", "is_returning"):
        spec = FEATURES[name]
        block = np.column_stack([column(data, f"{name}={level}") for level in spec.levels])
        assert set(np.unique(block)) == {0.0, 1.0}
        np.testing.assert_array_equal(block.sum(axis=1), 1.0)
        np.testing.assert_allclose(block.mean(axis=0), spec.probs, atol=0.01)


def test_continuous_features_match_their_driver_info():
    data = make("constant", n_visitors=200_000)
    for name in ("tenure_months", "sessions_per_week", "engagement_score", "days_since_last_visit"):
        info, x = driver_info(name), column(data, name)
        assert info.kind == "continuous" and info.levels is None
        assert x.mean() == pytest.approx(info.mean, rel=0.02)
        assert x.std() == pytest.approx(info.std, rel=0.05)


def test_driver_info_describes_categorical_features_and_refuses_unknown_names():
    assert driver_info("device").kind == "categorical"
    assert driver_info("device").levels == ("mobile", "desktop", "tablet")
    assert driver_info("is_returning").kind == "categorical"  # binary counts as categorical
    assert driver_info("is_returning").levels == (False, True)
    with pytest.raises(TemplateError, match="unknown driver feature 'age'; choose one of"):
        driver_info("age")


@pytest.mark.parametrize(("template", "metric_id"), ALL_CASES)
def test_difference_in_means_matches_the_true_ate_on_a_large_sample(template, metric_id):
    data = make(template, metric_id, effect_scale=2.0, seed=5, n_visitors=200_000)
    difference, se = arm_difference(data)
    assert abs(difference - data.true_ate) < 4.5 * se, (difference, data.true_ate, se)


@pytest.mark.parametrize("metric_id", list(METRICS))
@pytest.mark.parametrize("revenue_model", REVENUE_MODELS)
def test_control_mean_matches_the_implied_mean(metric_id, revenue_model):
    data = make("nonlinear", metric_id, seed=9, n_visitors=200_000, baseline_rate=0.1, revenue_model=revenue_model)
    control = data.treatment == 0
    observed, implied = data.outcome[control].mean(), data.expected_control[control].mean()
    se = data.outcome[control].std() / math.sqrt(control.sum())
    assert abs(observed - implied) < 4.5 * se
    if metric_id == "conversion_rate":
        # The intercept is solved so the dataset's mean baseline conversion is exactly baseline_rate ...
        assert data.expected_control.mean() == pytest.approx(0.1, abs=1e-9)
        # ... and the baseline depends on features, so outcomes are not a constant coin flip.
        assert data.expected_control.std() > 0.02


def test_lognormal_and_gamma_order_values_share_mean_and_spread():
    sigma = 0.8
    stats = {}
    for model in REVENUE_MODELS:
        data = make("constant", "revenue_per_visitor", seed=2, n_visitors=400_000, baseline_rate=0.5,
                    severity_sigma=sigma, revenue_model=model)
        bought = (data.outcome > 0) & (data.treatment == 0)
        stats[model] = data.outcome[bought]
    target_cv = math.sqrt(math.expm1(sigma**2))
    assert stats["lognormal"].mean() == pytest.approx(stats["gamma"].mean(), rel=0.02)
    for values in stats.values():
        # Spread mixes the chosen noise with the feature-driven mean, so it is at least the target CV.
        assert target_cv * 0.98 < values.std() / values.mean() < target_cv * 1.25


def test_treatment_is_randomised_at_the_requested_allocation_and_independent_of_features():
    data = make("constant", n_visitors=100_000, treatment_allocation=0.2)
    assert data.treatment.mean() == pytest.approx(0.2, abs=0.005)
    for j in range(data.features.shape[1]):
        assert abs(np.corrcoef(data.features[:, j], data.treatment)[0, 1]) < 0.015


def test_nuisance_features_are_pure_noise():
    data = make("monotone_gradient", n_visitors=100_000, n_nuisance=4)
    for j in range(4):
        noise = column(data, f"noise_{j}")
        assert noise.mean() == pytest.approx(0.0, abs=0.02) and noise.std() == pytest.approx(1.0, abs=0.02)
        assert abs(np.corrcoef(noise, data.true_effect)[0, 1]) < 0.015
    assert make("constant", n_nuisance=0).features.shape[1] == 9


def test_constant_gives_the_same_relative_lift_everywhere_and_scales_linearly():
    once, twice = make("constant", effect_scale=1.0, seed=4), make("constant", effect_scale=2.0, seed=4)
    lift = once.true_effect / once.expected_control
    np.testing.assert_allclose(lift, 0.2)
    # Each scenario draws its own sample (no shared draws across entries), so compare the lifts.
    np.testing.assert_allclose(twice.true_effect / twice.expected_control, 0.4)
    assert not np.array_equal(once.features, twice.features)


def test_effect_scale_zero_is_an_a_a_test():
    assert np.all(make("reversal", effect_scale=0.0).true_effect == 0)


@pytest.mark.parametrize("driver", ["engagement_score", "tenure_months"])
def test_reversal_flips_sign_at_the_mean_of_a_continuous_driver(driver):
    data = make("reversal", n_visitors=20_000, driver=driver)
    above = column(data, driver) > driver_info(driver).mean
    assert np.all(data.true_effect[above] > 0) and np.all(data.true_effect[~above] < 0)
    assert 0.2 < above.mean() < 0.8


@pytest.mark.parametrize("metric_id", list(METRICS))
def test_reversal_on_a_categorical_driver_helps_one_level_and_hurts_the_others(metric_id):
    data = make("reversal", metric_id, n_visitors=20_000, driver="device")
    tablet = column(data, "device=tablet") == 1
    assert np.all(data.true_effect[tablet] > 0) and np.all(data.true_effect[~tablet] < 0)


@settings(max_examples=25, deadline=None)
@given(
    prevalence=st.floats(0.03, 1.0),
    driver=st.sampled_from(list(FEATURES)),
    metric_id=st.sampled_from(list(METRICS)),
)
def test_sparse_benefit_helps_about_benefit_prevalence_of_visitors(prevalence, driver, metric_id):
    data = make("sparse_benefit", metric_id, n_visitors=30_000, benefit_prevalence=prevalence, driver=driver)
    positive = data.true_effect > 0
    assert positive.mean() == pytest.approx(prevalence, abs=0.02)
    assert np.all(data.true_effect[~positive] == 0)


def test_sparse_benefit_is_chosen_by_the_driver_so_it_can_be_learned():
    data = make("sparse_benefit", n_visitors=20_000, driver="sessions_per_week", benefit_prevalence=0.2)
    sessions, positive = column(data, "sessions_per_week"), data.true_effect > 0
    assert sessions[positive].min() > sessions[~positive].max()


@pytest.mark.parametrize("metric_id", list(METRICS))
def test_interaction_only_has_no_marginal_effect_of_either_driver(metric_id):
    data = make("interaction_only", metric_id, seed=3, n_visitors=200_000)
    u_a, u_b = latent(data, "engagement_score"), latent(data, "days_since_last_visit")

    def corr(x):
        return abs(np.corrcoef(x, data.true_effect)[0, 1])

    assert corr(u_a) < 0.02 and corr(u_b) < 0.02
    assert corr(column(data, "engagement_score")) < 0.06 and corr(column(data, "days_since_last_visit")) < 0.06
    assert corr(u_a * u_b) > 0.7
    centred = [column(data, d) - driver_info(d).mean for d in ("engagement_score", "days_since_last_visit")]
    assert corr(centred[0] * centred[1]) > 0.5


@pytest.mark.parametrize("metric_id", list(METRICS))
def test_monotone_gradient_rises_with_its_driver(metric_id):
    data = make("monotone_gradient", metric_id, n_visitors=50_000, driver="engagement_score")
    order = np.argsort(column(data, "engagement_score"))
    relative = (data.true_effect / data.expected_control)[order]
    assert np.all(np.diff(relative) >= -1e-12)  # holding the baseline fixed, strictly a function of the driver
    deciles = [chunk.mean() for chunk in np.array_split(data.true_effect[order], 10)]
    assert np.all(np.diff(deciles) > 0)


def test_monotone_gradient_on_a_binary_driver_is_higher_for_the_second_level():
    data = make("monotone_gradient", n_visitors=20_000, driver="is_returning")
    returning = column(data, "is_returning=True") == 1
    relative = data.true_effect / data.expected_control
    assert np.all(relative[returning] > relative[~returning].max())


def test_nonlinear_effect_is_a_function_of_two_drivers_that_a_line_misses():
    data = make("nonlinear", n_visitors=50_000)
    relative = data.true_effect / data.expected_control
    u = np.column_stack([latent(data, "tenure_months"), latent(data, "engagement_score")])
    linear = np.column_stack([np.ones(len(u)), u])
    smooth = np.column_stack([linear, np.sin(2 * u[:, 0]), np.exp(-u[:, 1] ** 2)])
    for basis, low, high in ((linear, 0.0, 0.5), (smooth, 0.999, 1.0)):
        coef, *_ = np.linalg.lstsq(basis, relative, rcond=None)
        r2 = 1 - np.var(relative - basis @ coef) / np.var(relative)
        assert low <= r2 <= high


@pytest.mark.parametrize("metric_id", list(METRICS))
def test_clustered_hides_the_cluster_but_features_predict_the_effect(metric_id):
    data = make("clustered", metric_id, seed=3, n_visitors=20_000)
    assert data.cluster is not None and len(np.unique(data.cluster)) == 3
    indicators = np.eye(3)[data.cluster]
    for j in range(data.features.shape[1]):
        for k in range(3):
            assert not np.array_equal(data.features[:, j], indicators[:, k])
        assert not np.array_equal(data.features[:, j], data.cluster.astype(float))
    # Cluster means of the effect differ, and a quadratic in the continuous features recovers most of it.
    by_cluster = [data.true_effect[data.cluster == k].mean() for k in range(3)]
    assert max(by_cluster) - min(by_cluster) > 0.5 * data.true_effect.std()
    z = data.features[:, :4]
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    pairs = [z[:, i] * z[:, j] for i in range(4) for j in range(i + 1, 4)]
    basis = np.column_stack([np.ones(len(z)), z, z**2, *pairs])
    coef, *_ = np.linalg.lstsq(basis, data.true_effect, rcond=None)
    assert 1 - np.var(data.true_effect - basis @ coef) / np.var(data.true_effect) > 0.5


def test_cluster_design_does_not_depend_on_the_seed():
    first, _ = TEMPLATES["clustered"]("conversion_rate", 1.0, seed=1, n_clusters=4)
    second, _ = TEMPLATES["clustered"]("conversion_rate", 1.0, seed=2, n_clusters=4)
    assert first.clusters == second.clusters and len(first.clusters) == 4
    assert sum(c.weight for c in first.clusters) == pytest.approx(1.0)


@pytest.mark.parametrize(("template", "metric_id"), ALL_CASES[::3])
def test_same_seed_same_data_other_seed_other_data(template, metric_id):
    kwargs = {"metric_id": metric_id, "effect_scale": 1.0, "n_visitors": 500}
    entry = CatalogEntry(f"{template}.x", template, kwargs, "effect_scale", 1.0)
    (config_a, meta_a), (config_b, meta_b) = entry.build(7), entry.build(7)
    assert config_a == config_b and meta_a == meta_b
    a, b, other = generate(config_a), generate(config_b), generate(entry.build(8)[0])
    for field in ("features", "treatment", "outcome", "true_effect"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.features, other.features)
    assert not np.array_equal(a.outcome, other.outcome)


@settings(max_examples=30, deadline=None)
@given(
    template=st.sampled_from(list(TEMPLATES)),
    metric_id=st.sampled_from(list(METRICS)),
    effect_scale=st.floats(0.01, 6.0),
    allocation=st.floats(0.05, 0.95),
    baseline=st.floats(0.005, 0.95),
    sigma=st.floats(0.05, 2.0),
    seed=st.integers(0, 2**31),
)
def test_any_valid_knobs_give_finite_bounded_data(template, metric_id, effect_scale, allocation, baseline, sigma,
                                                  seed):
    data = make(template, metric_id, effect_scale, seed=seed, n_visitors=400, treatment_allocation=allocation,
                baseline_rate=baseline, severity_sigma=sigma)
    assert np.all(np.isfinite(data.outcome)) and np.all(np.isfinite(data.true_effect))
    assert np.all(data.expected_control >= 0)
    if data.family == "binary":
        p1 = data.expected_control + data.true_effect
        assert np.all((p1 >= -1e-12) & (p1 <= 1 + 1e-12))


def test_generating_a_hundred_thousand_rows_works():
    data = make("clustered", "revenue_per_visitor", n_visitors=100_000)
    assert data.n == 100_000


# --------------------------------------------------------------------------------------------------- knobs


def test_template_knobs_lists_the_common_knobs_and_each_templates_own():
    common = ("n_visitors", "treatment_allocation", "baseline_rate", "severity_sigma", "n_nuisance", "revenue_model")
    assert template_knobs("constant") == common
    assert template_knobs("reversal") == (*common, "driver")
    assert template_knobs("monotone_gradient") == (*common, "driver")
    assert set(template_knobs("sparse_benefit")) == {*common, "driver", "benefit_prevalence"}
    assert template_knobs("clustered") == (*common, "n_clusters")
    with pytest.raises(TemplateError, match="unknown template 'ramp'"):
        template_knobs("ramp")


def test_metadata_fills_defaults_and_names_driver_kinds():
    _, meta = TEMPLATES["sparse_benefit"]("revenue_per_visitor", 0.5, seed=3)
    assert meta["benefit_prevalence"] == 0.15 and meta["revenue_model"] == "lognormal"
    assert meta["n_visitors"] == 2000 and meta["driver_kinds"] == ("continuous",)
    assert TEMPLATES["constant"]("conversion_rate", 1.0, seed=0)[1]["driver_kinds"] == ()
    assert TEMPLATES["reversal"]("conversion_rate", 1.0, seed=0, driver="is_returning")[1]["driver_kinds"] == (
        "categorical",
    )
    kinds = TEMPLATES["sparse_benefit"]("conversion_rate", 1.0, seed=0, driver="device")[1]["driver_kinds"]
    assert kinds == ("categorical", "continuous")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: TEMPLATES["reversal"]("conversion_rate", 1.0, seed=0, prevalence=0.2),
         r"template 'reversal' has no knob 'prevalence'; its knobs are \["),
        (lambda: TEMPLATES["constant"]("conversion_rate", 1.0, seed=0, benefit_prevalence=0.2),
         "template 'constant' has no knob 'benefit_prevalence'"),
        (lambda: TEMPLATES["constant"]("ctr", 1.0, seed=0), "unknown metric id 'ctr'; choose one of"),
        (lambda: TEMPLATES["constant"]("conversion_rate", -1.0, seed=0), "effect_scale=-1.0 must be"),
        (lambda: TEMPLATES["constant"]("conversion_rate", 1.0, seed=-3), "seed=-3 must be a non-negative integer"),
        (lambda: TEMPLATES["reversal"]("conversion_rate", 1.0, seed=0, driver="age"),
         "unknown driver feature 'age'"),
        (lambda: TEMPLATES["clustered"]("conversion_rate", 1.0, seed=0, n_clusters=1), r"n_clusters=1 must be"),
        (lambda: GeneratorConfig(seed=0, metric_id="conversion_rate", family="hurdle", surface="constant",
                                 effect_scale=1.0, lift=0.2), "is of family 'binary'"),
    ],
)
def test_template_errors_are_one_line_and_say_what_to_do(call, message):
    with pytest.raises(TemplateError, match=message) as caught:
        call()
    assert "\n" not in str(caught.value)


# --------------------------------------------------------------------------------------------------- catalog


def test_star_sweep_counts_are_what_the_grids_imply():
    entries = build_catalog(
        templates=["constant", "sparse_benefit", "clustered"],
        effect_scale_grid=[0.5, 1.0],
        knob_grids={
            "n_visitors": [1000, 2000, 5000],  # 2000 is the default: that point is the core centre
            "severity_sigma": [0.25],  # hurdle only
            "benefit_prevalence": [0.3],  # sparse_benefit only
            "n_clusters": [3, 4],  # clustered only; 3 is its default
        },
        categorical_driver="device",
    )
    by_axis = {}
    for entry in entries:
        by_axis[entry.axis] = by_axis.get(entry.axis, 0) + 1
    assert by_axis == {
        "effect_scale": 3 * 2 * 2,
        "n_visitors": 3 * 2 * 2,
        "severity_sigma": 3 * 1 * 1,
        "benefit_prevalence": 1 * 2 * 1,
        "n_clusters": 1 * 2 * 1,
        "driver": 2,  # one reversal per metric family
    }
    assert len(entries) == 33
    assert {e.kwargs["metric_id"] for e in entries if e.axis == "severity_sigma"} == {"revenue_per_visitor"}
    assert sum(e.centre for e in entries) == 3 * 2  # one centre per template x metric


knob_grid_strategy = st.fixed_dictionaries(
    {},
    optional={
        "n_visitors": st.lists(st.sampled_from([100, 1000, 2000, 5000]), min_size=1, max_size=3, unique=True),
        "baseline_rate": st.lists(st.sampled_from([0.01, 0.05, 0.2]), min_size=1, max_size=3, unique=True),
        "severity_sigma": st.lists(st.sampled_from([0.25, 0.5, 1.0]), min_size=1, max_size=3, unique=True),
        "revenue_model": st.lists(st.sampled_from(REVENUE_MODELS), min_size=1, max_size=2, unique=True),
        "benefit_prevalence": st.lists(st.sampled_from([0.05, 0.15, 0.5]), min_size=1, max_size=3, unique=True),
        "driver": st.lists(st.sampled_from(["device", "tenure_months", "engagement_score"]), min_size=1,
                           max_size=3, unique=True),
    },
)


@settings(max_examples=40, deadline=None)
@given(
    templates=st.lists(st.sampled_from(list(TEMPLATES)), min_size=1, max_size=7, unique=True),
    metric_ids=st.lists(st.sampled_from(list(METRICS)), min_size=1, max_size=2, unique=True),
    scales=st.lists(st.sampled_from([0.25, 0.5, 2.0, 4.0]), max_size=3, unique=True),
    knob_grids=knob_grid_strategy,
)
def test_star_sweep_counts_match_the_formula(templates, metric_ids, scales, knob_grids):
    scales = [1.0, *scales]  # the centre is in the core grid
    if "nonlinear" not in templates:
        templates = [*templates, "nonlinear"]  # a continuous driver, so the coverage gate passes
    entries = build_catalog(templates=templates, metric_ids=metric_ids, effect_scale_grid=scales,
                            knob_grids=knob_grids, categorical_driver="is_returning")
    expected = len(templates) * len(metric_ids) * len(scales)
    for knob, grid in knob_grids.items():
        for template in templates:
            if knob not in template_knobs(template):
                continue
            default = TEMPLATES[template]("conversion_rate", 1.0, seed=0)[1][knob]
            for metric_id in metric_ids:
                if knob in ("severity_sigma", "revenue_model") and METRICS[metric_id] != "hurdle":
                    continue
                expected += sum(value != default for value in grid)
    families = {METRICS[m] for m in metric_ids}
    is_dup = "reversal" in templates and "is_returning" in knob_grids.get("driver", [])
    expected += 0 if is_dup else len(families)
    assert len(entries) == expected
    ids = [e.entry_id for e in entries]
    assert len(set(ids)) == len(ids) and all(ID_PATTERN.match(i) for i in ids)
    keys = [(e.template, tuple(sorted(e.kwargs.items()))) for e in entries]
    assert len(set(keys)) == len(keys)


def test_entries_are_explicit_stable_and_buildable():
    first = build_catalog(effect_scale_grid=[1.0, 2.0], knob_grids={"benefit_prevalence": [0.3]},
                          categorical_driver="is_returning")
    second = build_catalog(effect_scale_grid=[1.0, 2.0], knob_grids={"benefit_prevalence": [0.3]},
                           categorical_driver="is_returning")
    assert [(e.entry_id, e.kwargs) for e in first] == [(e.entry_id, e.kwargs) for e in second]
    ids = {e.entry_id: e for e in first}
    assert "reversal.cr.effect_scale_1" in ids and "reversal.rpv.effect_scale_2" in ids
    assert "sparse_benefit.rpv.benefit_prevalence_0.3" in ids
    assert "reversal.cr.driver_is_returning" in ids
    sweep = ids["sparse_benefit.rpv.benefit_prevalence_0.3"]
    assert sweep.axis == "benefit_prevalence" and sweep.axis_value == 0.3 and not sweep.centre
    assert ids["reversal.cr.effect_scale_1"].centre and not ids["reversal.cr.effect_scale_2"].centre
    for entry in first:
        assert isinstance(entry, CatalogEntry) and "seed" not in entry.kwargs
        assert ID_PATTERN.match(entry.entry_id)
        config, meta = entry.build(seed=4)
        assert config.seed == 4 and meta["scenario_class"] == entry.template
        assert meta["effect_scale"] == entry.kwargs["effect_scale"]


def test_defaults_override_the_knob_defaults_everywhere():
    entries = build_catalog(templates=["reversal", "sparse_benefit"], metric_ids=["conversion_rate"],
                            effect_scale_grid=[1.0], defaults={"n_visitors": 500, "driver": "device"},
                            knob_grids={"driver": ["device", "tenure_months"]})
    assert all(e.kwargs["n_visitors"] == 500 for e in entries)
    assert [(e.template, e.axis, e.kwargs["driver"]) for e in entries] == [
        ("reversal", "effect_scale", "device"),
        ("sparse_benefit", "effect_scale", "device"),
        ("reversal", "driver", "tenure_months"),
        ("sparse_benefit", "driver", "tenure_months"),
    ]


def test_sweeps_keep_default_values_when_the_centre_is_not_in_the_core_grid():
    entries = build_catalog(templates=["constant", "nonlinear"], metric_ids=["conversion_rate"],
                            effect_scale_grid=[2.0], knob_grids={"n_visitors": [2000, 4000], "n_nuisance": [5]},
                            categorical_driver="device")
    assert [(e.axis, e.axis_value, e.centre) for e in entries if e.template == "constant"] == [
        ("effect_scale", 2.0, False),
        ("n_visitors", 2000, True),
        ("n_visitors", 4000, False),
    ]


def test_a_catalog_with_only_continuous_drivers_is_refused_with_what_to_add():
    with pytest.raises(CoverageError, match="add categorical_driver: is_returning, or a reversal entry") as caught:
        build_catalog(templates=["nonlinear", "monotone_gradient"], effect_scale_grid=[1.0])
    assert "'binary'" in str(caught.value) and "'hurdle'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_catalog_with_only_categorical_drivers_is_refused_too():
    with pytest.raises(CoverageError, match="family 'binary' has no entry whose effect depends on a continuous"):
        build_catalog(templates=["constant"], metric_ids=["conversion_rate"], effect_scale_grid=[1.0],
                      categorical_driver="device")


def test_coverage_is_checked_per_family():
    entries = build_catalog(templates=["reversal"], effect_scale_grid=[1.0], categorical_driver="device")
    check_coverage(entries)
    binary_only = [e for e in entries if e.kwargs["metric_id"] == "conversion_rate"]
    check_coverage(binary_only)
    lopsided = binary_only + [e for e in entries if e.kwargs["metric_id"] != "conversion_rate" and e.axis != "driver"]
    with pytest.raises(CoverageError, match=r"family 'hurdle' has no entry .* categorical"):
        check_coverage(lopsided)


@pytest.mark.parametrize("name", list(PROFILES))
def test_profiles_pass_the_coverage_gate_and_build(name):
    entries = profile_catalog(name)
    check_coverage(entries)
    ids = [e.entry_id for e in entries]
    assert len(set(ids)) == len(ids) and all(ID_PATTERN.match(i) for i in ids)
    for entry in entries:
        entry.build(seed=0)


def test_profile_sizes():
    sizes = {name: len(profile_catalog(name)) for name in PROFILES}
    assert sizes["validate"] == 3 * 2 * 1 + 2
    # core 7 x 2 x 3; n_visitors and baseline_rate 7 x 2 x 2 each; benefit_prevalence (sparse_benefit only)
    # 2 x 2; severity_sigma (revenue only) 7 x 2; one categorical-driver reversal per metric family
    assert sizes["standard"] == 7 * 2 * 3 + 2 * (7 * 2 * 2) + 2 * 2 + 7 * 2 + 2
    assert sizes["validate"] < sizes["standard"] < sizes["thorough"]
    standard = profile_catalog("standard")
    core = {(e.template, e.kwargs["metric_id"], e.axis_value) for e in standard if e.axis == "effect_scale"}
    assert core == {(t, m, s) for t in TEMPLATES for m in METRICS for s in (0.5, 1.0, 2.0)}


def test_validate_profile_generates_every_entry():
    for entry in profile_catalog("validate"):
        config, _ = entry.build(seed=1)
        assert config.n_visitors == 10_000 and config.baseline_rate == 0.1
        assert generate(config).n == 10_000


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(TemplateError, match=r"unknown profile 'quick'; choose one of \['validate', 'standard'"):
        profile_catalog("quick")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"templates": ["ramp"]}, "unknown template 'ramp'; choose one of"),
        ({"metric_ids": ["ctr"]}, "unknown metric id 'ctr'"),
        ({"effect_scale_grid": []}, "the grid for effect_scale is empty"),
        ({"effect_scale_grid": [0.0]}, r"effect_scale=0.0 must be a finite number > 0"),
        ({"effect_scale_grid": [-1.0]}, r"effect_scale=-1.0 must be a finite number > 0"),
        ({"effect_scale_grid": [math.nan]}, r"effect_scale=nan must be a finite number"),
        ({"effect_scale_grid": [math.inf]}, r"effect_scale=inf must be a finite number"),
        ({"default_effect_scale": 0}, r"effect_scale=0 must be"),
        ({"knob_grids": {"prevalence": [0.1]}}, "unknown knob 'prevalence'; the knobs are"),
        ({"defaults": {"visitors": 10}}, "unknown knob 'visitors'"),
        ({"knob_grids": {"n_visitors": []}}, "the grid for n_visitors is empty"),
        ({"knob_grids": {"n_visitors": [49]}}, r"n_visitors=49 must be an integer >= 50"),
        ({"knob_grids": {"n_visitors": [100.5]}}, r"n_visitors=100.5 must be an integer"),
        ({"knob_grids": {"treatment_allocation": [1.0]}}, r"treatment_allocation=1.0 must be strictly between"),
        ({"knob_grids": {"treatment_allocation": [0]}}, r"treatment_allocation=0 must be strictly between"),
        ({"knob_grids": {"baseline_rate": [0.0]}}, r"baseline_rate=0.0 must be strictly between 0 and 1"),
        ({"defaults": {"baseline_rate": 1.5}}, r"baseline_rate=1.5 must be strictly between 0 and 1"),
        ({"knob_grids": {"benefit_prevalence": [0.0]}}, r"benefit_prevalence=0.0 must be in \(0, 1\]"),
        ({"knob_grids": {"benefit_prevalence": [1.2]}}, r"benefit_prevalence=1.2 must be in \(0, 1\]"),
        ({"knob_grids": {"severity_sigma": [0.0]}}, r"severity_sigma=0.0 must be a finite number > 0"),
        ({"knob_grids": {"n_nuisance": [-1]}}, r"n_nuisance=-1 must be an integer"),
        ({"knob_grids": {"revenue_model": ["pareto"]}}, r"revenue_model='pareto' is unknown; choose one of"),
        ({"knob_grids": {"driver": ["age"]}}, r"unknown driver feature 'age'; choose one of"),
        ({"categorical_driver": "age"}, r"unknown driver feature 'age'"),
        ({"categorical_driver": "tenure_months"}, r"categorical_driver 'tenure_months' is continuous; choose one"),
    ],
)
def test_bad_catalog_requests_raise_a_one_line_template_error(kwargs, message):
    request = {"effect_scale_grid": [1.0], "categorical_driver": "device", **kwargs}
    with pytest.raises(TemplateError, match=message) as caught:
        build_catalog(**request)
    assert "\n" not in str(caught.value)
