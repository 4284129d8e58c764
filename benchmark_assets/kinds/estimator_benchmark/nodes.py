"""The node functions of ``kind: estimator_benchmark``: each computes one asset of its graph from its inputs
(``kinds.base.Node``), calling the kind's analysis and report; ``kind.py`` wires them."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from benchmark_assets import artifacts
from benchmark_assets.kinds.base import (
    LedgerEntry,
    Markdown,
    NodeResult,
    common_errors,
    resumed_trials,
)
from benchmark_assets.kinds.estimator_benchmark.analysis import (
    Leaderboard,
    benchmark_aggregates,
    current_trials,
    exact_interval,
    headline,
    judge_pairs,
    leaderboard,
    ranked,
)
from benchmark_assets.kinds.estimator_benchmark.report import format_report, plot_benchmark
from benchmark_assets.kinds.estimator_benchmark.spec import (
    VERDICTS,
    EstimatorBenchmarkStudy,
    split_dataset_key,
)
from benchmark_assets.kinds.estimator_benchmark.trials import dataset, run_benchmark_trials


def scenario_catalog(study: EstimatorBenchmarkStudy, step) -> NodeResult:
    """One row per data set: its entry (template, metric, the knob it sweeps), every knob's value,
    and what the generated data hold: rows, treated share, the true average and RMS effect."""
    rows = []
    for key in step.partition_keys:
        entry_id, seed = split_dataset_key(key)
        entry = study.entry_by_id.get(entry_id)
        if entry is None:
            step.warn(f"data set {key} is no longer in {study.path.name}; skipped")
            continue
        data, metadata = dataset(study, key)
        effect = data.true_effect
        rows.append({
            "dataset": key, "entry_id": entry_id, "seed": seed, "template": entry.template,
            "metric_id": data.metric_id, "family": data.family, "axis": entry.axis, "axis_value": str(entry.axis_value),
            "centre": bool(entry.centre), "n_rows": int(data.outcome.size), "n_features": int(data.features.shape[1]),
            "treated_share": float(data.treatment.mean()), "outcome_mean": float(data.outcome.mean()),
            "true_ate": float(data.true_ate), "rms_effect": float(np.sqrt(np.mean(effect ** 2))),
            "share_benefiting": float(np.mean(effect > 0)),
            "driver_kinds": ",".join(metadata.get("driver_kinds", ())),
            "knobs": json.dumps({k: v for k, v in metadata.items() if k not in ("seed", "driver_kinds")}, default=str,
                                sort_keys=True),
            "entry_fingerprint": study.entry_fingerprints[entry_id],
        })
    frame = pd.DataFrame(rows)
    return NodeResult(frame, {"data_sets": len(frame),
                           "templates": ", ".join(sorted(set(frame["template"]))) if len(frame) else ""})


def up_to_date(study: EstimatorBenchmarkStudy, trials: pd.DataFrame) -> pd.DataFrame:
    """Successful trials of the current estimators on the current data sets: a fit is
    deterministic given its seed, so these need no rerun."""
    current = current_trials(study, trials)
    return current[current["status"] == "ok"].reset_index(drop=True) if len(current) else current


def trials(study: EstimatorBenchmarkStudy, step, scenario_catalog: pd.DataFrame) -> NodeResult:
    """Each finished trial is checkpointed at once; trials a killed run had finished are kept."""
    return resumed_trials(step, up_to_date(study, step.checkpointed()), ("estimator", "dataset"),
                          lambda keys, on_row: run_benchmark_trials(
                              study, keys, progress=step.progress(f"{study.name} trials"), log=step.log,
                              on_row=on_row), replicate_type=str)


def aggregates(study: EstimatorBenchmarkStudy, step, trials: pd.DataFrame) -> NodeResult:
    d = study.spec.decision
    current = current_trials(study, trials)
    frame = benchmark_aggregates(current, [e for e in study.estimator_names if e in set(step.partition_keys)],
                                 study.star_points, confidence_level=d.confidence_level,
                                 n_resamples=d.bootstrap_resamples, rng_seed=d.rng_seed)
    if frame.empty:
        raise ValueError(f"no trials of estimators {list(step.partition_keys)} yet; run them first "
                         f"(benchmark-assets run {study.name})")
    return NodeResult(frame, {"rows": len(frame), "star_points": int(frame[["template", "metric_id", "knob",
                                                                         "knob_value"]].drop_duplicates().shape[0])})


def _checked_trials(study: EstimatorBenchmarkStudy, step, trials: pd.DataFrame) -> pd.DataFrame:
    current = current_trials(study, trials)
    stale = len(trials) - len(current)
    if stale:
        step.warn(f"{stale} trial rows belong to an older estimator setting or catalog entry, or to one no longer in "
                  f"the study, and are left out; `benchmark-assets run {study.name}` runs them again")
    if current.empty or not (current["status"] == "ok").any():
        raise ValueError(f"no successful trial to rank; {errors_line(current)}")
    return current


def errors_line(trials: pd.DataFrame) -> str:
    if trials.empty:
        return "no trials at all"
    return "; ".join(f"{n} trials: {text}" for text, n in common_errors(trials, limit=3))


def ledger_entries(study: EstimatorBenchmarkStudy, pairs: pd.DataFrame) -> list[LedgerEntry]:
    """One entry per pair, on one scale: the effect is the share of data sets on which the first
    estimator did better, with its exact interval at the study's level and at the level the
    correction gave the pair; the mean paired difference of the decision metric is in the details."""
    level = study.spec.decision.confidence_level
    entries = []
    for row in pairs.to_dict("records"):
        n = int(row["wins"] + row["losses"])
        low, high = exact_interval(int(row["wins"]), n, level) if n else (float("nan"), float("nan"))
        entries.append(LedgerEntry(
            subject=row["subject"], decision=row["verdict"], reason=row["reason"], metric=row["metric"],
            baseline=row["other"], proposal=row["estimator"], effect=row["probability_better"],
            ci_low=low, ci_high=high, adjusted_ci_low=row["low"], adjusted_ci_high=row["high"],
            confidence_level=level, p_value=row["p_value"],
            details={"effect_is": "share of data sets on which the first estimator did better",
                     "interval_level": row["interval_level"], "data_sets": int(row["data_sets"]),
                     "entries": int(row["entries"]), "wins": int(row["wins"]), "losses": int(row["losses"]),
                     "correction": study.spec.decision.correction, "means": [row["mean_a"], row["mean_b"]],
                     "mean_difference": [row["mean_difference"], row["difference_low"], row["difference_high"]]},
        ))
    return entries


def leaderboard_node(study: EstimatorBenchmarkStudy, step, trials: pd.DataFrame) -> NodeResult:
    table = leaderboard(_checked_trials(study, step, trials), study.estimator_names, study.spec.decision, study.seeds,
                        study.entry_ids)
    metric = study.spec.decision.metric
    shown = table[["rank", "estimator", f"{metric}_iqm", f"{metric}_low", f"{metric}_high", "failed"]]
    return NodeResult(table, {"headline": headline(study, table), "leader": str(table.iloc[0]["estimator"]),
                           "leaderboard": shown})


def verdicts(study: EstimatorBenchmarkStudy, step, trials: pd.DataFrame, leaderboard: pd.DataFrame) -> NodeResult:
    """Pairs of ranked estimators in leaderboard order (the better-ranked first), judged on the
    decision metric; an estimator without it (failed, or average effect only) is in no pair."""
    current = _checked_trials(study, step, trials)
    pairs = judge_pairs(current, ranked(leaderboard), study.spec.decision, study.seeds, study.entry_ids)
    counts = pairs["verdict"].value_counts()
    return NodeResult(pairs, {"headline": headline(study, leaderboard, pairs),
                           **{f"pairs_{v}": int(counts.get(v, 0)) for v in VERDICTS},
                           "pairs": pairs[["subject", "verdict", "probability_better", "low", "high"]]},
                   ledger=ledger_entries(study, pairs))


def benchmark_report(study: EstimatorBenchmarkStudy, step, trials: pd.DataFrame, leaderboard: pd.DataFrame,
                     verdicts: pd.DataFrame) -> NodeResult:
    current = _checked_trials(study, step, trials)
    board = Leaderboard(leaderboard, verdicts)
    folder = artifacts.run_dir(study.name, step.run_id)
    plots = plot_benchmark(folder, current, verdicts, list(leaderboard["estimator"]), ranked(leaderboard),
                           study.spec.decision.metric, study.star_points)
    report = format_report(study, board, current,
                           plots={label: f"![{label}](plots/{path.name})" for label, path in plots.items()})
    shown = format_report(study, board, current, plots={label: artifacts.png_markdown({label: path}, width=900)
                                                        for label, path in plots.items()})
    paths = artifacts.write_files(folder, {"report.md": report, "leaderboard.csv": leaderboard,
                                           "pairs.csv": verdicts, "pairs.json": verdicts, "trials.csv": current})
    return NodeResult(leaderboard[["rank", "estimator"]].copy(), {
        "headline": headline(study, leaderboard, verdicts),
        "plots": Markdown(artifacts.budgeted_markdown(list(plots.items()))),
        "report": Markdown(shown), "artifacts": folder,
        **{f"file_{name}": path for name, path in paths.items()},
        **{f"plot_{artifacts.safe_label(label)}": path for label, path in plots.items()},
    })


