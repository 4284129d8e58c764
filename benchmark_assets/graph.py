"""A study bound to its kind, built once: its nodes by name, its two dimensions, the names of its
tables, sensors and jobs, its code versions and the partition keys it needs. Everything generic
(the Dagster wiring, the CLI, the inbox) takes a ``StudyGraph``; only here is a study's kind
looked up. No Dagster: the Dagster objects made from a graph (partitions, assets) are kept in its
``memo``, built by ``benchmark_assets.defs``.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark_assets.kinds import kind_of
from benchmark_assets.kinds.base import (
    FINGERPRINT,
    MAX_FOLLOWUPS,
    MEASURED,
    POINT,
    REPLICATE,
    SOURCE,
    TRIAL,
    Dimension,
    Followup,
    Node,
    StudyKind,
    fingerprints,
)
from benchmark_assets.kinds.capabilities import (
    FollowsUp,
    Gates,
    Ingests,
    KeepsTrials,
    ResumesTrials,
    SelectsSubjects,
    TracksLevels,
    capabilities,
)
from benchmark_assets.studies import load_study
from benchmark_assets.study_file import StudyError


def _version(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


@dataclass(frozen=True, eq=False)
class StudyGraph:
    """One study and its kind's graph. Compared by identity: a changed study file is a new graph."""

    study: Any
    kind: StudyKind
    nodes: Mapping[str, Node]  # upstream first
    memo: dict = field(default_factory=dict, repr=False)  # objects built from the graph, once each

    @classmethod
    def of(cls, study) -> StudyGraph:
        kind = kind_of(study)
        return cls(study, kind, {node.name: node for node in kind.nodes()})

    @classmethod
    def load(cls, name_or_path: str | Path) -> StudyGraph:
        """The graph of a study by name or path (``studies.load_study``; raises ``StudyError``)."""
        return cls.of(load_study(name_or_path))

    def once(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()``, made on the first call with ``key`` and kept with the graph."""
        if key not in self.memo:
            self.memo[key] = build()
        return self.memo[key]

    # -- what it is ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.study.name

    @property
    def path(self) -> Path:
        return self.study.path

    @property
    def point(self) -> Dimension:
        return self.kind.point

    @property
    def replicate(self) -> Dimension:
        return self.kind.replicate

    @property
    def dimensions(self) -> tuple[Dimension, Dimension]:
        return self.kind.point, self.kind.replicate

    @property
    def trial_node(self) -> Node:
        return next(n for n in self.nodes.values() if n.partitioned_by == TRIAL)

    def partitioned(self, by: str | None) -> list[Node]:
        return [n for n in self.nodes.values() if n.partitioned_by == by]

    def partition_columns(self, node: Node) -> list[str]:
        """The columns of a node's table that say which partition a row belongs to."""
        return {TRIAL: [self.point.name, self.replicate.name], POINT: [self.point.name],
                REPLICATE: [self.replicate.name]}.get(node.partitioned_by, [])

    def downstream(self, names: set[str]) -> list[str]:
        """The unpartitioned nodes that read (through inputs or deps, at any distance) one of
        ``names`` but are not among them, upstream first."""
        found: set[str] = set()
        for node in self.nodes.values():  # upstream first, so one pass sees every chain
            if node.partitioned_by is None and node.name not in names and set(node.inputs + node.deps) & (names | found):
                found.add(node.name)
        return [name for name in self.nodes if name in found]

    def upstream_of_trials(self) -> list[str]:
        """The nodes the trials read (through inputs or deps, at any distance): a rerun of trials
        does not change them, so they run only where missing or of an older code version."""
        found: set[str] = set()
        for node in reversed(list(self.nodes.values())):  # downstream first, so one pass sees every chain
            if node.partitioned_by == TRIAL or node.name in found:
                found |= set(node.inputs + node.deps)
        return [name for name in self.nodes if name in found]

    # -- names --------------------------------------------------------------------------------

    def table(self, node: str) -> str:
        """The warehouse table of a node (the IO manager writes ``<study>__<node>``)."""
        return f"{self.name}__{node}"

    @property
    def trials_table(self) -> str:
        return self.table(self.trial_node.name)

    @property
    def checkpoint_table(self) -> str:
        """Where a trials step checkpoints finished trials until its rows are stored for good."""
        return f"{self.trials_table}__checkpoint"

    def asset_path(self, node: str) -> list[str]:
        return [self.name, node]

    @property
    def study_sensor(self) -> str:
        return f"{self.name}__study_changes"

    @property
    def inbox_sensor(self) -> str:
        return f"{self.name}__inbox_watch"

    @property
    def nightly_schedule(self) -> str:
        return f"{self.name}__nightly"

    @property
    def run_job(self) -> str:
        return f"{self.name}__run_study"

    @property
    def point_fingerprints(self) -> dict[str, str]:
        """The kind's ``point_fingerprints`` of the study, worked out once."""
        return self.once("point_fingerprints", lambda: dict(self.kind.point_fingerprints(self.study)))

    def upgraded(self, trials: pd.DataFrame) -> pd.DataFrame:
        """Stored trial rows as this version reads them (``StudyKind.upgraded``)."""
        return self.kind.upgraded(self.study, trials) if len(trials.columns) else trials

    def stamped(self, trials: pd.DataFrame) -> pd.DataFrame:
        """Trial rows with the fingerprint and source every stored trial carries: where the kind
        left them out, its point's fingerprint and ``measured``."""
        if trials.empty:
            return trials
        trials = self.upgraded(trials)
        points = trials[self.point.name].astype(str).map(self.point_fingerprints)
        return trials.assign(**{FINGERPRINT: fingerprints(trials).where(lambda f: f.notna(), points),
                                SOURCE: trials.get(SOURCE, pd.Series(None, index=trials.index, dtype=object))
                                .where(lambda s: s.notna(), MEASURED)})

    def reader(self, warehouse) -> Callable[[str], pd.DataFrame]:
        """``read(node)``: a node's stored table, as kinds' ``followup`` / ``gate`` take it."""
        return lambda node: warehouse.read(self.table(node))

    # -- code versions ------------------------------------------------------------------------

    def versions(self, *, per_point_trials: bool = False) -> dict[str, str]:
        """Each node's code version: its upstream versions, then what it depends on itself (a tuple
        counts part by part), so a change marks it and everything after it stale in the UI.

        ``per_point_trials``: leave out what the trials depend on; the study sensor tracks that
        per point (``point_fingerprints``), so a change to some points reruns only theirs."""
        versions: dict[str, str] = {}
        for node in self.nodes.values():
            own = () if per_point_trials and node.partitioned_by == TRIAL else node.version(self.study)
            versions[node.name] = _version(*(versions[n] for n in (*node.inputs, *node.deps)),
                                           *(own if isinstance(own, tuple) else (own,)))
        return versions

    def pools(self) -> list[str]:
        """The concurrency pools the study's assets run in."""
        return [pool for node in self.nodes.values() if node.pool and (pool := node.pool(self.study))]

    # -- what the kind may do: its capabilities, or what a kind without one does ---------------

    @property
    def capabilities(self) -> list[str]:
        return capabilities(self.kind)

    def points(self, subjects: Sequence[str] = (), tiers: Sequence[int] = ()) -> list[str]:
        """The point keys a run covers; a kind without subjects refuses a selection."""
        if isinstance(self.kind, SelectsSubjects):
            return self.kind.points(self.study, subjects, tiers)
        if subjects or tiers:
            raise StudyError(self.path, "--constants" if subjects else "--tier",
                             f"a {self.kind.name} study has no constants to select", "run it without --constants/--tier")
        return self.keys(self.point)

    def subjects(self, subjects: Sequence[str] = (), tiers: Sequence[int] = ()) -> list[str]:
        """The subjects a selection decides on (passed to selectable nodes); empty means all."""
        if isinstance(self.kind, SelectsSubjects):
            return self.kind.subjects(self.study, subjects, tiers)
        return list(subjects)

    def completed_trials(self, trials: pd.DataFrame) -> set[tuple[str, str]]:
        """(point, replicate) pairs whose stored trials are up to date; none for a kind that
        measures again every run."""
        if not isinstance(self.kind, KeepsTrials):
            return set()
        return self.kind.completed_trials(self.study, self.upgraded(trials))

    def resumable_trials(self, checkpoint: pd.DataFrame) -> set[tuple[str, str]]:
        """(point, replicate) pairs an interrupted run checkpointed that the next run may take."""
        if isinstance(self.kind, ResumesTrials):
            return self.kind.resumable_trials(self.study, self.upgraded(checkpoint))
        return self.completed_trials(checkpoint)

    def followup(self, read: Callable[[str], pd.DataFrame]) -> Followup | None:
        return self.kind.followup(self.study, read) if isinstance(self.kind, FollowsUp) else None

    @property
    def followup_limit(self) -> int:
        """How many follow-ups one run may make: ``MAX_FOLLOWUPS``, or what the kind's
        ``followup_limit(study)`` says its decisions can need (a search one probe at a time)."""
        limit = getattr(self.kind, "followup_limit", None)
        return max(MAX_FOLLOWUPS, int(limit(self.study))) if limit else MAX_FOLLOWUPS

    @property
    def fail_on(self) -> tuple[str, ...]:
        """The verdicts `run --fail-on` can gate on; () for a kind without a gate."""
        return tuple(self.kind.fail_on) if isinstance(self.kind, Gates) else ()

    def gate(self, read: Callable[[str], pd.DataFrame], fail_on: str) -> str:
        return self.kind.gate(self.study, read, fail_on)

    @property
    def inbox_files(self) -> tuple[str, ...]:
        """Glob patterns of the result files the kind ingests from the inbox; () for none."""
        return tuple(self.kind.inbox_files) if isinstance(self.kind, Ingests) else ()

    @property
    def inbox_help(self) -> str:
        return getattr(self.kind, "inbox_help", "") if isinstance(self.kind, Ingests) else ""

    def ingest(self, path: Path, relative, new_replicate: Callable[[], int]) -> pd.DataFrame:
        return self.kind.ingest(self.study, path, relative, new_replicate)

    def higher_is_better(self, subject: str, metric: str) -> bool | None:
        """Whether a larger ledger effect is better, where it is a level tracked across commits."""
        if isinstance(self.kind, TracksLevels):
            return self.kind.higher_is_better(self.study, subject, metric)
        return None

    # -- partition keys -----------------------------------------------------------------------

    def keys(self, dimension: Dimension) -> list[str]:
        return dimension.keys(self.study)

    def keys_to_register(self, trials: Mapping[str, Sequence[str]] | Sequence[tuple[str, str]] | None = None
                         ) -> dict[Dimension, list[str]]:
        """Per dynamic dimension, the keys the study's lists name, or those ``trials`` use (point
        -> replicates, or (point, replicate) pairs, each key in the order it first comes); the
        Dagster side adds the ones an instance lacks."""
        if trials is not None and not isinstance(trials, Mapping):  # pairs: keep their order
            pairs = [(str(p), str(r)) for p, r in trials]
            return {dimension: list(dict.fromkeys(pair[dimension is self.replicate] for pair in pairs))
                    for dimension in self.dimensions if dimension.dynamic}
        out = {}
        for dimension in self.dimensions:
            if not dimension.dynamic:
                continue
            if trials is None:
                out[dimension] = self.keys(dimension)
            elif dimension is self.point:
                out[dimension] = list(dict.fromkeys(str(p) for p in trials))
            else:
                out[dimension] = list(dict.fromkeys(str(r) for rs in trials.values() for r in rs))
        return out


def trials_by_point(keys: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """(point, replicate) pairs as point -> replicates, in their order."""
    out: dict[str, list[str]] = {}
    for point, replicate in keys:
        out.setdefault(str(point), []).append(str(replicate))
    return out


def trial_pairs(trials: Mapping[str, Sequence[str]]) -> set[tuple[str, str]]:
    """The (point, replicate) pairs of a point -> replicates mapping, as text (partition keys are text)."""
    return {(str(p), str(r)) for p, replicates in trials.items() for r in replicates}


__all__ = ["StudyGraph", "trial_pairs", "trials_by_point"]
