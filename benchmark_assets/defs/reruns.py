"""Reruns as one backfill of exactly the partitions a change affects, and the study sensor's state:
per point what its trials depend on, the replicates, the nodes' versions (what ``changes_to_rerun``
compares from one tick to the next)."""
from __future__ import annotations

import hashlib
import json

from dagster import AssetKey, RunRequest

from benchmark_assets.defs.compat import AssetGraphSubset
from benchmark_assets.defs.partitions import partitions, trial_key
from benchmark_assets.defs.tags import REASON_TAG
from benchmark_assets.graph import StudyGraph
from benchmark_assets.kinds.base import POINT, REPLICATE, TRIAL


def rerun_request(graph: StudyGraph, trial_keys: list[tuple[str, str]], changed_nodes: set[str], *, reason: str,
                  tags: dict | None = None) -> RunRequest:
    """One asset backfill: ``trial_keys`` (point, replicate), the point and replicate partitions
    they touch (every current one for a node whose version changed), and every unpartitioned
    node. Trials run as a single run over their partitions, then what follows, in order."""
    parts = partitions(graph)
    points = list(dict.fromkeys(p for p, _ in trial_keys))
    replicates = list(dict.fromkeys(r for _, r in trial_keys))
    subsets, unpartitioned = {}, set()
    for node in graph.nodes.values():
        key = AssetKey(graph.asset_path(node.name))
        if node.partitioned_by == TRIAL:
            keys = [trial_key(graph, p, r) for p, r in trial_keys]
        elif node.partitioned_by in (POINT, REPLICATE):
            dimension, touched = (graph.point, points) if node.partitioned_by == POINT else (graph.replicate, replicates)
            keys = graph.keys(dimension) if node.name in changed_nodes else touched
        else:
            unpartitioned.add(key)
            continue
        if keys:
            subsets[key] = parts.of(node.partitioned_by).empty_subset().with_partition_keys(keys)
    subset = AssetGraphSubset(partitions_subsets_by_asset_key=subsets, non_partitioned_asset_keys=unpartitioned)
    return RunRequest.for_asset_graph_subset(subset, tags={**(tags or {}), REASON_TAG: reason[:200]})


def sensor_state(graph: StudyGraph) -> dict:
    """What the study sensor compares from one tick to the next."""
    trial_node = graph.trial_node.name
    return {"points": dict(graph.point_fingerprints), "replicates": graph.keys(graph.replicate),
            "versions": {name: v for name, v in graph.versions(per_point_trials=True).items() if name != trial_node},
            "hash": graph.study.spec_hash}


def cursor_of_an_earlier_version(previous: dict, state: dict) -> dict:
    """A cursor written before study kinds shared one sensor (its keys differ): what it tells of
    point fingerprints and replicates is kept, so an edit made across the upgrade still reruns its
    trials; an edit it cannot attribute (the file changed, no point did) reruns the analysis."""
    points = previous.get("points") if isinstance(previous.get("points"), dict) else previous.get("arms")
    if points is None and isinstance(previous.get("points"), list):  # load sweep: one fingerprint for all points
        points = dict.fromkeys(previous["points"], previous.get("trials"))
    replicates = previous.get("seeds") or previous.get("trial_keys") or state["replicates"]
    unchanged = previous.get("hash") == state["hash"]
    versions = state["versions"] if unchanged else dict.fromkeys(state["versions"], "")
    return {"points": points or {}, "replicates": list(replicates), "versions": versions, "hash": previous.get("hash")}


def changes_to_rerun(current: StudyGraph, previous: dict, state: dict) -> list[RunRequest]:
    """What an edit of the study file affects: a point whose fingerprint changed (or a new one)
    reruns all its trials, new replicates run on every point, a node whose version changed
    reruns (all its partitions); then everything unpartitioned after them."""
    replicates, known_replicates = state["replicates"], set(previous["replicates"])
    wanted = []
    for point, fingerprint in state["points"].items():
        if previous["points"].get(point) != fingerprint:
            wanted += [(point, r) for r in replicates]
        else:
            wanted += [(point, r) for r in replicates if r not in known_replicates]
    changed = {name for name, v in state["versions"].items() if previous["versions"].get(name) != v}
    lists_changed = list(previous["points"]) != list(state["points"]) or previous["replicates"] != replicates
    if not (wanted or changed or lists_changed):
        return []
    reason = (f"{len(wanted)} trials to run after a change to {current.path.name}" if wanted
              else f"analysis settings or lists changed in {current.path.name}")
    return [rerun_request(current, wanted, changed, reason=reason)]


def _state_key(study_name: str, digest: str) -> str:
    return f"benchmark_assets/study_state/{study_name}/{digest}"


def store_sensor_state(instance, study_name: str, state: dict) -> str:
    """Keep the study's state (every point's fingerprint...) in the instance's key-value store and
    return a one-line cursor naming it: the sensor page shows the cursor, so it stays short."""
    text = json.dumps(state)  # key order is part of the state: the order of points and replicates
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    instance.run_storage.set_cursor_values({_state_key(study_name, digest): text})
    return f"{digest}: {len(state['points'])} points, {len(state['replicates'])} replicates, study {state['hash']}"


def load_sensor_state(instance, study_name: str, cursor: str | None) -> dict | None:
    """The state a cursor names; a cursor written before states moved out of it is the state itself."""
    if not cursor:
        return None
    if cursor.lstrip().startswith("{"):
        return json.loads(cursor)
    key = _state_key(study_name, cursor.split(":", 1)[0])
    text = instance.run_storage.get_cursor_values({key}).get(key)
    return json.loads(text) if text else None

