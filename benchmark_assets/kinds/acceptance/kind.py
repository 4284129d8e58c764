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

from benchmark_assets import artifacts
from benchmark_assets.kinds.acceptance import ingest as inbox
from benchmark_assets.kinds.acceptance import schemas
from benchmark_assets.kinds.acceptance.analysis import (
    FAIL_ON,
    current_trials,
    format_suite_report,
    gate,
    headline,
    judge_suite,
)
from benchmark_assets.kinds.acceptance.report import plot_suite
from benchmark_assets.kinds.acceptance.spec import SIDES, AcceptanceSpec, AcceptanceStudy, load_acceptance
from benchmark_assets.kinds.acceptance.trials import run_acceptance_trials
from benchmark_assets.kinds.base import (
    TRIAL,
    Dimension,
    LedgerEntry,
    Markdown,
    Node,
    Product,
    StudyKind,
    resumed_trials,
)
from benchmark_assets.outcomes import RunOutcome

MEASUREMENT_POOL = "acceptance_measurements"


def complete_pairs(study: AcceptanceStudy, trials: pd.DataFrame) -> pd.DataFrame:
    """Rows of repeats whose two sides both succeeded with the sides' current settings."""
    current = current_trials(study, trials)
    if current.empty:
        return current
    ok = current[current["status"] == "ok"]
    sides = ok.groupby(["benchmark", "repeat"])["side"].transform("nunique")
    return ok[sides == len(SIDES)].reset_index(drop=True)


def trials(study: AcceptanceStudy, step) -> Product:
    """Each measured row is checkpointed at once; a repeat an interrupted run measured on both
    sides is kept, a half-measured one is measured again on both."""
    def run(keys, on_row):
        # A partition's rows are checkpointed together (checkpointing replaces a partition's rows:
        # row by row, the second side would replace the first).
        return run_acceptance_trials(study, keys, progress=step.progress(f"{study.name} trials"),
                                     on_pair=lambda pair: step.checkpoint(pd.DataFrame(pair)))

    return resumed_trials(step, complete_pairs(study, step.checkpointed()), ("benchmark", "repeat"), run)


def ledger_entries(study: AcceptanceStudy, verdicts: pd.DataFrame) -> list[LedgerEntry]:
    """One decision per criterion: its subject is 'benchmark: criterion', the sides its baseline
    and proposal; the adjusted interval is the one corrected across the suite."""
    entries = []
    for row in verdicts.itertuples():
        bench = study.spec.benchmarks[row.benchmark]
        entries.append(LedgerEntry(
            subject=row.subject, decision=row.verdict, reason=row.reason, metric=row.measure,
            baseline=bench.baseline.model_dump(), proposal=bench.optimised.model_dump(), effect=float(row.estimate),
            ci_low=float(row.raw_ci_low), ci_high=float(row.raw_ci_high), adjusted_ci_low=float(row.ci_low),
            adjusted_ci_high=float(row.ci_high), confidence_level=float(row.raw_confidence_level),
            p_value=float(row.p_value), p_adjusted=float(row.p_adjusted),
            details={"asked": row.asked, "effect": row.effect, "region": [row.region_low, row.region_high],
                     "n_pairs": int(row.n_pairs), "n_failed": int(row.n_failed),
                     "repeats_needed": int(row.repeats_needed), "correction": study.spec.correction,
                     "interval_level": float(row.confidence_level)},
        ))
    return entries


def verdicts(study: AcceptanceStudy, step, trials: pd.DataFrame) -> Product:
    current = current_trials(study, trials)
    stale = len(trials) - len(current)
    if stale:
        step.warn(f"{stale} trial rows were measured with an older side setting or belong to a removed benchmark or "
                  f"repeat and are left out; `benchmark-assets run {study.name}` measures them again")
    frame = judge_suite(study, trials)
    table = frame[["subject", "asked", "verdict", "shown_estimate", "shown_interval", "repeats_needed"]]
    return Product(frame, {"headline": headline(frame), "stale_rows_left_out": stale,
                           "criteria": Markdown(table.to_markdown(index=False))},
                   ledger=ledger_entries(study, frame))


def suite_report(study: AcceptanceStudy, step, trials: pd.DataFrame, verdicts: pd.DataFrame) -> Product:
    folder = artifacts.run_dir(study.name, step.run_id)
    current = current_trials(study, trials)
    plots = plot_suite(folder, study.benchmarks, current, verdicts)
    images = {b: artifacts.png_markdown({b: path}) for b, path in plots.items()}
    report = format_suite_report(study, verdicts, current, plots={b: f"![{b}](plots/{p.name})" for b, p in plots.items()})
    shown = format_suite_report(study, verdicts, current, plots=images)  # the UI: images inline
    paths = artifacts.write_files(folder, {"report.md": report, "verdicts.csv": verdicts, "verdicts.json": verdicts,
                                           "trials.csv": current})
    counts = verdicts["verdict"].value_counts()
    return Product(
        verdicts[["subject", "verdict"]].copy(),
        {"headline": headline(verdicts), **{f"criteria_{v}": int(counts.get(v, 0)) for v in ("met", "not_met",
                                                                                           "inconclusive")},
         "report": Markdown(shown), "artifacts": folder,
         **{f"file_{name}": path for name, path in paths.items()},
         **{f"plot_{b}": path for b, path in plots.items()}},
    )


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
