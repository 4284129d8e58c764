import numpy as np
import pytest
import yaml

from benchmark_assets.scenarios import build_scenario, default_seeds
from benchmark_assets.targets import TargetError, memory, resolve_target
from benchmark_assets_tests.conftest import ROOT


@pytest.fixture(scope="module")
def params():
    spec = yaml.safe_load((ROOT / "studies" / "memory_ratchet.yaml").read_text())
    return {name: c["current"] for name, c in spec["constants"].items()}


@pytest.fixture(scope="module")
def scenarios():
    return [build_scenario(s) for s in default_seeds(12)]


def test_batch_evaluation_equals_one_scenario_at_a_time(params, scenarios):
    seeds = list(range(len(scenarios)))
    batch = memory.evaluate_batch(scenarios, params, seeds)
    single = [memory.evaluate(sc, params, seed) for sc, seed in zip(scenarios, seeds)]
    for a, b in zip(batch, single):
        assert a.keys() == set(memory.METRICS)
        for metric in memory.METRICS:
            assert a[metric] == pytest.approx(b[metric], abs=1e-12)
            assert 0.0 <= a[metric] <= 1.0


def test_ranking_by_the_latent_truth_scores_perfectly(scenarios):
    batch = memory.ScenarioBatch.from_scenarios(scenarios)
    truth = np.full(batch.present.shape, -np.inf)
    for i, sc in enumerate(scenarios):
        truth[i, : sc.record_count] = sc.true_usefulness
    metrics = memory.ranking_metrics(batch, truth)
    np.testing.assert_allclose(metrics["ndcg_5"], 1.0)
    np.testing.assert_allclose(metrics["mrr"], 1.0)
    expected_p5 = [min(5, sc.relevant_count()) / 5 for sc in scenarios]
    np.testing.assert_allclose(metrics["precision_5"], expected_p5)


def test_a_write_filter_above_every_importance_retrieves_nothing(params, scenarios):
    result = memory.evaluate_batch(scenarios, {**params, "write_filter_threshold": 1.01}, [0] * len(scenarios))
    assert all(r["ndcg_10"] == 0.0 and r["mrr"] == 0.0 for r in result)


def test_decay_rate_matters_and_confidence_floor_barely_does(params, scenarios):
    def mean_ndcg(overrides):
        return np.mean([r["ndcg_5"] for r in memory.evaluate_batch(scenarios, {**params, **overrides}, [0] * len(scenarios))])

    assert abs(mean_ndcg({"decay_rate": 0.1}) - mean_ndcg({"decay_rate": 0.7})) > 0.05
    assert abs(mean_ndcg({"confidence_floor": 0.0}) - mean_ndcg({"confidence_floor": 0.1})) < 0.01


def test_unknown_or_missing_constants_are_refused(params, scenarios):
    with pytest.raises(ValueError, match="unknown constants \\['decay_rte'\\]"):
        memory.evaluate(scenarios[0], {**params, "decay_rte": 1.0}, 0)


def test_resolve_target_explains_what_is_wrong():
    assert resolve_target("memory").constants == memory.CONSTANTS
    with pytest.raises(TargetError, match="unknown target 'memroy'"):
        resolve_target("memroy")
    with pytest.raises(TargetError, match="cannot import module 'no_such_module'"):
        resolve_target("no_such_module:evaluate")
    with pytest.raises(TargetError, match="has no callable 'nope'"):
        resolve_target("benchmark_assets.targets.memory:nope")
