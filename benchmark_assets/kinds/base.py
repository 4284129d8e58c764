"""What a study kind is: the protocol every kind implements, and the pieces its asset graph is made of.

A kind says, in plain Python (no Dagster): its spec, the two partition dimensions of its trials
(which setting, which repeat), the assets of its graph as ``Node``s (what each computes from its
inputs, how it is partitioned, its schema, what its code version depends on), what makes trials
stale, and the ledger entries its verdicts make. ``benchmark_assets.graph`` binds a study to its
kind, and ``benchmark_assets.defs`` turns any graph into Dagster assets, checks, sensors, a
schedule and the CLI's stages; neither asks which kind it holds.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pandas as pd
from pydantic import BaseModel

from benchmark_assets.ledger import LedgerEntry
from benchmark_assets.outcomes import RunOutcome

# How a node is partitioned: not at all, by the point dimension, by the replicate dimension, or
# by both (a trial: one setting on one scenario / seed / repeat).
POINT, REPLICATE, TRIAL = "point", "replicate", "trial"

MAX_FOLLOWUPS = 50  # a kind that keeps asking for more stops here, with a warning

# The columns every trial table has besides its two dimensions; failed trials keep their error.
TRIAL_STATUS_COLUMNS = ("trial_seed", "status", "error")
# What a trial row was measured with (compared with what the study asks for now: ``is_current``)
# and where it came from: ``measured``, or ``inbox:<file>`` for a row ingested from a result file.
FINGERPRINT, SOURCE = "fingerprint", "source"
MEASURED, INBOX_SOURCE = "measured", "inbox:"
# Column names older versions gave the fingerprint, read as ``fingerprint`` where it is missing.
LEGACY_FINGERPRINTS = ("arm_fingerprint", "side_fingerprint", "study_fingerprint", "estimator_fingerprint")

# Replicate keys of trials ingested from result files (``benchmark_assets.inbox``) start here, so
# they never meet the keys a study measures (its seeds, repeats, trial numbers).
INBOX_BASE = 1_000_000


class TemplateRefused(ValueError):
    """``benchmark-assets new`` cannot write this study: the argument at fault, why, and the fix."""

    def __init__(self, argument: str, problem: str, fix: str):
        self.argument, self.problem, self.fix = argument, problem, fix
        super().__init__(problem)


def no_own_target(kind: str, target: str | None) -> None:
    """For a kind whose template cannot take the user's target from the command line."""
    if target is not None:
        raise TemplateRefused("--target", f"a {kind} study names its target in its own way",
                              "drop --target and edit the target in the file it writes")


class IngestError(ValueError):
    """A result file a kind cannot ingest; the message says what is wrong and what to do."""


class Markdown(str):
    """Metadata text the UI renders as markdown (a report, a table, a diff)."""


@dataclass(frozen=True)
class Dimension:
    """One partition dimension of a kind's trials: its name (also the trial table's column), how
    its keys follow from a study, and whether they are registered at run time (dynamic: the
    CLI and the study sensor add new keys, so a growing study needs no reload of the definitions)
    under ``<study>__<registry>``, or fixed when the definitions load (static)."""

    name: str
    keys: Callable[[Any], list[str]]
    dynamic: bool = True
    registry: str = ""

    def registry_name(self, study) -> str:
        return f"{study.name}__{self.registry or self.name}"


class Step(Protocol):
    """What a node's compute function sees of the run it is part of."""

    run_id: str
    # TRIAL nodes: (point, replicate) pairs; POINT / REPLICATE nodes: keys; unpartitioned: [].
    partition_keys: list
    subjects: list[str]  # the subjects a run decides on (CLI --constants); empty: all
    warehouse_url: str  # the results database (a node that keeps state of its own there, e.g. Optuna's)

    def log(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def progress(self, label: str) -> Callable[[int, int], None]: ...

    def checkpoint(self, rows: pd.DataFrame) -> None:
        """TRIAL nodes: store finished trial rows now, so a run killed later keeps them."""

    def checkpointed(self) -> pd.DataFrame:
        """TRIAL nodes: rows an earlier run checkpointed for this step's partitions but never
        finished storing (it was killed); empty if none."""


@dataclass(frozen=True)
class NodeResult:
    """What a node computed: its table (stored in the warehouse and checked against the node's
    schema), metadata for the UI (``Markdown`` renders, a ``Path`` links), ledger entries."""

    frame: pd.DataFrame
    metadata: dict = field(default_factory=dict)
    ledger: Sequence[LedgerEntry] = ()


@dataclass(frozen=True)
class Followup:
    """More trials a kind's decisions ask for once a run has made them (a combination of accepted
    changes to validate together, another round of validation scenarios): ``trials`` maps point
    keys to replicate keys (new keys are registered as partitions); after them, the nodes in
    ``nodes`` are computed again (the POINT and REPLICATE nodes of the new trials always are).
    Once no follow-up is left, the unpartitioned nodes that read any of those (a report) run once.
    ``reason`` says why, in the run's log and the UI."""

    reason: str
    trials: dict[str, list[str]]
    nodes: tuple[str, ...]


def _nothing(study) -> tuple:
    return ()


@dataclass(frozen=True)
class Node:
    """One asset of a kind's graph. ``compute(study, step, **inputs) -> NodeResult`` receives the
    DataFrames of ``inputs`` (the partitions it needs: a POINT node gets every trial of its
    points, a TRIAL node the REPLICATE rows of its replicates, an unpartitioned node everything).
    ``deps`` order the graph without passing data. ``version`` is what the node's own result
    depends on; the machinery chains it with its upstream versions into the code version."""

    name: str
    compute: Callable[..., NodeResult]
    description: str
    partitioned_by: str | None = None
    inputs: tuple[str, ...] = ()
    deps: tuple[str, ...] = ()
    schema: Callable[[Any], Any] | None = None  # study -> pandera DataFrameSchema
    version: Callable[[Any], Any] = _nothing
    pool: Callable[[Any], str | None] | None = None  # study -> Dagster concurrency pool
    selectable: bool = False  # decides per subject; takes the run's subject selection


class StudyKind(ABC):
    """A kind of study. Subclass it, fill in the core (the class attributes and the three abstract
    methods), register an instance (``kinds.register_kind`` or the ``benchmark_assets.kinds``
    entry point group). What a kind may do beyond the core (select subjects, keep trials across
    runs, follow up, gate a CI job, ingest result files, track levels across commits) is an
    optional capability (``kinds.capabilities``): implement its members and it is found."""

    name: ClassVar[str]  # the study file's ``kind:``
    spec_model: ClassVar[type[BaseModel]]  # pydantic model of the file, with ``kind: Literal[name]``
    point: ClassVar[Dimension]  # which setting (sweep point, arm)
    replicate: ClassVar[Dimension]  # which repeat (scenario seed id, seed, trial number)
    artifact_files: ClassVar[str] = "report.md"  # what the CLI says is in the artifacts folder

    @abstractmethod
    def load(self, path: Path, text: str, spec: BaseModel, name: str):
        """The loaded study (a ``StudyFile``) from its validated spec; cross-field checks raise StudyError."""

    @abstractmethod
    def nodes(self) -> list[Node]:
        """The assets of a study of this kind, upstream first; exactly one is partitioned by TRIAL."""

    @abstractmethod
    def point_fingerprints(self, study) -> dict[str, str]:
        """Per point key: what its trials depend on. A changed fingerprint reruns the point's trials."""

    # -- optional, with defaults ------------------------------------------------------------

    def extras(self, spec: BaseModel) -> dict[str, str]:
        """The optional installs (``benchmark_assets.extras``) a study of this spec needs, each with
        the field that needs it; the loader refuses the study, naming the extra, when one is missing."""
        return {}

    def template(self, name: str, target: str | None = None) -> str:
        """A commented study of this kind named ``name`` that is valid and runs as written
        (``benchmark-assets new``); ``target``: the user's own, where the kind takes one. A kind
        without one says so."""
        raise TemplateRefused("kind", f"the {self.name} kind offers no template",
                              "copy a study of that kind, or see its package's documentation")

    def rows_per_trial(self, study) -> int:
        """Trial rows one (point, replicate) partition holds (repeats within a partition)."""
        return 1

    def decided_nothing(self, study, read: Callable[[str], pd.DataFrame]) -> str:
        """Why a run whose trials ran decided nothing at all (e.g. no trial reported the decision
        metric), or ''; the CLI then exits 3 as when every trial fails. ``read(node)`` is a node's
        stored table."""
        return ""

    def upgraded(self, study, trials: pd.DataFrame) -> pd.DataFrame:
        """Stored trial rows as this version of the kind reads them (rows an older version wrote
        may name or mean a column otherwise); by default, the shared fingerprint columns moved."""
        return upgraded(trials)

    def run_summary(self, outcome: RunOutcome) -> str:
        """The CLI's line after a run."""
        return (f"Ran {outcome.measured} trials over {outcome.points} sweep points in "
                f"{outcome.seconds:.1f} s ({len(outcome.stages)} Dagster runs).")


def common_errors(trials: pd.DataFrame, limit: int = 5) -> list[tuple[str, int]]:
    """The most common errors of a trial table's failed rows (first line of each, cut at 200
    characters) with how many trials had each, most common first."""
    if trials.empty or "status" not in trials:
        return []
    errors = trials.loc[trials["status"] != "ok", "error"].fillna("").astype(str)
    firsts = errors.map(lambda e: (e.strip().splitlines() or ["(no error recorded)"])[0][:200])
    return [(text, int(n)) for text, n in firsts.value_counts().head(limit).items()]


def errors_markdown(trials: pd.DataFrame, limit: int = 5) -> list[str]:
    """A report section: how many trials failed and their most common errors with counts."""
    found = common_errors(trials, limit)
    if not found:
        return []
    failed = int((trials["status"] != "ok").sum())
    lines = [f"## Failed trials: {failed} of {len(trials)}", "", "| trials | error |", "|---:|---|"]
    lines += [f"| {n} | {text.replace('|', '/')} |" for text, n in found]
    return lines + [""]


def trial_columns(point: str, replicate: str, *extra: str) -> tuple[str, ...]:
    """A kind's trial table columns: its two dimensions, its own bookkeeping, then the shared
    fingerprint, source and status columns. Every other column is a metric."""
    return (point, replicate, *extra, FINGERPRINT, SOURCE, *TRIAL_STATUS_COLUMNS)


def fingerprints(trials: pd.DataFrame) -> pd.Series:
    """Each row's fingerprint (from a column an older version named otherwise where it is missing)."""
    found = trials[FINGERPRINT] if FINGERPRINT in trials else pd.Series(None, index=trials.index, dtype=object)
    for legacy in LEGACY_FINGERPRINTS:
        if legacy in trials:
            found = found.where(found.notna(), trials[legacy])
    return found


def upgraded(trials: pd.DataFrame) -> pd.DataFrame:
    """Trial rows as this version stores them: a fingerprint an older version kept under another
    name (``LEGACY_FINGERPRINTS``) moves to ``fingerprint``, so it is never taken for a metric."""
    legacy = [c for c in LEGACY_FINGERPRINTS if c in trials]
    if not legacy:
        return trials
    return trials.assign(**{FINGERPRINT: fingerprints(trials)}).drop(columns=legacy)


def known_source(trials: pd.DataFrame) -> pd.Series:
    """Rows whose ``source`` is one this version writes (``measured`` or ``inbox:<file>``);
    rows of older versions have none, or a column of the same name that meant something else."""
    if SOURCE not in trials:
        return pd.Series(False, index=trials.index)
    text = trials[SOURCE].astype(str)
    return (trials[SOURCE].notna() & ((text == MEASURED) | text.str.startswith(INBOX_SOURCE))).astype(bool)


def is_ingested(trials: pd.DataFrame, legacy: pd.Series | None = None) -> pd.Series:
    """Rows ingested from a result file (``source`` is ``inbox:<file>``) rather than measured. A
    row without a source of this version takes ``legacy`` (how the kind told before, e.g. the
    inbox's key range or a command naming the file), else counts as measured."""
    known = known_source(trials)
    found = known & trials.get(SOURCE, pd.Series("", index=trials.index)).astype(str).str.startswith(INBOX_SOURCE)
    if legacy is not None:
        found = found.where(known, legacy.reindex(trials.index).fillna(False).astype(bool))
    return found.astype(bool)


def is_current(trials: pd.DataFrame, expected: pd.Series, own: pd.Series, legacy: pd.Series | None = None
               ) -> pd.Series:
    """The one rule for "is this stored trial still current?": its fingerprint is the one the
    study asks for now for that row (``expected``, aligned with ``trials``; None for a point the
    study no longer has), and it is one of the study's own repeats (``own``) or was ingested
    (``is_ingested``, with ``legacy`` for rows of older versions)."""
    if trials.empty:
        return pd.Series(False, index=trials.index)
    ingested = is_ingested(trials, legacy)
    return ((fingerprints(trials) == expected) & expected.notna() & (own | ingested)).astype(bool)


def resumed_trials(step: Step, kept: pd.DataFrame, columns: tuple[str, str],
                   run: Callable[[list[tuple[str, Any]], Callable[[dict], None]], pd.DataFrame],
                   replicate_type: Callable[[str], Any] = int) -> NodeResult:
    """A TRIAL step that resumes an interrupted run: ``kept`` are checkpointed rows the kind still
    counts as valid; ``run(keys, on_row)`` runs the step's other trials, passing each finished row
    to ``on_row``, which checkpoints it at once. Returns every row, kept ones first. Replicate keys
    reach ``run`` as ``replicate_type`` (whole numbers by default: seeds, repeats, trial numbers)."""
    point, replicate = columns
    wanted = [(p, replicate_type(r)) for p, r in step.partition_keys]
    wanted_set = set(wanted)
    if len(kept):
        kept = kept[[(p, replicate_type(r)) in wanted_set for p, r in zip(kept[point], kept[replicate])]]
    done = {(p, replicate_type(r)) for p, r in zip(kept[point], kept[replicate])} if len(kept) else set()
    if done:
        step.log(f"{len(done)} trials finished by an earlier, interrupted run are kept, not run again")
    frame = run([k for k in wanted if k not in done], lambda row: step.checkpoint(pd.DataFrame([row])))
    if done:
        frame = pd.concat([kept.dropna(axis=1, how="all"), frame], ignore_index=True)
    return NodeResult(frame.reset_index(drop=True), {"kept_from_checkpoint": len(done)})
