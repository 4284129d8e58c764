"""The estimator benchmark materialised on a real Dagster instance: a real template catalog, real
scikit-learn fits, user estimators by module:function (one raising, one of the wrong shape)."""
import json

import numpy as np
import pytest
from dagster import AssetKey, DagsterEventType

from benchmark_assets.artifacts import latest_dir
from benchmark_assets.defs.runner import run_study
from benchmark_assets.kinds.estimator_benchmark.trials import dataset
from benchmark_assets.ledger import LEDGER_TABLE
from benchmark_assets.stats.uplift import uplift_metrics
from benchmark_assets.studies import load_study
from benchmark_assets.targets.uplift import BUILTIN, run_estimator
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.conftest import write_study

USER = "benchmark_assets_tests.uplift_estimators"
BENCHMARK = f"""\
kind: estimator_benchmark
description: toy benchmark for tests
catalog:
  templates: [constant, reversal, monotone_gradient]
  metric_ids: [conversion_rate]
  effect_scale_grid: [3.0]
  default_effect_scale: 3.0
  knob_grids: {{n_visitors: [1500]}}
  defaults: {{n_visitors: 4000, baseline_rate: 0.3}}
  categorical_driver: is_returning
seeds: 2
estimators:
  - zero_effect
  - difference_in_means
  - {{name: t_learner, options: {{max_iter: 60}}}}
  - {{name: ridge_t, function: "{USER}:linear_t_learner"}}
  - {{name: raising, function: "{USER}:raises"}}
  - {{name: misshapen, function: "{USER}:wrong_shape"}}
  - {{name: missing, function: "benchmark_assets_tests.import_fails:fit"}}
decision:
  bootstrap_resamples: 500
"""


@pytest.fixture
def bench_study(study_dir):
    return load_study(write_study(study_dir, "bench", BENCHMARK))


def test_benchmark_runs_end_to_end_scores_against_the_truth_and_keeps_failed_estimators_as_data(instance, bench_study):
    entries = [e.entry_id for e in bench_study.entries]
    data_sets = len(entries) * 2
    outcome = run_study("bench", quiet=True, instance=instance)
    assert outcome.measured == 7 * data_sets
    assert len(instance.get_materialized_partitions(AssetKey(["bench", "trials"]))) == 7 * data_sets
    assert len(instance.get_materialized_partitions(AssetKey(["bench", "scenario_catalog"]))) == data_sets
    for run_id in (stage.run_id for stage in outcome.stages):
        checks = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        assert checks and all(e.dagster_event.event_specific_data.passed for e in checks)

    warehouse = Warehouse()
    catalog = warehouse.read("bench__scenario_catalog").set_index("dataset")
    trials = warehouse.read("bench__trials")
    key = catalog.index[0]
    data, _ = dataset(bench_study, key)
    assert catalog.loc[key, "true_ate"] == pytest.approx(data.true_ate)
    assert catalog.loc[key, "n_rows"] == data.outcome.size

    # A stored trial is the estimator fitted again on the regenerated data, scored by stats.uplift.
    row = trials[(trials["estimator"] == "t_learner") & (trials["dataset"] == key)].iloc[0]
    estimate, _ = run_estimator(BUILTIN["t_learner"], data.features, data.treatment, data.outcome,
                                seed=int(row["seed"]), options={"max_iter": 60})
    expected = uplift_metrics(estimate, data.true_effect)
    for metric in ("pehe", "pehe_normalised", "ate_bias", "qini", "sign_accuracy"):
        assert row[metric] == pytest.approx(expected[metric], nan_ok=True), metric
    zero = trials[trials["estimator"] == "zero_effect"]
    assert np.allclose(zero["pehe_normalised"], 1.0)  # errors are normalised by predicting no effect
    dim = trials[trials["estimator"] == "difference_in_means"]
    assert dim["pehe"].isna().all() and dim["ate_covered"].isin([0.0, 1.0]).all()

    raising = trials[trials["estimator"] == "raising"]
    assert (raising["status"] == "failed").all()
    assert raising["error"].str.contains("RuntimeError: this estimator does not converge on seed").all()
    assert raising["error"].str.contains("uplift_estimators.py").all()  # where in the user's code
    misshapen = trials[trials["estimator"] == "misshapen"]
    assert (misshapen["status"] == "failed").all()
    assert misshapen["error"].str.contains(r"\(n, 1\)|shaped \(\d+, 1\)", regex=True).all()
    missing = trials[trials["estimator"] == "missing"]
    assert (missing["status"] == "failed").all()
    assert missing["error"].str.contains("this estimator needs lightgbm, which is not installed").all()
    assert missing["error"].str.contains("fix estimators entry 'missing'").all()

    board = warehouse.read("bench__leaderboard").set_index("estimator")
    assert board.loc["t_learner", "rank"] < board.loc["zero_effect", "rank"]
    assert board.loc["zero_effect", "pehe_normalised_iqm"] == pytest.approx(1.0)
    assert board.loc["raising", "failed"] == data_sets and np.isnan(board.loc["raising", "pehe_normalised_iqm"])
    pairs = warehouse.read("bench__verdicts").set_index("subject")
    assert pairs.loc["t_learner vs zero_effect", "verdict"] == "better"
    assert pairs.loc["t_learner vs zero_effect", "wins"] == data_sets
    assert not pairs.index.str.contains("raising|misshapen|missing|difference_in_means").any()  # unranked: in no pair

    aggregates = warehouse.read("bench__aggregates")
    centre = aggregates[(aggregates["estimator"] == "t_learner") & (aggregates["knob"] == "n_visitors")
                        & (aggregates["metric"] == "pehe_normalised")]
    assert set(centre["knob_value"]) == {"1500", "4000"}  # the centre of the star is the curve's default point

    ledger = warehouse.read(LEDGER_TABLE)
    rows = ledger[ledger["study"] == "bench"].set_index("subject")
    assert len(rows) == 3 and rows.loc["t_learner vs zero_effect", "decision"] == "better"
    details = json.loads(rows.loc["t_learner vs zero_effect", "details"])
    assert details["wins"] == data_sets

    report = (latest_dir("bench") / "report.md").read_text()
    assert "| 1 | " in report and "t_learner beats zero_effect" not in report  # reasons stay in the table data
    assert "RuntimeError: this estimator does not converge" in report
    assert "![Error against n_visitors](plots/knob_n_visitors.png)" in report
    assert (latest_dir("bench") / "plots" / "pairs.png").stat().st_size > 5_000


def test_a_rerun_runs_only_what_changed(instance, bench_study, study_dir):
    run_study("bench", quiet=True, instance=instance)
    again = run_study("bench", quiet=True, instance=instance)
    failed = 3 * 2 * len(bench_study.entries)  # the three failing estimators are retried; the rest is up to date
    assert again.measured == failed
    write_study(study_dir, "bench", BENCHMARK.replace("seeds: 2", "seeds: [0, 1, 2]"))
    grown = run_study("bench", quiet=True, instance=instance)
    assert grown.measured == 7 * len(bench_study.entries) + failed  # the new seed's trials, and the failed ones


@pytest.mark.parametrize("estimators, unranked", [(["constant_effect"], []),
                                                  (["difference_in_means", "zero_effect"], ["difference_in_means"])])
def test_fewer_than_two_ranked_estimators_report_the_leaderboard_and_no_pairs(instance, study_dir, estimators,
                                                                                 unranked):
    """One estimator, or only one that the metric ranks (difference_in_means has no individual
    effects, so no PEHE): the verdicts' table is empty and valid, the report says why."""
    text = BENCHMARK.split("estimators:")[0] + "estimators:\n" + "".join(f"  - {e}\n" for e in estimators) + \
        "decision:\n  bootstrap_resamples: 500\n"
    write_study(study_dir, "few", text)
    run_study("few", quiet=True, instance=instance)
    warehouse = Warehouse()
    assert warehouse.read("few__verdicts").empty
    board = warehouse.read("few__leaderboard")
    assert board["rank"].notna().sum() == 1
    report = (latest_dir("few") / "report.md").read_text()
    assert "it is the only estimator ranked on pehe_normalised, so there is no pair to judge" in report
    assert "No pairs: fewer than two estimators are ranked on pehe_normalised (1 ranked" in report
    assert all(name in report.split("No pairs:")[1].split("\n")[0] for name in unranked)
    assert "Pairs: share of data sets won" not in report
