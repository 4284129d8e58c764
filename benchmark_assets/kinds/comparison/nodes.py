"""The node functions of ``kind: comparison``: each computes one asset of its graph from its inputs
(``kinds.base.Node``), calling the kind's analysis and report; ``kind.py`` wires them."""
from __future__ import annotations

import pandas as pd

from benchmark_assets import artifacts
from benchmark_assets.kinds.base import (
    LedgerEntry,
    Markdown,
    NodeResult,
    is_current,
    is_ingested,
    resumed_trials,
)
from benchmark_assets.kinds.comparison import ingest as inbox
from benchmark_assets.kinds.comparison import schemas
from benchmark_assets.kinds.comparison.analysis import ComparisonRules, compare_arms
from benchmark_assets.kinds.comparison.report import (
    VERDICT_WORDS,
    comparison_headline,
    format_report,
    plot_comparison,
    plot_variance,
)
from benchmark_assets.kinds.comparison.spec import ARMS, ComparisonStudy
from benchmark_assets.kinds.comparison.trials import run_comparison_trials, trial_summaries
from benchmark_assets.stats.aggregate import aggregate_metrics
from benchmark_assets.stats.variance import variance_curve

SUMMARY_KEYS = ["arm", "seed", "status"]


def comparison_rules(study: ComparisonStudy) -> ComparisonRules:
    d = study.spec.decision
    return ComparisonRules(confidence_level=d.confidence_level, method=d.method, bootstrap_resamples=d.bootstrap_resamples,
                           rng_seed=d.rng_seed, power=d.power,
                           target_effect=None if d.target_effect is None else float(d.target_effect))


def current_trials(study: ComparisonStudy, trials: pd.DataFrame) -> pd.DataFrame:
    """Trials of the study as it stands: its seeds (and those ingested from its inbox), run with
    its arms' current command and parameters. Rows from a removed seed or an older arm setting
    are left out, never analysed (or put in the ledger) under the new setting; `benchmark-assets
    run` reruns them."""
    if trials.empty:
        return trials
    from_files = from_curve_files(trials)
    expected = trials["arm"].map({arm: study.arm_fingerprint(arm) for arm in ARMS}).where(
        ~from_files, trials["arm"].map({arm: study.inbox_fingerprint(arm) for arm in ARMS}))
    return trials[is_current(trials, expected, trials["seed"].isin(study.seeds), from_files)].reset_index(drop=True)


def from_curve_files(trials: pd.DataFrame) -> pd.Series:
    """Rows ingested from curve files: their source says so; rows of older versions, whose
    command named the inbox file."""
    legacy = trials["command"].astype(str).str.startswith(inbox.COMMAND_PREFIX) if "command" in trials else None
    return is_ingested(trials, legacy)


def up_to_date(study: ComparisonStudy, trials: pd.DataFrame) -> pd.DataFrame:
    """Current trials (``current_trials``) that succeeded: nothing about them needs a rerun."""
    current = current_trials(study, trials)
    return current[current["status"] == "ok"].reset_index(drop=True) if len(current) else current


def trials(study: ComparisonStudy, step) -> NodeResult:
    """Each finished trial is checkpointed at once; trials a killed run had finished (with the
    arm's current setting) are taken from its checkpoint instead of being run again."""
    return resumed_trials(step, up_to_date(study, step.checkpointed()), ("arm", "seed"),
                          lambda keys, on_row: run_comparison_trials(
                              study, keys, progress=step.progress(f"{study.name} trials"), on_row=on_row))


def summaries(study: ComparisonStudy, step, trials: pd.DataFrame) -> NodeResult:
    current = current_trials(study, trials)
    stale = int((trials["seed"].isin(study.seeds) | from_curve_files(trials)).sum() - len(current)) if len(trials) else 0
    if stale:
        step.warn(f"{stale} trials ran with an older command or arm setting and are left out; "
                  f"`benchmark-assets run {study.name}` reruns those it measured (curve files from the inbox are "
                  "replaced by putting new ones there)")
    table, problems = trial_summaries(study, current)
    for problem in problems:
        step.warn(problem)
    return NodeResult(table, {"rows": len(table), "decision_metric": study.decision_metric, "stale_trials_left_out": stale,
                           "problems": Markdown("\n".join(f"- {p}" for p in problems) or "none")})


def metric_columns(summaries: pd.DataFrame) -> list[str]:
    return [c for c in summaries.columns if c not in SUMMARY_KEYS]


def aggregates(study: ComparisonStudy, step, summaries: pd.DataFrame) -> NodeResult:
    d = study.spec.decision
    frames = []
    for arm in ARMS:
        rows = summaries[summaries["arm"] == arm]
        ok = rows[rows["status"] == "ok"]
        table = aggregate_metrics(ok, metric_columns(summaries), confidence_level=d.confidence_level,
                                  n_resamples=d.bootstrap_resamples, rng_seed=d.rng_seed, label=f"{study.name}|{arm}")
        table.insert(0, "arm", arm)
        table.insert(3, "n_failed", int((rows["status"] != "ok").sum()))
        frames.append(table)
    frame = pd.concat(frames, ignore_index=True)[list(schemas.arm_aggregates_schema().columns)]
    return NodeResult(frame, {"rows": len(frame)})


def comparison(study: ComparisonStudy, step, summaries: pd.DataFrame) -> NodeResult:
    frame = compare_arms(summaries, metric_columns(summaries), decision_metric=study.decision_metric,
                         maximize=study.maximize, paired=study.paired, rules=comparison_rules(study))
    missing = missing_decision_metric(study, summaries)
    if missing:  # said first, in the verdict's own words: nothing else explains an empty comparison
        frame.loc[frame["is_decision_metric"], "reason"] = missing
    decided = frame[frame["is_decision_metric"]].iloc[0]
    return NodeResult(frame, {"headline": comparison_headline(decided, study.decision_metric),
                              "verdict": decided["verdict"], "reason": decided["reason"],
                           "effect": float(decided["effect"]), "more_seeds": int(decided["more_seeds"])})


def missing_decision_metric(study: ComparisonStudy, summaries: pd.DataFrame) -> str:
    """Why nothing can be decided when trials succeeded but none reported the decision metric, or ''."""
    ok = summaries[summaries["status"] == "ok"] if "status" in summaries else summaries
    metric = study.decision_metric
    if ok.empty or (metric in ok and ok[metric].notna().any()):
        return ""
    reported = [c for c in metric_columns(summaries) if c != metric and ok[c].notna().any()]
    return (f"no trial reported the decision metric {metric!r} ({len(ok)} trials ran; they reported "
            f"{', '.join(reported) or 'no metric'}): fix `metric` (or `summary`) in {study.path.name}, or make the "
            "command report it")


def arm_variance(study: ComparisonStudy, summaries: pd.DataFrame) -> pd.DataFrame:
    """Variance curve of the decision metric per arm; an arm with fewer than two good seeds has none."""
    d = study.spec.decision
    frames = []
    for arm in ARMS:
        values = summaries.loc[summaries["arm"] == arm, study.decision_metric].dropna().to_numpy(float)
        if values.size < 2 or values.mean() == 0:
            continue
        result = variance_curve(values, threshold=d.variance_threshold, confidence_level=d.confidence_level,
                                rng=[d.rng_seed, ARMS.index(arm)])
        curve = result.curve.copy()
        curve.insert(0, "arm", arm)
        curve["stable_n"] = -1 if result.stable_n is None else int(result.stable_n)
        frames.append(curve)
    if not frames:
        return pd.DataFrame({"arm": pd.Series(dtype=str), "n": pd.Series(dtype="int64"),
                             **{c: pd.Series(dtype=float) for c in ("cv", "cv_low", "cv_high")},
                             "stable_n": pd.Series(dtype="int64")})
    return pd.concat(frames, ignore_index=True)[list(schemas.variance_schema().columns)]


def variance_analysis(study: ComparisonStudy, step, summaries: pd.DataFrame) -> NodeResult:
    frame = arm_variance(study, summaries)
    stable = frame.groupby("arm")["stable_n"].first().to_dict() if len(frame) else {}
    plot = plot_variance(artifacts.run_dir(study.name, step.run_id), frame, study.decision_metric,
                         threshold=study.spec.decision.variance_threshold)
    return NodeResult(frame, {**{f"stable_n_{arm}": int(n) for arm, n in stable.items()}, "plot_file": plot,
                           "plot": Markdown(artifacts.png_markdown({"variance of the mean as seeds are added": plot}))})


def comparison_report(study: ComparisonStudy, step, trials: pd.DataFrame, summaries: pd.DataFrame,
                      aggregates: pd.DataFrame, comparison: pd.DataFrame, variance_analysis: pd.DataFrame) -> NodeResult:
    trials = current_trials(study, trials)
    report = format_report(
        study=study.name, description=study.spec.description, control_params=study.params("control"),
        candidate_params=study.params("candidate"), command=" ".join(study.spec.target.command),
        n_seeds=len(study.seeds), decision_metric=study.decision_metric, direction=study.spec.direction,
        comparison=comparison, aggregates=aggregates, variance=variance_analysis,
        failures=trials[trials["status"] != "ok"], git_commits=list(trials["git_commit"]),
        ingested=int(from_curve_files(trials).sum()) if len(trials) else 0,
        variance_threshold=study.spec.decision.variance_threshold,
        problems=trial_summaries(study, trials)[1],
    )
    folder = artifacts.run_dir(study.name, step.run_id)
    paths = artifacts.write_files(folder, {
        "report.md": report, "comparison.csv": comparison, "comparison.json": comparison,
        "aggregates.csv": aggregates, "summaries.csv": summaries, "variance.csv": variance_analysis,
    })
    paths["plot_comparison"] = plot_comparison(folder, study, trials, summaries, comparison)
    decided = comparison[comparison["is_decision_metric"]].iloc[0]
    table = comparison[["metric", "verdict", "effect", "ci_low", "ci_high", "p_bootstrap", "p_t"]].copy()
    plots = Markdown(artifacts.budgeted_markdown([("control vs candidate", paths["plot_comparison"])]))
    return NodeResult(table, {"headline": comparison_headline(decided, study.decision_metric),
                              "verdict": decided["verdict"], "metrics": table.assign(verdict=table["verdict"].map(
                                  lambda v: VERDICT_WORDS.get(v, v))),
                              "report": Markdown(report), "plots": plots, "artifacts": folder,
                              **{f"file_{name}": path for name, path in paths.items()}},
                   ledger=[ledger_entry(study, decided)])


def ledger_entry(study: ComparisonStudy, decided: pd.Series) -> LedgerEntry:
    """The decision metric's verdict: the parameters that differ are its subject, the arms its
    baseline and proposal. One decision is made, so the adjusted interval is the plain one."""
    control, candidate = study.params("control"), study.params("candidate")
    changed = sorted(k for k in control if control[k] != candidate[k])
    return LedgerEntry(
        subject=",".join(changed), decision=decided["verdict"], reason=decided["reason"],
        metric=study.decision_metric, baseline=control, proposal=candidate, effect=float(decided["effect"]),
        ci_low=float(decided["ci_low"]), ci_high=float(decided["ci_high"]), adjusted_ci_low=float(decided["ci_low"]),
        adjusted_ci_high=float(decided["ci_high"]), confidence_level=float(decided["confidence_level"]),
        p_value=float(decided["p_bootstrap"]), p_adjusted=float(decided["p_bootstrap"]),
        details={"design": decided["design"], "method": decided["method"], "p_t": decided["p_t"],
                 "n_control": int(decided["n_control"]), "n_candidate": int(decided["n_candidate"]),
                 "more_seeds": int(decided["more_seeds"])},
    )


