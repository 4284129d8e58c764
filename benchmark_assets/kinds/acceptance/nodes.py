"""The node functions of ``kind: acceptance``: each computes one asset of its graph from its inputs
(``kinds.base.Node``), calling the kind's analysis and report; ``kind.py`` wires them."""
from __future__ import annotations

import pandas as pd

from benchmark_assets import artifacts
from benchmark_assets.kinds.acceptance.analysis import (
    current_trials,
    headline,
    judge_suite,
)
from benchmark_assets.kinds.acceptance.report import decision_table, format_report, plot_suite
from benchmark_assets.kinds.acceptance.spec import SIDES, AcceptanceStudy
from benchmark_assets.kinds.acceptance.trials import run_acceptance_trials
from benchmark_assets.kinds.base import (
    LedgerEntry,
    Markdown,
    NodeResult,
    resumed_trials,
)

MEASUREMENT_POOL = "acceptance_measurements"


def complete_pairs(study: AcceptanceStudy, trials: pd.DataFrame) -> pd.DataFrame:
    """Rows of repeats whose two sides both succeeded with the sides' current settings."""
    current = current_trials(study, trials)
    if current.empty:
        return current
    ok = current[current["status"] == "ok"]
    sides = ok.groupby(["benchmark", "repeat"])["side"].transform("nunique")
    return ok[sides == len(SIDES)].reset_index(drop=True)


def trials(study: AcceptanceStudy, step) -> NodeResult:
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


def verdicts(study: AcceptanceStudy, step, trials: pd.DataFrame) -> NodeResult:
    current = current_trials(study, trials)
    stale = len(trials) - len(current)
    if stale:
        step.warn(f"{stale} trial rows were measured with an older side setting or belong to a removed benchmark or "
                  f"repeat and are left out; `benchmark-assets run {study.name}` measures them again")
    frame = judge_suite(study, trials)
    return NodeResult(frame, {"headline": headline(frame), "stale_rows_left_out": stale,
                           "criteria": decision_table(frame)},
                   ledger=ledger_entries(study, frame))


def plot_title(verdicts: pd.DataFrame, benchmark: str) -> str:
    """'search: 1 of 2 criteria met, 1 inconclusive, 0 not met': a benchmark's plot as titled in the UI."""
    return f"{benchmark}: {headline(verdicts[verdicts['benchmark'] == benchmark])}"


def suite_report(study: AcceptanceStudy, step, trials: pd.DataFrame, verdicts: pd.DataFrame) -> NodeResult:
    folder = artifacts.run_dir(study.name, step.run_id)
    current = current_trials(study, trials)
    plots = plot_suite(folder, study.benchmarks, current, verdicts)
    images = {b: artifacts.png_markdown({b: path}) for b, path in plots.items()}
    report = format_report(study, verdicts, current, plots={b: f"![{b}](plots/{p.name})" for b, p in plots.items()})
    shown = format_report(study, verdicts, current, plots=images)  # the UI: images inline
    paths = artifacts.write_files(folder, {"report.md": report, "verdicts.csv": verdicts, "verdicts.json": verdicts,
                                           "trials.csv": current})
    counts = verdicts["verdict"].value_counts()
    return NodeResult(
        verdicts[["subject", "verdict"]].copy(),
        {"headline": headline(verdicts), **{f"criteria {v.replace('_', ' ')}": int(counts.get(v, 0))
                                            for v in ("met", "not_met", "inconclusive")},
         "decisions": decision_table(verdicts),
         "plots": Markdown(artifacts.budgeted_markdown([(plot_title(verdicts, b), path) for b, path in plots.items()])),
         "report": Markdown(shown), "artifacts": folder,
         **{f"file_{name}": path for name, path in paths.items()},
         **{f"plot_{b}": path for b, path in plots.items()}},
    )


