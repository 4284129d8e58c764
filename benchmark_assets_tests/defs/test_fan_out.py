"""The fanned-out trials asset (a scaled-out deployment's), run in process here: the same rows as
one step, and a gathering step that stores nothing incomplete. Real workers: test_scale_out.py."""
import pandas as pd
from dagster import AssetKey, DagsterEventType, MultiPartitionKey, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from benchmark_assets.defs.assets import build_assets
from benchmark_assets.defs.partitions import register
from benchmark_assets.defs.resources import study_resources
from benchmark_assets.defs.step import DagsterStep
from benchmark_assets.graph import StudyGraph
from benchmark_assets.warehouse import Warehouse

KEYS = ["sweep_point", "seed_id", "trial_index"]


def _point_range(study, point: str) -> dict:
    seeds = study.seed_keys
    return {ASSET_PARTITION_RANGE_START_TAG: str(MultiPartitionKey({"sweep_point": point, "seed_id": seeds[0]})),
            ASSET_PARTITION_RANGE_END_TAG: str(MultiPartitionKey({"sweep_point": point, "seed_id": seeds[-1]}))}


def _prepare(instance, study):
    register(instance, StudyGraph.of(study))
    seeds = study.seed_keys
    catalog = materialize(build_assets(StudyGraph.of(study), trial_chunks=0), instance=instance, resources=study_resources(),
                          selection=[AssetKey([study.name, "scenario_catalog"])],
                          tags={ASSET_PARTITION_RANGE_START_TAG: seeds[0], ASSET_PARTITION_RANGE_END_TAG: seeds[-1]})
    assert catalog.success


def _trials(study, point: str, chunks: int, instance):
    return materialize(build_assets(StudyGraph.of(study), trial_chunks=chunks), instance=instance, resources=study_resources(),
                       selection=[AssetKey([study.name, "trials"])], tags=_point_range(study, point),
                       raise_on_error=False)


def test_three_measuring_steps_store_exactly_the_rows_of_one_step(instance, toy_study):
    _prepare(instance, toy_study)
    assert _trials(toy_study, "alpha=0.5", 0, instance).success
    one_step = Warehouse().read("toy__trials")
    result = _trials(toy_study, "alpha=0.5", 3, instance)
    assert result.success
    steps = {e.step_key for e in result.all_events if e.is_step_success}
    assert steps == {f"toy__trials.toy__trials__measure_{i}" for i in range(3)} | {"toy__trials.toy__trials__gather"}
    fanned = Warehouse().read("toy__trials")
    pd.testing.assert_frame_equal(
        one_step.drop(columns="duration_seconds").sort_values(KEYS).reset_index(drop=True),
        fanned.drop(columns="duration_seconds").sort_values(KEYS).reset_index(drop=True))
    assert len(instance.get_materialized_partitions(AssetKey(["toy", "trials"]))) == 10  # one per scenario
    assert Warehouse().read(StudyGraph.of(toy_study).checkpoint_table).empty  # stored for good: nothing left to resume


def test_more_steps_than_trials_leave_the_extra_steps_idle(instance, toy_study):
    _prepare(instance, toy_study)
    result = _trials(toy_study, "alpha=0.1", 16, instance)  # 10 trials partitions, 16 steps
    assert result.success and len(Warehouse().read("toy__trials")) == 10 * 2


def test_a_piece_whose_rows_never_arrived_fails_the_run_and_stores_nothing(instance, toy_study, monkeypatch):
    _prepare(instance, toy_study)
    lost = str(toy_study.seed_keys[0])
    original = DagsterStep.checkpoint

    def loses_one_scenario(self, rows):  # a worker that wrote to another warehouse, say
        original(self, rows[rows["seed_id"].astype(str) != lost] if len(rows) else rows)

    monkeypatch.setattr(DagsterStep, "checkpoint", loses_one_scenario)
    result = _trials(toy_study, "alpha=0.7", 3, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    text = failure.step_failure_data.error.to_string()
    assert "the measuring steps reported 20 rows, the warehouse holds 18" in text
    assert f"1 have none (alpha=0.7/{lost})" in text and "nothing was stored" in text
    assert Warehouse().read("toy__trials").empty
    assert not instance.get_materialized_partitions(AssetKey(["toy", "trials"]))


def test_a_failed_check_keeps_the_checkpoint_so_re_executing_the_gathering_step_finds_the_rows(
        instance, toy_study, monkeypatch):
    import benchmark_assets_tests.toy_target as toy
    from benchmark_assets.studies import load_study

    original = toy.evaluate

    def out_of_bounds(scenario, params, seed):
        return {**original(scenario, params, seed), "score": 5.0}

    out_of_bounds.metric_bounds = {"score": (-1.0, 2.0)}
    monkeypatch.setattr(toy, "evaluate", out_of_bounds)
    study = load_study(toy_study.path)
    _prepare(instance, study)
    result = _trials(study, "current", 3, instance)
    evaluation = next(e.dagster_event.event_specific_data for e in
                      instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION))
    assert not evaluation.passed
    assert len(Warehouse().read(StudyGraph.of(study).checkpoint_table)) == 10 * 2
