"""The whole study graph materialised on a real Dagster instance (SQLite, pooled event log)."""
import json
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, DagsterEventType, MultiPartitionKey, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from benchmark_assets.artifacts import latest_dir
from benchmark_assets.defs.assets import build_assets
from benchmark_assets.defs.instance_storage import PooledSqliteEventLogStorage
from benchmark_assets.defs.partitions import register
from benchmark_assets.defs.resources import study_resources
from benchmark_assets.defs.runner import run_study
from benchmark_assets.graph import StudyGraph
from benchmark_assets.ledger import LEDGER_TABLE
from benchmark_assets.outcomes import TrialResults
from benchmark_assets.studies import load_study
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.conftest import TOY_STUDY, study_ran


def materialised_partitions(instance, key: AssetKey) -> set[str]:
    return set(instance.get_materialized_partitions(key))


def check_results(instance, run_id: str) -> dict[str, bool]:
    events = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    return {e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data.passed for e in events}


@pytest.fixture(scope="module")
def toy_ran(tmp_path_factory, template_dagster_home):
    """The toy ratchet run once on a home of its own, for the tests below that only read it."""
    return study_ran(tmp_path_factory, template_dagster_home, {"toy": TOY_STUDY},
                     lambda instance, studies: run_study("toy", quiet=True, instance=instance))


@pytest.fixture
def ran_instance(toy_ran, monkeypatch):
    with toy_ran.opened(monkeypatch) as instance:
        yield instance


def test_whole_toy_ratchet_materialises_with_partitions_checks_and_decisions(toy_ran, ran_instance):
    instance, outcome, study = ran_instance, toy_ran.outcome, load_study("toy")
    assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
    key = lambda name: AssetKey(["toy", name])  # noqa: E731
    points = [p.key for p in study.sweep_points()]
    assert materialised_partitions(instance, key("scenario_catalog")) == set(study.seed_keys)
    expected_trials = {str(MultiPartitionKey({"sweep_point": p, "seed_id": s})) for p in points for s in study.seed_keys}
    assert materialised_partitions(instance, key("trials")) == expected_trials
    assert materialised_partitions(instance, key("aggregates")) == set(points)
    for run_id in (stage.run_id for stage in outcome.stages):
        assert all(check_results(instance, run_id).values())
    assert {c for r in (stage.run_id for stage in outcome.stages) for c in check_results(instance, r)} == {
        "check_scenario_catalog_schema", "check_trials_schema", "check_aggregates_schema", "check_verdicts_schema",
        "check_interactions_schema", "check_cumulative_schema", "check_search_schema"}

    warehouse = Warehouse()
    trials = warehouse.read("toy__trials")
    assert len(trials) == len(points) * 10 * 2  # points x scenarios x trials_per_scenario
    crashed = trials[trials["sweep_point"] == "gamma=99"]
    assert (crashed["status"] == "failed").all() and crashed["error"].str.contains("crashed on purpose").all()
    assert (trials.loc[trials["sweep_point"] != "gamma=99", "status"] == "ok").all()

    aggregates = warehouse.read("toy__aggregates").set_index(["sweep_point", "split", "metric"])
    assert aggregates.loc[("gamma=99", "all", "score"), "n_failed"] == 20
    assert aggregates.loc[("gamma=99", "all", "score"), "n"] == 0
    current = aggregates.loc[("current", "all", "score")]
    assert current["n"] == 20 and current["t_low"] < current["mean"] < current["t_high"]

    verdicts = warehouse.read("toy__verdicts").set_index("constant")
    assert verdicts.loc["alpha", "decision"] == "accept" and verdicts.loc["alpha", "proposed"] == 0.7
    assert verdicts.loc["beta", "decision"] == "no_sensitivity"
    assert verdicts.loc["gamma", "n_failed_trials"] == 20

    folder = latest_dir("toy")
    report = (folder / "report.md").read_text()
    assert "| alpha | 1 | 0.3 | 0.7 |" in report and "trials: 200 (20 failed)" in report
    assert "+  alpha: {tier: 1, current: 0.7," in (folder / "proposed.patch").read_text()
    assert {p.name for p in (folder / "plots").iterdir()} == {"alpha.png", "beta.png", "gamma.png", "overview.png"}
    sensitivity = pd.read_csv(folder / "sensitivity.csv")
    assert set(sensitivity["constant"]) == {"alpha", "beta", "gamma"} and set(sensitivity["split"]) == {"train", "validation"}
    assert json.loads((folder / "summary.json").read_text())["accepted_count"] == 1
    assert (folder / "plots" / "alpha.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    ledger = warehouse.read(LEDGER_TABLE)
    assert len(ledger) == 3 and set(ledger["study"]) == {"toy"}
    assert ledger["study_hash"].iloc[0] == study.spec_hash and ledger["run_id"].notna().all()


def test_rematerialising_a_partition_replaces_its_rows_never_duplicates(instance, toy_study):
    run_study("toy", quiet=True, instance=instance)
    warehouse = Warehouse()
    before = warehouse.read("toy__trials")
    assets = build_assets(StudyGraph.of(toy_study))
    seeds = toy_study.seed_keys
    for _ in range(2):
        result = materialize(
            assets, instance=instance, resources=study_resources(), selection=[AssetKey(["toy", "trials"])],
            tags={ASSET_PARTITION_RANGE_START_TAG: str(MultiPartitionKey({"sweep_point": "alpha=0.5", "seed_id": seeds[0]})),
                  ASSET_PARTITION_RANGE_END_TAG: str(MultiPartitionKey({"sweep_point": "alpha=0.5", "seed_id": seeds[-1]}))},
        )
        assert result.success
    after = warehouse.read("toy__trials")
    assert len(after) == len(before)
    assert not after.duplicated(["sweep_point", "seed_id", "trial_index"]).any()
    pd.testing.assert_frame_equal(
        before.drop(columns="duration_seconds").sort_values(["sweep_point", "seed_id", "trial_index"]).reset_index(drop=True),
        after.drop(columns="duration_seconds").sort_values(["sweep_point", "seed_id", "trial_index"]).reset_index(drop=True),
    )
    # A second full run appends a second set of verdicts to the ledger, and only that.
    run_study("toy", quiet=True, instance=instance)
    assert len(warehouse.read(LEDGER_TABLE)) == 6
    assert len(warehouse.read("toy__verdicts")) == 3


def test_selecting_constants_decides_only_those_and_corrects_for_them(instance, toy_study):
    run_study("toy", subjects=["alpha"], quiet=True, instance=instance)
    verdicts = Warehouse().read("toy__verdicts")
    assert list(verdicts["constant"]) == ["alpha"]
    trials = Warehouse().read("toy__trials")
    assert set(trials["sweep_point"]) == {"current", "alpha=0.1", "alpha=0.5", "alpha=0.7", "alpha=0.8", "alpha=1"}


def test_verdicts_refuse_to_decide_before_trials_exist(instance, toy_study):
    register(instance, StudyGraph.of(toy_study))
    assets = build_assets(StudyGraph.of(toy_study))
    result = materialize(assets, instance=instance, resources=study_resources(),
                         selection=[AssetKey(["toy", "verdicts"])], raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "have no trials yet" in failure.step_failure_data.error.to_string()


def test_failed_schema_check_blocks_downstream_and_shows_failing_rows(instance, toy_study, monkeypatch):
    import benchmark_assets_tests.toy_target as toy

    original = toy.evaluate

    def out_of_bounds(scenario, params, seed):
        return {**original(scenario, params, seed), "score": 5.0}

    out_of_bounds.metric_bounds = {"score": (-1.0, 2.0)}  # the target says a score above 2 is impossible
    monkeypatch.setattr(toy, "evaluate", out_of_bounds)
    from benchmark_assets.studies import load_study

    study = load_study(toy_study.path)
    register(instance, StudyGraph.of(study))
    assets = build_assets(StudyGraph.of(study))
    seeds = study.seed_keys
    result = materialize(assets, instance=instance, resources=study_resources(),
                         selection=[AssetKey(["toy", "scenario_catalog"])],
                         tags={ASSET_PARTITION_RANGE_START_TAG: seeds[0], ASSET_PARTITION_RANGE_END_TAG: seeds[-1]})
    assert result.success
    result = materialize(
        assets, instance=instance, resources=study_resources(), raise_on_error=False,
        selection=[AssetKey(["toy", "trials"])],
        tags={ASSET_PARTITION_RANGE_START_TAG: str(MultiPartitionKey({"sweep_point": "current", "seed_id": seeds[0]})),
              ASSET_PARTITION_RANGE_END_TAG: str(MultiPartitionKey({"sweep_point": "current", "seed_id": seeds[-1]}))},
    )
    evaluation = next(e.dagster_event.event_specific_data for e in
                      instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION))
    assert evaluation.check_name == "check_trials_schema" and not evaluation.passed
    assert evaluation.metadata["failure_count"].value > 0
    failing = evaluation.metadata["failing_rows"].value
    assert "in_range(-1.0, 2.0)" in failing
    header = failing.splitlines()[0]  # keyed by the trial, not by the frame's index
    assert [c.strip() for c in header.strip("|").split("|")][:3] == ["sweep_point", "seed_id", "trial_index"]
    assert not result.success  # blocking: the run stops here, nothing downstream is computed
    assert not instance.get_materialized_partitions(AssetKey(["toy", "aggregates"]))


@pytest.mark.parametrize("bad", ["alpha,nope"])
def test_cli_selection_of_unknown_constant_is_one_clear_error(instance, toy_study, bad):
    from benchmark_assets.studies import StudyError

    with pytest.raises(StudyError, match=r"--constants: unknown constants \['nope'\]"):
        run_study("toy", subjects=bad.split(","), quiet=True, instance=instance)


@pytest.mark.parametrize(("returned", "error"), [
    ({"score": float("nan"), "cost": 1.0}, "metric 'score' is nan, not a finite number"),
    ({"score": float("inf"), "cost": 1.0}, "metric 'score' is inf, not a finite number"),
    ({"cost": 1.0}, "target returned no 'score' (the study's decision metric), only ['cost']"),
])
def test_a_metric_that_cannot_be_decided_on_is_a_failed_trial_with_the_reason(instance, toy_study, monkeypatch,
                                                                             returned, error):
    import benchmark_assets_tests.toy_target as toy

    def broken(scenario, params, seed):
        return dict(returned)

    monkeypatch.setattr(toy, "evaluate", broken)
    outcome = run_study("toy", subjects=["beta"], quiet=True, instance=instance)  # the stages all complete
    trials = Warehouse().read("toy__trials")
    assert (trials["status"] == "failed").all() and (trials["error"] == error).all()
    assert outcome.results == TrialResults(len(trials), len(trials), ((error, len(trials)),))
    report = (latest_dir("toy") / "report.md").read_text()
    assert f"## Failed trials: {len(trials)} of {len(trials)}" in report and f"| {len(trials)} | {error} |" in report


def test_each_summary_event_links_its_own_files_and_shows_every_plot(instance, toy_study):
    import re

    run_study("toy", quiet=True, instance=instance)
    run_study("toy", quiet=True, instance=instance, subjects=["alpha"])
    events = instance.fetch_materializations(AssetKey(["toy", "ratchet_summary"]), limit=10).records
    assert len(events) == 2
    folders = []
    for record in events:
        metadata = record.asset_materialization.metadata
        folder = metadata["artifacts"].value
        assert folder.endswith(record.run_id) and (Path(folder) / "report.md").exists()
        plots = metadata["plots"].value
        folders.append((record.run_id, folder, len(re.findall(r"!\[\w+: \w+\]\(data:image/png;base64,", plots))))
    (_newest, newest_folder, newest_plots), (_oldest, oldest_folder, oldest_plots) = folders
    assert (newest_plots, oldest_plots) == (1, 3)  # alpha alone, then all three constants
    assert "| beta |" in (Path(oldest_folder) / "report.md").read_text()  # not overwritten by the later run
    assert "| beta |" not in (Path(newest_folder) / "report.md").read_text()
    assert latest_dir("toy").resolve() == Path(newest_folder).resolve()


def test_each_trial_partition_shows_its_own_rows(ran_instance):
    instance, toy_study = ran_instance, load_study("toy")
    trials = Warehouse().read("toy__trials")
    seed = toy_study.seed_keys[0]
    events = {str(r.partition_key): r.asset_materialization.metadata
              for r in instance.fetch_materializations(AssetKey(["toy", "trials"]), limit=1000).records}
    assert len(events) == len(trials) // 2  # one event per (sweep point, seed id), two repeats each

    crashed = events[str(MultiPartitionKey({"sweep_point": "gamma=99", "seed_id": seed}))]
    assert crashed["rows"].value == 2 and crashed["failed"].value == 2
    assert "crashed on purpose" in crashed["error"].value and "score" not in crashed

    ok = events[str(MultiPartitionKey({"sweep_point": "alpha=0.7", "seed_id": seed}))]
    rows = trials[(trials["sweep_point"] == "alpha=0.7") & (trials["seed_id"] == int(seed))]
    assert ok["rows"].value == 2 and ok["failed"].value == 0 and ok["error"].value == ""
    assert ok["split"].value == rows["split"].iloc[0]
    # the mean as a person reads it (4 significant digits); no mean of a seed or a repeat number
    assert ok["score"].value == float(f"{rows['score'].mean():.4g}")
    assert not {"trial_seed", "trial_index", "seed_id"} & set(ok)
    # The run's totals are in its log, not copied onto each of its partitions' events.
    assert not {"run_trials", "rows_written", "sweep_points"} & set(ok)
    (run_id,) = {r.run_id for r in instance.fetch_materializations(AssetKey(["toy", "trials"]), limit=1000).records}
    logged = [entry.user_message for entry in instance.all_logs(run_id)]
    assert any(line.startswith(f"trials: {len(trials)}, failed trials: ") for line in logged), logged
    assert any(line.startswith("first failed trials:") and "gamma=99" in line for line in logged)
