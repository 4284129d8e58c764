"""What a kind may do beyond the core (``kinds.base.StudyKind``), each an optional protocol the
CLI and the Dagster wiring look for: a kind implements the members of a capability it has, and
nothing of those it has not. ``StudyGraph`` (``benchmark_assets.graph``) answers for a kind
without one (no selection, no follow-ups, no gate, nothing ingested, trials always rerun)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

import pandas as pd

from benchmark_assets.kinds.base import Followup


@runtime_checkable
class SelectsSubjects(Protocol):
    """A run may decide on some subjects only (the CLI's ``--constants`` / ``--tier``)."""

    def points(self, study, subjects: Sequence[str] = (), tiers: Sequence[int] = ()) -> list[str]:
        """The point keys a run over this selection covers; StudyError for a subject or tier the study lacks."""

    def subjects(self, study, subjects: Sequence[str] = (), tiers: Sequence[int] = ()) -> list[str]:
        """The subjects it decides on (passed to selectable nodes); empty means all."""


@runtime_checkable
class KeepsTrials(Protocol):
    """Stored trials stay valid across runs while their point's fingerprint holds."""

    def completed_trials(self, study, trials: pd.DataFrame) -> set[tuple[str, str]]:
        """(point, replicate) pairs whose stored trials are up to date, so a run skips them."""


@runtime_checkable
class ResumesTrials(Protocol):
    """An interrupted run's checkpointed trials may be taken instead of run again (by default,
    those ``KeepsTrials.completed_trials`` counts; none for a kind without it)."""

    def resumable_trials(self, study, checkpoint: pd.DataFrame) -> set[tuple[str, str]]: ...


@runtime_checkable
class FollowsUp(Protocol):
    """Decisions that ask for more trials once made (validation rounds, combined changes)."""

    def followup(self, study, read: Callable[[str], pd.DataFrame]) -> Followup | None:
        """What the stored decisions ask for next (``read(node)``: a node's stored table), or None."""


@runtime_checkable
class Gates(Protocol):
    """Verdicts a CI job can gate on (`benchmark-assets run --fail-on <verdict>`)."""

    fail_on: tuple[str, ...]

    def gate(self, study, read: Callable[[str], pd.DataFrame], fail_on: str) -> str:
        """Why the run must exit non-zero, or '' if it passes."""


@runtime_checkable
class Ingests(Protocol):
    """Result files of other tools, put in the study's inbox, become trials (``benchmark_assets.inbox``)."""

    inbox_files: tuple[str, ...]  # glob patterns under the inbox folder; ``inbox_help`` (optional) says what to put where

    def ingest(self, study, path: Path, relative: PurePosixPath, new_replicate: Callable[[], int]) -> pd.DataFrame:
        """The trial rows of one file; IngestError saying why a file cannot be used."""


@runtime_checkable
class TracksLevels(Protocol):
    """Ledger effects that are levels worth tracking across commits (``benchmark_assets.regressions``)."""

    def higher_is_better(self, study, subject: str, metric: str) -> bool | None: ...


CAPABILITIES = (SelectsSubjects, KeepsTrials, ResumesTrials, FollowsUp, Gates, Ingests, TracksLevels)


def capabilities(kind) -> list[str]:
    """The names of the capabilities a kind has."""
    return [c.__name__ for c in CAPABILITIES if isinstance(kind, c)]
