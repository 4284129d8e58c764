"""A backfill of a study's trials grid is one run per rectangle, as the CLI plans it (not one per
key of the smaller dimension, Dagster's own ranges)."""
import random

import pytest
from dagster import DagsterInstance, PartitionKeyRange
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.definitions.automation_tick_evaluation_context import build_run_requests_with_backfill_policies
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from benchmark_assets.defs import rectangle_ranges
from benchmark_assets.defs.assets import build_assets
from benchmark_assets.defs.partitions import register
from benchmark_assets.graph import StudyGraph
from benchmark_assets.studies import load_study

rectangle_ranges.install()


def _trials_runs(instance, study_name: str, pick=lambda keys: keys):
    study = load_study(study_name)
    register(instance, StudyGraph.of(study))
    assets = build_assets(StudyGraph.of(study))
    trials = next(a for a in assets if a.key.path[-1] == "trials")
    partitions_def = trials.partitions_def
    with partition_loading_context(dynamic_partitions_store=instance):
        wanted = set(pick(list(partitions_def.get_partition_keys())))
        requests = build_run_requests_with_backfill_policies(
            [AssetKeyPartitionKey(trials.key, k) for k in wanted], AssetGraph.from_assets(assets), instance)
        covered = [set(partitions_def.get_partition_keys_in_range(
            PartitionKeyRange(r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG])))
            for r in requests]
    return wanted, covered


@pytest.mark.parametrize("study_name", ["sgd_comparison", "memory_ratchet", "llm_load_sweep"])
def test_a_backfill_of_every_trial_is_one_run(study_name):
    with DagsterInstance.ephemeral() as instance:
        wanted, covered = _trials_runs(instance, study_name)
    assert len(covered) == 1 and covered[0] == wanted


def test_a_partial_grid_is_one_run_per_rectangle_and_covers_exactly_the_wanted_trials():
    with DagsterInstance.ephemeral() as instance:
        # new seeds on every arm, plus every seed of the candidate arm: two rectangles
        def pick(keys):
            return [k for k in keys if k.keys_by_dimension["arm"] == "candidate"
                    or k.keys_by_dimension["seed"] in ("9001", "10007")]

        wanted, covered = _trials_runs(instance, "sgd_comparison", pick)
        assert len(covered) == 2
        assert set().union(*covered) == wanted and sum(map(len, covered)) == len(wanted)

        rng = random.Random(0)
        wanted, covered = _trials_runs(instance, "memory_ratchet", lambda keys: rng.sample(keys, 300))
        assert set().union(*covered) == wanted and sum(map(len, covered)) == len(wanted)


def test_ranges_of_other_partitions_are_dagsters_own():
    from dagster import StaticPartitionsDefinition

    letters = StaticPartitionsDefinition(list("abcdef"))
    subset = letters.subset_with_partition_keys(["a", "b", "d"])
    assert [(r.start, r.end) for r in subset.get_partition_key_ranges(letters)] == [("a", "b"), ("d", "d")]
