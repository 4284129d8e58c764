"""The CLI's stages: the in-process Dagster runs that materialise some trials and what follows
them, one ranged run per rectangle of trial partitions."""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from dagster import AssetKey

from benchmark_assets.defs.partitions import dimension_order, trial_key
from benchmark_assets.defs.rectangle_ranges import contiguous_blocks, rectangles
from benchmark_assets.graph import StudyGraph
from benchmark_assets.kinds.base import POINT, TRIAL, Node


@dataclass(frozen=True)
class Stage:
    """One in-process Dagster run of the CLI: a label, the assets, a partition range, run config."""

    label: str
    asset_keys: list[AssetKey]
    start: str | None = None
    end: str | None = None
    run_config: dict | None = None


def plan_stages(graph: StudyGraph, instance, wanted: dict[str, list[str]], subjects: list[str],
                nodes: Collection[str] | None = None, every_partition: Collection[str] = (),
                stored: dict[str, set[str]] | None = None) -> list[Stage]:
    """The runs that materialise ``wanted`` trials (point -> replicates) and what follows them:
    per partitioned node, one ranged run per contiguous block (trials: per rectangle of points
    that need the same replicates); consecutive unpartitioned nodes share one run. ``nodes``
    (a follow-up's) limits the unpartitioned nodes to those named; point or replicate nodes in
    ``every_partition`` (their settings changed) run over all the study's partitions; those the
    trials read (a scenario catalog) run only where Dagster or the warehouse (``stored``: node ->
    partition keys with rows) lacks them, or over all after a change of their code version."""
    point_order = dimension_order(instance, graph, graph.point)
    replicate_order = dimension_order(instance, graph, graph.replicate)
    points = [p for p in point_order if wanted.get(p)]
    replicates = [r for r in replicate_order if any(r in wanted[p] for p in points)]
    stages: list[Stage] = []
    pending: list[Node] = []
    upstream, versions, stored = set(graph.upstream_of_trials()), graph.versions(), stored or {}

    def key(node: Node) -> AssetKey:
        return AssetKey(graph.asset_path(node.name))

    def flush() -> None:
        if pending:
            config = {"__".join(graph.asset_path(n.name)): {"config": {"subjects": list(subjects)}} for n in pending if n.selectable}
            stages.append(Stage(", ".join(n.name.replace("_", " ") for n in pending), [key(n) for n in pending],
                                run_config={"ops": config} if config else None))
            pending.clear()

    for node in graph.nodes.values():
        if node.partitioned_by is None:
            if nodes is None or node.name in nodes:
                pending.append(node)
            continue
        flush()
        label = node.name.replace("_", " ")
        if node.partitioned_by == TRIAL:
            def corner(pair: tuple[str, str]) -> str:
                return str(trial_key(graph, *pair))

            known = set(replicate_order)
            pairs = [(p, r) for p in points for r in wanted[p] if r in known]
            stages += [Stage(label, [key(node)], corner(first), corner(last))
                       for first, last in rectangles(pairs, point_order, replicate_order)]
        else:
            selected, order = (points, point_order) if node.partitioned_by == POINT else (replicates, replicate_order)
            dimension = graph.point if node.partitioned_by == POINT else graph.replicate
            listed = set(graph.keys(dimension)) | set(selected)
            current = [k for k in order if k in listed]
            if node.name in every_partition:
                selected = current
            elif node.name in upstream:
                selected = outdated(instance, key(node), selected, current, versions[node.name], stored.get(node.name))
            stages += [Stage(label, [key(node)], block[0], block[-1]) for block in contiguous_blocks(selected, order)]
    flush()
    return stages


def outdated(instance, asset_key: AssetKey, keys: list[str], order: list[str], version: str,
             stored: set[str] | None = None) -> list[str]:
    """Of an asset's partition ``keys``, those to materialise: the ones never materialised (or
    whose rows the warehouse lacks, when ``stored`` says which it has), or all of them (``order``)
    when its latest materialisation was of another code version."""
    if not keys:
        return []
    latest = instance.get_latest_materialization_event(asset_key)
    if latest is None or latest.asset_materialization.tags.get(CODE_VERSION_TAG) != version:
        return order
    done = instance.get_materialized_partitions(asset_key)
    return [k for k in keys if k not in done or (stored is not None and k not in stored)]


CODE_VERSION_TAG = "dagster/code_version"
