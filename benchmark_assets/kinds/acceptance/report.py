"""The acceptance suite's plots: per benchmark, each criterion's measurements on both sides and
its effect's interval against the band asked for."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark_assets import artifacts
from benchmark_assets.kinds.acceptance.analysis import (
    INCONCLUSIVE,
    MET,
    NOT_MET,
    _first_line,
    _runs_line,
    _side,
    _value,
    current_trials,
    headline,
    run_figures,
)
from benchmark_assets.kinds.acceptance.spec import (
    SIDES,
    WALL_TIME,
    AcceptanceStudy,
    shown_unit,
)

SIDE_COLOURS = {"baseline": "tab:blue", "optimised": "tab:orange"}
VERDICT_COLOURS = {"met": "tab:green", "not_met": "tab:red", "inconclusive": "tab:grey"}


def _scaled(values, measure: str) -> tuple[np.ndarray, str]:
    factor, unit = shown_unit(measure)
    return np.asarray(values, dtype=float) * factor, f"{measure} ({unit})" if unit else measure


def decision_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """One row per criterion as the suite's asset shows it: what was asked, the estimate and its
    corrected interval on the criterion's own scale, the verdict in words and the repeats that
    would settle an inconclusive one."""
    return pd.DataFrame({
        "benchmark": verdicts["benchmark"], "criterion": verdicts["criterion"], "asked": verdicts["asked"],
        "estimate": verdicts["scale"] + " " + verdicts["shown_estimate"], "interval": verdicts["shown_interval"],
        "verdict": verdicts["verdict"].str.replace("_", " "),
        "to settle": [f"{n} more repeats" if n > 0 else "" for n in verdicts["repeats_needed"]],
    })


def plot_benchmark(folder: Path, benchmark: str, trials: pd.DataFrame, verdicts: pd.DataFrame) -> Path:
    """Top row: each criterion's measure per repeat on both sides (pairs joined by a line).
    Bottom row: the effect's estimate and interval (at its corrected level) with the region
    asked for shaded, coloured by the verdict."""
    mine = verdicts[verdicts["benchmark"] == benchmark].reset_index(drop=True)
    columns = max(1, len(mine))
    figure = artifacts.figure(3.6 * columns, 5.6)[0]
    figure.clear()
    axes = figure.subplots(2, columns, squeeze=False)
    rows = trials[(trials["benchmark"] == benchmark) & (trials["status"] == "ok")] if len(trials) else trials
    for i, row in enumerate(mine.itertuples()):
        top, bottom = axes[0][i], axes[1][i]
        if len(rows) and row.measure in rows and (rows["position"] < 0).any():  # pytest-benchmark rounds: unpaired
            for x, side in enumerate(SIDES):  # each round a dot, each run's mean (the replicate) a diamond
                own = rows[rows["side"] == side]
                values, label = _scaled(own[row.measure], row.measure)
                jitter = np.random.default_rng(x).uniform(-0.15, 0.15, len(values))
                top.plot(x + jitter, values, ".", color=SIDE_COLOURS[side], alpha=0.3, markersize=3)
                runs, _ = _scaled(own.groupby("repeat")[row.measure].mean(), row.measure)
                top.plot(np.full(len(runs), x + 0.3), runs, "D", color=SIDE_COLOURS[side], markersize=6,
                         markeredgecolor="black", label="run means" if x == 0 else None)
                top.set_ylabel(label, fontsize=8)
        elif len(rows) and row.measure in rows:
            table = rows.pivot_table(index="repeat", columns="side", values=row.measure, aggfunc="first")
            table = table.reindex(columns=list(SIDES))
            for x, side in enumerate(SIDES):
                values, label = _scaled(table[side], row.measure)
                top.plot(np.full(len(values), x), values, "o", color=SIDE_COLOURS[side], alpha=0.7)
                top.set_ylabel(label, fontsize=8)
            both, _ = _scaled(table.to_numpy(float), row.measure)
            for pair in both:
                if np.isfinite(pair).all():
                    top.plot([0, 1], pair, color="grey", linewidth=0.5, alpha=0.5)
            if row.effect == "mean":  # the bound asked for, on the measure's own scale
                for bound in (row.region_low, row.region_high):
                    if math.isfinite(bound):
                        top.axhline(_scaled([bound], row.measure)[0][0], color="tab:green", linestyle="--",
                                    linewidth=0.8)
        top.set_xticks([0, 1], list(SIDES), fontsize=8)
        top.set_xlim(-0.5, 1.5)
        top.set_title(f"{row.criterion}\n({row.asked})", fontsize=8)
        _effect(bottom, row)
    figure.suptitle(f"{benchmark}: measurements and effects against the bands asked for", fontsize=10)
    figure.subplots_adjust(left=0.1, right=0.97, bottom=0.1, top=0.85, hspace=0.55, wspace=0.45)
    path = folder / "plots" / f"{artifacts.safe_label(benchmark)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def _effect(axis, row) -> None:
    colour = VERDICT_COLOURS.get(row.verdict, "black")
    finite = [v for v in (row.estimate, row.ci_low, row.ci_high, row.region_low, row.region_high) if math.isfinite(v)]
    if not finite:
        axis.text(0.5, 0.5, "not judged", ha="center", va="center", transform=axis.transAxes)
        axis.set_yticks([])
        return
    span = (max(finite) - min(finite)) or abs(max(finite)) or 1.0
    low = row.region_low if math.isfinite(row.region_low) else min(finite) - span
    high = row.region_high if math.isfinite(row.region_high) else max(finite) + span
    axis.axvspan(low, high, color="tab:green", alpha=0.15, label="asked")
    if math.isfinite(row.estimate):
        axis.errorbar([row.estimate], [0], xerr=[[row.estimate - row.ci_low], [row.ci_high - row.estimate]],
                      fmt="o", color=colour, capsize=4, label=f"{row.confidence_level:.1%} interval")
    axis.set_xlim(min(finite) - 0.15 * span, max(finite) + 0.15 * span)
    axis.set_yticks([])
    axis.set_xlabel({"ratio": "optimised / baseline", "difference": "optimised - baseline",
                     "mean": f"optimised mean {row.measure}"}[row.effect], fontsize=8)
    axis.set_title(row.verdict.replace("_", " "), fontsize=9, color=colour)
    axis.tick_params(labelsize=7)


def plot_suite(folder: Path, benchmarks: list[str], trials: pd.DataFrame, verdicts: pd.DataFrame) -> dict[str, Path]:
    """One plot per benchmark, drawn on a worker per core when there are several."""
    paths = artifacts.in_parallel(_draw, [(folder, b, trials, verdicts) for b in benchmarks])
    return dict(zip(benchmarks, paths))


def _draw(job) -> Path:
    return plot_benchmark(*job)


def format_report(study: AcceptanceStudy, verdicts: pd.DataFrame, trials: pd.DataFrame,
                        plots: dict[str, str] | None = None) -> str:
    """The suite for review: the headline, every criterion with its interval and verdict, each
    benchmark's sides and measurements, and what failed."""
    trials = current_trials(study, trials)
    level = study.spec.confidence_level
    correction = study.spec.correction
    if correction == "none":
        promise = (f"not corrected: each criterion alone is wrong at most {1 - level:.0%} of the time, the suite's "
                   f"{len(verdicts)} together more often")
    else:
        promise = (f"the chance that any met or not met is wrong is held at {1 - level:.0%}, "
                   f"{'Holm' if correction == 'holm' else 'Bonferroni'}-corrected across the {len(verdicts)} criteria")
    lines = [f"# Acceptance suite: {study.name}", ""]
    if study.spec.description:
        lines += [study.spec.description, ""]
    designs = []
    if any(not study.is_ingested(b) for b in study.benchmarks):
        designs.append(f"{study.spec.repeats} paired repeats per measured benchmark, "
                       + ("t-intervals, a ratio on the logs of the paired ratios" if study.spec.interval == "t" else
                          f"paired percentile bootstrap, {study.spec.bootstrap_resamples:,} resamples, a ratio of "
                          "the means; a claim also needs the t-test on the log ratios to agree"))
    if any(study.is_ingested(b) for b in study.benchmarks):
        designs.append("pytest-benchmark files judged run against run (each run's mean time one replicate; unpaired, "
                       "Welch's interval, a ratio of geometric means)")
    lines += [
        f"**{headline(verdicts)}** ({'; '.join(designs)}; {promise}; each interval is at its own corrected level).",
        "",
        "| benchmark | criterion | asked | estimate | interval | verdict | to settle |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in verdicts.itertuples():
        unit = "runs per side" if study.is_ingested(row.benchmark) else "repeats"
        needed = (("at least" if row.n_pairs < 2 and study.is_ingested(row.benchmark) else "about")
                  + f" {row.repeats_needed} {unit}") if row.repeats_needed > 0 else ""
        verdict = {MET: "met", NOT_MET: "**not met**", INCONCLUSIVE: "_inconclusive_"}[row.verdict]
        lines.append(f"| {row.benchmark} | {row.criterion} | {row.asked} | {row.scale} {row.shown_estimate} | "
                     f"{row.shown_interval} | {verdict} | {needed} |")
    lines += ["", "Met: the whole interval lies inside what is asked. Not met: wholly outside. Inconclusive: it "
              "straddles a boundary; the repeats or runs shown would settle it if the spread stays as observed.", ""]
    for benchmark in study.benchmarks:
        bench = study.spec.benchmarks[benchmark]
        rows = trials[trials["benchmark"] == benchmark] if len(trials) else trials
        lines += [f"## {benchmark}", ""]
        if bench.description:
            lines += [bench.description, ""]
        lines.append(f"- baseline: {_side(bench.baseline)}; optimised: {_side(bench.optimised)}")
        if study.is_ingested(benchmark):
            ok = rows[rows["status"] == "ok"] if len(rows) else rows
            lines.append("- read from pytest-benchmark: " + "; ".join(
                f"{side} {_runs_line(ok[ok['side'] == side] if len(ok) else ok)}" for side in SIDES))
        else:
            lines.append(f"- {bench.number} call(s) per measurement after {bench.warmup} warm-up call(s); sides "
                         "alternate A B, B A, ... on the same seeds")
        lines.append("")
        mine = verdicts[verdicts["benchmark"] == benchmark]
        for row in mine.itertuples():
            lines.append(f"- **{row.criterion}** ({row.asked}): {row.verdict.replace('_', ' ')}; {row.scale} {row.shown_estimate}, "
                         f"interval {row.shown_interval} at {row.confidence_level:.2%} (p {row.p_value:.2g}, "
                         f"adjusted {row.p_adjusted:.2g}); {row.reason}.")
        measures = list(dict.fromkeys(c.measure for c in bench.criteria))
        if len(rows) and study.is_ingested(benchmark):
            runs = run_figures(rows[rows["status"] == "ok"])
            lines += ["", "| measure | baseline mean of runs | optimised mean of runs | runs (rounds), baseline / "
                      "optimised |", "|---|---|---|---|"]
            figures = {side: runs[runs["side"] == side] for side in SIDES}
            lines.append(f"| {WALL_TIME} | " + " | ".join(_value(figures[side]["mean"].mean(), WALL_TIME)
                                                          for side in SIDES) + " | " + " / ".join(
                f"{len(figures[side])} ({int(figures[side]['rounds'].sum())})" for side in SIDES) + " |")
        elif len(rows):
            lines += ["", "| measure | baseline mean | optimised mean | repeats ok (baseline / optimised) |",
                      "|---|---|---|---|"]
            for measure in measures:
                means = {side: rows.loc[(rows["side"] == side) & (rows["status"] == "ok"), measure]
                         for side in SIDES} if measure in rows else {side: pd.Series(dtype=float) for side in SIDES}
                lines.append(f"| {measure} | {_value(means['baseline'].mean(), measure)} | "
                             f"{_value(means['optimised'].mean(), measure)} | "
                             f"{means['baseline'].notna().sum()} / {means['optimised'].notna().sum()} |")
        if plots and benchmark in plots:
            lines += ["", plots[benchmark]]
        lines.append("")
    failed = trials[trials["status"] != "ok"] if len(trials) else trials
    if len(failed):
        lines += [f"## Failed measurements: {len(failed)} of {len(trials)}", "",
                  "| benchmark | side | repeat | error |", "|---|---|---|---|"]
        lines += [f"| {r.benchmark} | {r.side} | {r.repeat} | {_first_line(r.error).replace('|', '/')} |"
                  for r in failed.head(20).itertuples()]
        lines.append("")
    return "\n".join(lines)
