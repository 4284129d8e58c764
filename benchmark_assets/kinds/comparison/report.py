"""The comparison's outputs for review: the plots of both arms and of the variance analysis."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from benchmark_assets import artifacts
from benchmark_assets.kinds.base import INBOX_BASE
from benchmark_assets.kinds.comparison.analysis import _effect_size, _fmt
from benchmark_assets.kinds.comparison.rules import BETTER, INCONCLUSIVE, WORSE
from benchmark_assets.stats import describe

ARM_COLOURS = {"control": "tab:blue", "candidate": "tab:orange"}


VERDICT_WORDS = {BETTER: "Candidate is better", WORSE: "Candidate is worse", INCONCLUSIVE: "Inconclusive"}


def comparison_headline(decided, metric: str) -> str:
    """'Candidate is better on final_loss: -0.05 (-29.6 %), 95 % interval [-0.06, -0.04]' from the
    decision metric's row: short enough to read at a glance (the row's reason says why)."""
    if decided["effect"] != decided["effect"]:  # nothing to estimate from: the reason says why
        return f"{VERDICT_WORDS[decided['verdict']]} on {metric}: {decided['reason']}"
    relative = decided["relative_effect"]
    share = "" if relative != relative else f" ({relative:+.1%})"
    return (f"{VERDICT_WORDS[decided['verdict']]} on {metric}: candidate - control = {_fmt(decided['effect'])}{share}, "
            f"{decided['confidence_level']:.0%} interval [{_fmt(decided['ci_low'])}, {_fmt(decided['ci_high'])}]")


def plot_variance(folder: Path, variance: pd.DataFrame, metric: str, *, threshold: float) -> Path:
    """CV of the seed-averaged metric against the number of seeds, per arm, with its band."""
    figure, axis = artifacts.figure(6.4, 4.0)
    for arm, colour in ARM_COLOURS.items():
        rows = variance[variance["arm"] == arm].sort_values("n") if len(variance) else variance
        if not len(rows):
            continue
        stable = int(rows["stable_n"].iloc[0])
        axis.plot(rows["n"], rows["cv"], marker="o", color=colour,
                  label=f"{arm} (stable from n={stable})" if stable > 0 else f"{arm} (not yet stable)")
        axis.fill_between(rows["n"].astype(float), rows["cv_low"], rows["cv_high"], color=colour, alpha=0.2)
    axis.axhline(threshold, color="tab:red", linestyle="--", linewidth=0.8, label=f"threshold {threshold:.0%}")
    axis.set_xlabel("seeds (n)")
    axis.set_ylabel(f"CV of mean {metric}")
    axis.set_title("Variance analysis: how many seeds are enough")
    axis.legend(fontsize=7)
    figure.subplots_adjust(left=0.14, right=0.97, bottom=0.13, top=0.9)
    path = folder / "plots" / "variance.png"
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path)
    return path


def plot_comparison(folder: Path, study, trials: pd.DataFrame, summaries: pd.DataFrame, comparison: pd.DataFrame) -> Path:
    """Left: the decision metric's curve per arm (mean and 95 % t-band over seeds; the summary's
    window shaded) or, for a scalar metric, its values per seed. Right: each seed's paired
    difference (or each arm's values, unpaired) with the effect and its interval."""
    figure, (left, right) = artifacts.figure(11.0, 4.0, 2)
    metric, summary = study.spec.metric, study.spec.summary
    ok = trials[trials["status"] == "ok"]
    for arm, colour in ARM_COLOURS.items():
        curves = [json.loads(text).get(metric) for text in ok.loc[ok["arm"] == arm, "curves_json"]]
        curves = [c for c in curves if c]
        if summary is not None and curves and all(c["steps"] == curves[0]["steps"] for c in curves):
            steps = curves[0]["steps"]
            stats = describe(pd.DataFrame([c["values"] for c in curves]).to_numpy(float).T)
            left.plot(steps, stats.mean, color=colour, label=f"{arm} mean of {len(curves)} seeds")
            left.fill_between(steps, stats.t_low, stats.t_high, color=colour, alpha=0.2)
        else:
            values = summaries.loc[summaries["arm"] == arm, study.decision_metric]
            left.plot(range(len(values)), values, "o", color=colour, label=arm)
    if summary is not None and summary.type != "last_n" and len(ok):
        steps = next(json.loads(t).get(metric, {}).get("steps", [0]) for t in ok["curves_json"])
        start = steps[-1] - float(summary.window) * (steps[-1] - steps[0])
        left.axvspan(start, steps[-1], color="grey", alpha=0.15, label=f"summary window ({summary.label})")
    left.set_xlabel("step" if summary is not None else "seed")
    left.set_ylabel(metric)
    left.legend(fontsize=7)
    decided = comparison[comparison["is_decision_metric"]].iloc[0]
    table = summaries.pivot_table(index="seed", columns="arm", values=study.decision_metric)
    if decided["design"] == "paired" and {"control", "candidate"} <= set(table.columns):
        differences = (table["candidate"] - table["control"]).dropna()
        right.plot(range(len(differences)), differences.to_numpy(), "o", color="tab:purple", label="candidate - control per seed")
        right.set_xticks(range(len(differences)), [str(s) for s in differences.index], rotation=45, fontsize=7)
        right.set_xlabel("seed")
    else:
        for i, arm in enumerate(ARM_COLOURS):
            values = summaries.loc[summaries["arm"] == arm, study.decision_metric].dropna()
            right.plot([i] * len(values), values, "o", color=ARM_COLOURS[arm], alpha=0.6, label=arm)
        right.set_xticks([0, 1], list(ARM_COLOURS))
    if decided["design"] == "paired":
        right.axhline(0.0, color="black", linewidth=0.8)
        right.axhline(decided["effect"], color="tab:green", label=f"effect {decided['effect']:+.4g}")
        if pd.notna(decided["ci_low"]):
            right.axhspan(decided["ci_low"], decided["ci_high"], color="tab:green", alpha=0.2,
                          label=f"{decided['confidence_level']:.0%} {decided['method']} interval")
    right.set_ylabel(f"{study.decision_metric}")
    right.set_title(f"verdict: {decided['verdict']}")
    right.legend(fontsize=7)
    figure.suptitle(f"{study.name}: {study.decision_metric}")
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.2, top=0.88, wspace=0.25)
    path = folder / "plots" / "comparison.png"
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path)
    return path


def format_report(
    *,
    study: str,
    description: str,
    control_params: dict,
    candidate_params: dict,
    command: str,
    n_seeds: int,
    decision_metric: str,
    direction: str,
    comparison: pd.DataFrame,
    aggregates: pd.DataFrame,
    variance: pd.DataFrame,
    failures: pd.DataFrame,
    git_commits: list[str],
    variance_threshold: float,
    problems: list[str] = (),
    ingested: int = 0,
) -> str:
    """A markdown report a reviewer can paste into a pull request; ``ingested``: how many of the
    trials came from curve files in the study's inbox."""
    decided = comparison[comparison["is_decision_metric"]].iloc[0]
    headline = VERDICT_WORDS[decided["verdict"]]
    lines = [
        f"# Comparison: {study}",
        "",
        description,
        "",
        f"**{headline}** on `{decision_metric}` ({direction}): {decided['reason']}.",
        "",
        f"- Control: `{control_params}`; candidate: `{candidate_params}`",
        f"- Design: {decided['design']}, {n_seeds} seeds listed; "
        + (f"{decided['n_pairs']} seeds with both arms measured" if decided["design"] == "paired"
           else f"{decided['n_control']} control and {decided['n_candidate']} candidate seeds measured")
        + f"; {len(failures)} trials failed"
        + (f"; {ingested} trials ingested from curve files (seeds from {INBOX_BASE:,} up)" if ingested else ""),
        f"- Interval: {decided['confidence_level']:.0%} {decided['method']} bootstrap of the "
        f"{'mean paired difference' if decided['design'] == 'paired' else 'difference of means'}; "
        f"{decided['test'] or 't-test'} alongside",
        f"- Command: `{command}`; git commit(s): {', '.join(sorted(set(git_commits))) or 'unknown'}",
        "",
        "## Effects (candidate - control)",
        "",
        "| metric | control mean | candidate mean | effect | relative | CI | p (bootstrap) | p (t) | effect size | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in comparison.itertuples():
        lines.append(
            f"| {'**' + row.metric + '**' if row.is_decision_metric else row.metric} | {_fmt(row.control_mean, '.4g')} | "
            f"{_fmt(row.candidate_mean, '.4g')} | {_fmt(row.effect)} | {_fmt(row.relative_effect, '+.1%')} | "
            f"[{_fmt(row.ci_low)}, {_fmt(row.ci_high)}] | {_fmt(row.p_bootstrap, '.2g')} | {_fmt(row.p_t, '.2g')} | "
            f"{_effect_size(row)} | {row.verdict} |"
        )
    lines += ["", "## Assumptions, power and seeds", ""]
    checks = decided["assumption_notes"] or "all assumption checks passed (normality of the differences" + (
        ")" if decided["design"] == "paired" else " per group, equal variances)")
    if decided["test"]:
        lines.append(f"- {decided['test']}: {checks}")
    else:
        lines.append("- No test ran on the decision metric: fewer than two seeds have it on both arms")
    lines.append(
        f"- Power: {_fmt(decided['achieved_power'], '.0%')} to detect an effect of {_fmt(decided['power_effect'], '.4g')} "
        f"with {decided['n_candidate']} seeds; {decided['required_n']} needed "
        f"({'about ' + str(decided['more_seeds']) + ' more' if decided['more_seeds'] > 0 else 'enough already'})"
        if decided["required_n"] > 0 else "- Power: not computable (no spread or no effect)"
    )
    for arm in ("control", "candidate"):
        rows = variance[variance["arm"] == arm] if len(variance) else variance
        if len(rows):
            stable = int(rows["stable_n"].iloc[0])
            largest = rows.sort_values("n").iloc[-1]
            lines.append(
                f"- Variance ({arm}): CV of the mean over {int(largest['n'])} seeds is {largest['cv']:.2%} "
                f"(band up to {largest['cv_high']:.2%}); "
                + (f"stable below {variance_threshold:.0%} from n = {stable}" if stable > 0
                   else f"not yet stable below {variance_threshold:.0%}: run more seeds")
            )
    lines += ["", "## Per arm", "", "| arm | metric | n | mean | std | cv | 95% t-interval |", "|---|---|---|---|---|---|---|"]
    for row in aggregates.itertuples():
        lines.append(f"| {row.arm} | {row.metric} | {row.n} | {_fmt(row.mean, '.4g')} | {_fmt(row.std, '.3g')} | "
                     f"{_fmt(row.cv, '.2%')} | [{_fmt(row.t_low, '.4g')}, {_fmt(row.t_high, '.4g')}] |")
    if problems:
        lines += ["", "## Trials that ran but gave no decision metric", ""] + [f"- {p}" for p in problems]
    if len(failures):
        lines += ["", "## Failed trials", "", "| arm | seed | error |", "|---|---|---|"]
        for row in failures.itertuples():
            lines.append(f"| {row.arm} | {row.seed} | {str(row.error).splitlines()[0][:200] if row.error else ''} |")
    return "\n".join(lines) + "\n"
