"""``kind: acceptance``: a suite of benchmarks, each a baseline and an optimised side, judged
against bands on intervals.

Graph: trials (benchmark x repeat; both sides of a repeat measured back to back, in alternating
order) -> verdicts (every criterion, corrected across the suite; into the ledger) ->
suite_report (markdown and JSON report, one plot per benchmark).

A trial partition holds a repeat's two sides, not one side: a pair measured minutes apart (two
partitions run separately) would carry the machine's drift into the paired difference, so a
rerun of a partition measures both sides again together.
"""
from __future__ import annotations

import pandas as pd

from benchmark_assets.kinds.acceptance import ingest as inbox
from benchmark_assets.kinds.acceptance import schemas
from benchmark_assets.kinds.acceptance.analysis import (
    FAIL_ON,
    gate,
    upgraded_rows,
)
from benchmark_assets.kinds.acceptance.nodes import (
    MEASUREMENT_POOL,
    complete_pairs,
    suite_report,
    trials,
    verdicts,
)
from benchmark_assets.kinds.acceptance.spec import SIDES, AcceptanceSpec, AcceptanceStudy, load_acceptance
from benchmark_assets.kinds.acceptance.template import study_template
from benchmark_assets.kinds.base import (
    TRIAL,
    Dimension,
    Node,
    StudyKind,
)
from benchmark_assets.outcomes import RunOutcome


class AcceptanceKind(StudyKind):
    name = "acceptance"
    spec_model = AcceptanceSpec
    # Benchmarks and repeats are registered from the study file: adding either needs no reload.
    point = Dimension("benchmark", lambda study: study.benchmarks, registry="benchmarks")
    replicate = Dimension("repeat", lambda study: study.repeat_keys, registry="repeats")
    artifact_files = "report.md, verdicts.csv/json, trials.csv, plots/<benchmark>.png"
    inbox_files, inbox_help = inbox.PATTERNS, inbox.HELP
    fail_on = FAIL_ON

    def load(self, path, text, spec, name) -> AcceptanceStudy:
        return load_acceptance(path, text, spec, name)

    def template(self, name: str, target: str | None = None) -> str:
        return study_template(name, target)

    def nodes(self) -> list[Node]:
        judging = lambda study: (  # noqa: E731 - what the verdicts depend on besides the trials
            [c.model_dump() for b in study.spec.benchmarks.values() for c in b.criteria], study.spec.repeats,
            study.spec.confidence_level, study.spec.correction, study.spec.interval, study.spec.bootstrap_resamples,
            study.spec.rng_seed)
        return [
            Node("trials", trials, partitioned_by=TRIAL, schema=lambda study: schemas.trials_schema(),
                 # One measuring step at a time on this instance: two suites timed at once (a schedule
                 # and a CLI run, say) would each time the other's load.
                 pool=lambda study: MEASUREMENT_POOL,
                 version=lambda study: tuple(study.benchmark_fingerprint(b) for b in study.benchmarks),
                 description="One row per (benchmark, repeat, side): wall time per call (mean, p50, p95), peak "
                             "memory, the metrics the side returns, or its error. Both sides of a repeat are "
                             "measured back to back on the same seed, in alternating order."),
            Node("verdicts", verdicts, inputs=("trials",), version=judging,
                 schema=lambda study: schemas.verdicts_schema(),
                 description="One row per criterion: the effect with its interval (corrected across the suite), "
                             "met / not_met / inconclusive and why, the repeats that would settle it; in the ledger."),
            Node("suite_report", suite_report, inputs=("trials", "verdicts"),
                 description="The suite for review: 'N of M criteria met', each criterion with its interval, a plot "
                             "per benchmark; report.md, verdicts.csv/json."),
        ]

    def point_fingerprints(self, study: AcceptanceStudy) -> dict[str, str]:
        return {b: study.benchmark_fingerprint(b) for b in study.benchmarks}

    def upgraded(self, study: AcceptanceStudy, trials: pd.DataFrame) -> pd.DataFrame:
        """Rows of older versions named the form of a measurement (measured, pytest-benchmark
        rounds or summary) ``source``; that column now says where a row came from."""
        return upgraded_rows(super().upgraded(study, trials))

    def resumable_trials(self, study: AcceptanceStudy, checkpoint: pd.DataFrame) -> set[tuple[str, str]]:
        """Every run measures again, but one that was interrupted may take the repeats it measured
        on both sides (with the sides' current settings) instead of measuring them twice."""
        pairs = complete_pairs(study, checkpoint)
        return {(b, str(r)) for b, r in zip(pairs["benchmark"], pairs["repeat"])} if len(pairs) else set()

    def higher_is_better(self, study: AcceptanceStudy, subject: str, metric: str) -> bool | None:
        """The effect is the optimised side's ratio to the baseline side: lower is better where the
        criterion asks for less (a reduction, a speed-up, an increase capped from above), higher
        where a loss is capped; a two-sided band (an increase or change asked to fall within one)
        or a difference has no better direction."""
        criterion = next((c for c in study.criteria if c.subject == subject), None)
        if criterion is None:
            return None
        return {"reduction": False, "speedup_at_least": False, "max_increase": False,
                "max_loss": True}.get(criterion.spec.form)

    def rows_per_trial(self, study) -> int:
        return len(SIDES)

    def gate(self, study: AcceptanceStudy, read, fail_on: str) -> str:
        return gate(read("verdicts"), fail_on)

    def ingest(self, study: AcceptanceStudy, path, relative, new_replicate) -> pd.DataFrame:
        return inbox.ingest_benchmark_file(study, path, relative, new_replicate)

    def run_summary(self, outcome: RunOutcome) -> str:
        return (f"Ran {outcome.measured} sides in {outcome.measured // len(SIDES)} (benchmark, repeat) partitions "
                f"(measured, or read from pytest-benchmark) over {outcome.points} benchmarks in "
                f"{outcome.seconds:.1f} s ({len(outcome.stages)} Dagster runs).")
