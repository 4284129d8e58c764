"""What a run of a study did, as the CLI, the study's job and each kind's summary line read it."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def cli_command(study: str, subjects: Sequence[str] = (), tiers: Sequence[int] = (), force: bool = False,
                fail_on: str | None = None, program: str = "benchmark-assets") -> str:
    """The `benchmark-assets run` command that selects what these arguments select: a run's
    reason, the study job's arguments, and what `check` says to run."""
    return " ".join([f"{program} run {study}", *(f"--tier {t}" for t in tiers),
                     *([f"--constants {','.join(subjects)}"] if subjects else []), *(["--force"] if force else []),
                     *([f"--fail-on {fail_on}"] if fail_on else [])])


@dataclass(frozen=True)
class TrialResults:
    """How stored trial rows ended: how many, how many failed, and the most common errors
    (first line of each, with how many rows had it, most common first)."""

    rows: int = 0
    failed: int = 0
    errors: tuple[tuple[str, int], ...] = ()

    @property
    def all_failed(self) -> bool:
        """Nothing could be decided: every row failed."""
        return bool(self.rows) and self.failed == self.rows

    def text(self, *, markdown: bool = False) -> str:
        """How many failed and their most common errors with counts: the console's lines, or
        Markdown for the UI; empty when none failed."""
        if not self.failed:
            return ""
        head = f"{self.failed} of {self.rows} trials failed; most common errors:"
        errors = [f"- {count} x `{text}`" if markdown else f"  {count} x {text}" for text, count in self.errors]
        return "\n".join([head, *([""] if markdown else []), *errors])


@dataclass(frozen=True)
class StageRun:
    """One Dagster run of a study's run: its stage, how long it took, its run id."""

    label: str
    seconds: float
    run_id: str


@dataclass(frozen=True)
class RunOutcome:
    """A study's run: trial rows measured now, kept from an interrupted run, already up to date;
    the points it covered; its stages; how its current trials ended (this run's and earlier)."""

    study: Any
    seconds: float
    stages: tuple[StageRun, ...]
    measured: int
    kept: int
    up_to_date: int
    points: int
    results: TrialResults
    ingested: int = 0  # trials stored from the inbox (``benchmark-assets ingest``)
