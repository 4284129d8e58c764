"""What a rerun covers, without Dagster: the trials and steps an edit of a study file touches
(the study sensor compares the study's state from one tick to the next), or those an inbox look
brought. The ``<study>__run_study`` job runs a ``Rerun`` as the CLI runs a study: those trials,
what follows them, and the follow-ups their decisions ask for."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from benchmark_assets.graph import StudyGraph


@dataclass(frozen=True)
class Rerun:
    """``points``: every trial of each reruns; ``replicates``: run on every point; ``trials``:
    point -> replicates besides; ``steps``: every partition of each reruns (their settings
    changed). Unpartitioned steps always run after the trials."""

    points: Sequence[str] = ()
    replicates: Sequence[str] = ()
    trials: Mapping[str, Sequence[str]] = field(default_factory=dict)
    steps: Sequence[str] = ()
    reason: str = ""

    def wanted(self, graph: StudyGraph) -> dict[str, list[str]]:
        """Point -> replicates to run, in the study's order. Points, replicates and steps the study
        no longer has (the file changed again since the rerun was asked for: the sensor asks for
        what the new edit needs) are left out; ``dropped`` names them. ``trials`` may name points
        and replicates the lists lack (ingested ones): they are registered as they run."""
        points, replicates = graph.keys(graph.point), graph.keys(graph.replicate)
        known_points, known_replicates = set(points), set(replicates)
        out: dict[str, list[str]] = {}
        for point in [*points, *(p for p in self.trials if p not in known_points)]:
            extra = [str(r) for r in self.trials.get(point, ())]
            base = replicates if point in self.points else [r for r in self.replicates if r in known_replicates]
            if chosen := list(dict.fromkeys([*base, *extra])):
                out[point] = chosen
        return out

    def dropped(self, graph: StudyGraph) -> list[str]:
        """What the rerun names that the study no longer has."""
        points, replicates = set(graph.keys(graph.point)), set(graph.keys(graph.replicate))
        return ([p for p in self.points if p not in points] + [r for r in self.replicates if r not in replicates]
                + [s for s in self.steps if s not in graph.nodes])

    def known_steps(self, graph: StudyGraph) -> list[str]:
        return [s for s in self.steps if s in graph.nodes]

    def config(self) -> dict:
        """As the job's ``only`` config."""
        return {"points": list(self.points), "replicates": list(self.replicates),
                "trials": {p: list(rs) for p, rs in self.trials.items()}, "steps": list(self.steps)}

    @property
    def size(self) -> str:
        parts = [f"{len(self.points)} points" if self.points else "",
                 f"{len(self.replicates)} new replicates" if self.replicates else "",
                 f"{sum(len(r) for r in self.trials.values())} trials" if self.trials else "",
                 f"steps {', '.join(self.steps)}" if self.steps else ""]
        return ", ".join(p for p in parts if p) or "the analysis"


def sensor_state(graph: StudyGraph) -> dict:
    """What the study sensor compares from one tick to the next: per point what its trials
    depend on, the replicates, the steps' versions, the file's hash."""
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


def edit_between(graph: StudyGraph, previous: dict, state: dict) -> Rerun | None:
    """What an edit of the study file affects, None for nothing: a point whose fingerprint
    changed (or a new one) reruns all its trials, new replicates run on every point, a step whose
    version changed reruns all its partitions; the unpartitioned steps run after them."""
    if set(previous) != set(state):
        previous = cursor_of_an_earlier_version(previous, state)
    replicates, known = state["replicates"], set(previous["replicates"])
    points = [p for p, fingerprint in state["points"].items() if previous["points"].get(p) != fingerprint]
    new = [r for r in replicates if r not in known]
    steps = [name for name, v in state["versions"].items() if previous["versions"].get(name) != v]
    lists_changed = list(previous["points"]) != list(state["points"]) or previous["replicates"] != replicates
    if not (points or new or steps or lists_changed):
        return None
    if not (points or new or steps):  # only the order of points or replicates: the analysis reads it
        steps = [n.name for n in graph.partitioned(None)]
    trials = len(points) * len(replicates) + (len(state["points"]) - len(points)) * len(new)
    reason = (f"{trials} trials to run after a change to {graph.path.name}" if trials
              else f"analysis settings or lists changed in {graph.path.name}")
    return Rerun(points=points, replicates=new, steps=steps, reason=reason)


__all__ = ["Rerun", "cursor_of_an_earlier_version", "edit_between", "sensor_state"]
