"""The trials' two-dimensional partitions answer as Dagster's own do, with each key built once."""
from __future__ import annotations

import itertools

import pytest
from dagster import (
    DagsterInstance,
    DynamicPartitionsDefinition,
    MultiPartitionsDefinition,
    PartitionKeyRange,
    StaticPartitionsDefinition,
    partition_loading_context,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark_assets.defs.compat import GridPartitions

POINTS = [f"p={i / 10:g}" for i in range(7)]
SEEDS = [str(i) for i in range(5)]
NAMES = itertools.count()


@pytest.fixture(scope="module")
def instance():
    with DagsterInstance.ephemeral() as instance:
        yield instance


def pair(dimensions):
    ours, dagsters = GridPartitions(dimensions), MultiPartitionsDefinition(dimensions)
    return ours, dagsters


def answers(definition, instance, ranges):
    with partition_loading_context(dynamic_partitions_store=instance):
        keys = definition.get_partition_keys()
        ranged = [definition.get_partition_keys_in_range(PartitionKeyRange(s, e)) for s, e in ranges]
        parsed = [definition.get_partition_key_from_str(k) for k in keys]
    return ([str(k) for k in keys], [k.keys_by_dimension for k in keys], [[str(k) for k in r] for r in ranged],
            [k.keys_by_dimension for k in parsed])


@settings(max_examples=40, deadline=None)
@given(points=st.integers(1, len(POINTS)), seeds=st.integers(1, len(SEEDS)), data=st.data())
def test_grid_partitions_answer_as_dagster_does(instance, points, seeds, data):
    """Every key, every range (including reversed ones, which are empty) and every parsed key is
    Dagster's, in Dagster's order, for static and dynamic dimensions, also after keys are added."""
    name = f"points_{next(NAMES)}"  # a fresh dimension per example
    dimensions = {"sweep_point": DynamicPartitionsDefinition(name=name),
                  "seed_id": StaticPartitionsDefinition(SEEDS[:seeds])}
    ours, dagsters = pair(dimensions)
    instance.add_dynamic_partitions(name, POINTS[:points])
    for grow in (False, True):
        if grow:  # a new sweep value: the grid is rebuilt, not served stale
            instance.add_dynamic_partitions(name, ["added"])
        with partition_loading_context(dynamic_partitions_store=instance):
            keys = [str(k) for k in dagsters.get_partition_keys()]
        corners = st.sampled_from(keys)
        ranges = data.draw(st.lists(st.tuples(corners, corners), min_size=1, max_size=6))
        assert answers(ours, instance, ranges) == answers(dagsters, instance, ranges)


def test_a_key_outside_the_grid_fails_as_dagsters_does(instance):
    dimensions = {"sweep_point": StaticPartitionsDefinition(POINTS), "seed_id": StaticPartitionsDefinition(SEEDS)}
    ours, dagsters = pair(dimensions)
    outside = PartitionKeyRange("0|p=0", "9|p=0.3")
    errors = []
    for definition in (ours, dagsters):
        with pytest.raises(Exception) as raised, partition_loading_context(dynamic_partitions_store=instance):
            definition.get_partition_keys_in_range(outside)
        errors.append((type(raised.value), str(raised.value)))
    assert errors[0] == errors[1]
    assert ours.get_partition_key_from_str("9|nowhere").keys_by_dimension == {"seed_id": "9", "sweep_point": "nowhere"}


def test_each_key_is_built_once(instance):
    """Listing the grid twice, or a range of it, hands out the same key objects."""
    dimensions = {"sweep_point": StaticPartitionsDefinition(POINTS), "seed_id": StaticPartitionsDefinition(SEEDS)}
    ours = GridPartitions(dimensions)
    with partition_loading_context(dynamic_partitions_store=instance):
        first, second = ours.get_partition_keys(), ours.get_partition_keys()
        ranged = ours.get_partition_keys_in_range(PartitionKeyRange(first[0], first[-1]))
    assert first == second and first is not second  # a caller may change its list
    assert all(a is b for a, b in zip(first, second))
    assert all(a is b for a, b in zip(first, ranged)) and len(ranged) == len(first) == len(POINTS) * len(SEEDS)
    assert ours.get_partition_key_from_str(str(first[3])) is first[3]


def test_a_key_deleted_and_another_added_rebuilds_the_grid(instance):
    """The grid follows the dimensions' keys, not their count: one deleted and one added is a new grid."""
    name = f"swap_{next(NAMES)}"
    dimensions = {"sweep_point": DynamicPartitionsDefinition(name=name), "seed_id": StaticPartitionsDefinition(SEEDS[:2])}
    ours, dagsters = pair(dimensions)
    instance.add_dynamic_partitions(name, ["a", "b"])
    assert answers(ours, instance, [("0|a", "1|b")]) == answers(dagsters, instance, [("0|a", "1|b")])
    instance.delete_dynamic_partition(name, "a")
    instance.add_dynamic_partitions(name, ["c"])
    after = answers(ours, instance, [("0|b", "1|c")])
    assert after == answers(dagsters, instance, [("0|b", "1|c")])
    assert after[0] == ["0|b", "0|c", "1|b", "1|c"]


def test_a_key_holding_the_delimiter_is_refused_as_dagster_refuses_it(instance):
    name = f"pipes_{next(NAMES)}"
    dimensions = {"sweep_point": DynamicPartitionsDefinition(name=name),
                  "seed_id": DynamicPartitionsDefinition(name=f"{name}_seeds")}
    ours, dagsters = pair(dimensions)
    instance.add_dynamic_partitions(name, ["x", "y|z"])
    instance.add_dynamic_partitions(f"{name}_seeds", ["x|y", "z"])
    with partition_loading_context(dynamic_partitions_store=instance):
        assert [str(k) for k in ours.get_partition_keys()] == [str(k) for k in dagsters.get_partition_keys()]
        for definition in (ours, dagsters):
            with pytest.raises(Exception, match="Expected 2 partition keys"):
                definition.get_partition_key_from_str("x|y|z")
            assert not definition.has_partition_key("x|y|z")


def test_a_pickled_definition_leaves_its_grid_behind(instance):
    import pickle

    dimensions = {"sweep_point": StaticPartitionsDefinition(POINTS), "seed_id": StaticPartitionsDefinition(SEEDS)}
    ours = GridPartitions(dimensions)
    with partition_loading_context(dynamic_partitions_store=instance):
        ours.get_partition_keys()
        copy = pickle.loads(pickle.dumps(ours))
        assert copy._grid_state is None and copy == ours
        assert [str(k) for k in copy.get_partition_keys()] == [str(k) for k in ours.get_partition_keys()]
