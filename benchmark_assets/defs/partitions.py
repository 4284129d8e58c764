"""A study graph's Dagster partitions: one definition per dimension (dynamic ones registered at
run time under ``<study>__<dimension>``), their product for the trials, and key registration,
written once for the CLI, the sensors and the job."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy.exc
from dagster import (
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)

from benchmark_assets.defs.compat import GridPartitions
from benchmark_assets.graph import StudyGraph
from benchmark_assets.kinds.base import POINT, REPLICATE, TRIAL, Dimension


@dataclass(frozen=True)
class StudyPartitions:
    point: DynamicPartitionsDefinition | StaticPartitionsDefinition
    replicate: DynamicPartitionsDefinition | StaticPartitionsDefinition
    trials: MultiPartitionsDefinition

    def of(self, partitioned_by: str | None):
        return {POINT: self.point, REPLICATE: self.replicate, TRIAL: self.trials}.get(partitioned_by)


def _dimension(graph: StudyGraph, dimension: Dimension):
    if dimension.dynamic:
        return DynamicPartitionsDefinition(name=dimension.registry_name(graph.study))
    return StaticPartitionsDefinition(graph.keys(dimension))


def partitions(graph: StudyGraph) -> StudyPartitions:
    """The graph's partitions, built once per graph."""
    def build() -> StudyPartitions:
        point, replicate = _dimension(graph, graph.point), _dimension(graph, graph.replicate)
        return StudyPartitions(point, replicate, GridPartitions({graph.point.name: point,
                                                                           graph.replicate.name: replicate}))
    return graph.once("partitions", build)


def of_dimension(graph: StudyGraph, dimension: Dimension):
    parts = partitions(graph)
    return parts.point if dimension is graph.point else parts.replicate


def trial_key(graph: StudyGraph, point: str, replicate: str) -> MultiPartitionKey:
    return MultiPartitionKey({graph.point.name: str(point), graph.replicate.name: str(replicate)})


def trial_pairs_of(graph: StudyGraph, partition_keys) -> list[tuple[str, str]]:
    """(point, replicate) of Dagster's multi-partition keys."""
    return [(k.keys_by_dimension[graph.point.name], k.keys_by_dimension[graph.replicate.name]) for k in partition_keys]


def unregistered(instance, name: str, keys: Sequence[str]) -> list[str]:
    """The ``keys`` (in order) the dynamic partitions ``name`` do not hold yet on this instance."""
    known = set(instance.get_dynamic_partitions(name))
    return [k for k in keys if k not in known]


def _add(instance, name: str, keys: Sequence[str]) -> list[str]:
    """Add the ``keys`` the instance does not know yet; another process adding some of them at
    the same moment is not an error."""
    new = unregistered(instance, name, keys)
    for attempt in range(3):
        try:
            if new:
                instance.add_dynamic_partitions(name, new)
            return new
        except sqlalchemy.exc.IntegrityError:
            if attempt == 2:
                raise
            new = unregistered(instance, name, new)  # they added some: add the rest
    return new


def register(instance, graph: StudyGraph, trials: Mapping[str, Sequence[str]] | Sequence[tuple[str, str]] | None = None
             ) -> dict[str, list[str]]:
    """Register the dynamic partition keys the study's lists name (or, with ``trials``, point ->
    replicates, those trials use) that the instance does not know yet; the new keys per dimension."""
    return {dimension.name: _add(instance, dimension.registry_name(graph.study), keys)
            for dimension, keys in graph.keys_to_register(trials).items()}


def add_requests(instance, graph: StudyGraph, trials: Mapping[str, Sequence[str]] | Sequence[tuple[str, str]] | None = None
                 ) -> list:
    """The same as ``register``, as a sensor's add-partition requests (a sensor may not write)."""
    requests = []
    for dimension, keys in graph.keys_to_register(trials).items():
        if new := unregistered(instance, dimension.registry_name(graph.study), keys):
            requests.append(of_dimension(graph, dimension).build_add_request(new))
    return requests


def dimension_order(instance, graph: StudyGraph, dimension: Dimension) -> list[str]:
    """The dimension's keys in the order Dagster ranges over them on this instance."""
    if dimension.dynamic:
        return list(instance.get_dynamic_partitions(dimension.registry_name(graph.study)))
    return list(of_dimension(graph, dimension).get_partition_keys())
