"""The estimator benchmark's plots: each error against each swept knob (where does each estimator
break?), each estimator's error per template, and the pairwise probabilities of improvement."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark_assets import artifacts
from benchmark_assets.kinds.base import errors_markdown
from benchmark_assets.kinds.estimator_benchmark.analysis import SHOWN, Leaderboard, _number, headline, star_points
from benchmark_assets.kinds.estimator_benchmark.spec import (
    EstimatorBenchmarkStudy,
)

PLOTTED = ("pehe_normalised", "ate_error_normalised", "qini")
LABELS = {"pehe_normalised": "PEHE / RMS true effect", "ate_error_normalised": "|ATE error| / RMS true effect",
          "qini": "Qini coefficient"}


def _ordered_values(values) -> list:
    values = list(dict.fromkeys(values))
    try:
        return sorted(values, key=float)
    except (TypeError, ValueError):
        return sorted(values, key=str)


def plot_knob(folder: Path, knob: str, points: pd.DataFrame, estimators: list[str]) -> Path:
    """Mean of each plotted metric at each value of one knob, one line per estimator, with a
    95 % t-interval over the trials at that value (every template and metric id swept on it)."""
    mine = points[points["knob"] == knob]
    values = _ordered_values(mine["knob_value"])
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    x_of = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
    figure = artifacts.figure(4.0 * len(PLOTTED), 3.4, columns=len(PLOTTED))[0]
    axes = figure.axes
    drawn = {}  # one colour per estimator in every panel (an average-effect-only one is in some only)
    for axis, metric in zip(axes, PLOTTED):
        for i, estimator in enumerate(estimators):
            rows = mine[mine["estimator"] == estimator]
            if rows[metric].notna().sum() == 0:
                continue
            stats = rows.groupby("knob_value")[metric].agg(["mean", "sem", "count"]).reindex(values)
            x = np.array([x_of[v] for v in values])
            drawn[estimator] = axis.errorbar(x, stats["mean"], yerr=1.96 * stats["sem"].fillna(0), marker="o",
                                             markersize=3, capsize=2, linewidth=1, color=f"C{i % 10}", label=estimator)
        axis.set_title(LABELS[metric], fontsize=9)
        axis.set_xlabel(knob, fontsize=8)
        if not numeric:
            axis.set_xticks(range(len(values)), [str(v) for v in values], fontsize=7)
        elif values and min(values) > 0 and max(values) / min(values) >= 10:
            axis.set_xscale("log")  # visitors from 1,000 to 100,000: each step is a factor
        axis.tick_params(labelsize=7)
        if metric == "pehe_normalised":
            axis.axhline(1.0, color="grey", linestyle=":", linewidth=0.8)  # what predicting no effect scores
    if drawn:  # every estimator drawn in any panel, once, beside the title
        figure.legend(list(drawn.values()), list(drawn), fontsize=7, loc="upper right", ncols=min(len(drawn), 4),
                      frameon=False)
    figure.suptitle(f"Error against {knob} (mean and 95 % interval over trials at each value)", fontsize=10,
                    x=0.02, ha="left")
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.16, top=0.80, wspace=0.3)
    return _save(figure, folder, f"knob_{knob}")


def plot_templates(folder: Path, trials: pd.DataFrame, estimators: list[str], metric: str) -> Path:
    """Estimator x template heat map of the decision metric's mean: which scenario class breaks which estimator."""
    ok = trials[trials["status"] == "ok"]
    table = ok.pivot_table(index="estimator", columns="template", values=metric, aggfunc="mean")
    table = table.reindex(index=[e for e in estimators if e in table.index])
    figure = artifacts.figure(1.2 * max(3, table.shape[1]) + 2.5, 0.45 * max(3, table.shape[0]) + 1.6)[0]
    axis = figure.axes[0]
    values = table.to_numpy(float)
    colours = "viridis" if metric == "qini" else "viridis_r"  # brighter is better either way
    image = axis.imshow(values, cmap=colours, aspect="auto")
    axis.set_xticks(range(table.shape[1]), list(table.columns), rotation=30, ha="right", fontsize=7)
    axis.set_yticks(range(table.shape[0]), list(table.index), fontsize=7)
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6, color="white" if value > np.nanmean(
                values) else "black")
    figure.colorbar(image, ax=axis, shrink=0.8).ax.tick_params(labelsize=7)
    axis.set_title(f"Mean {LABELS.get(metric, metric)} per template", fontsize=9)
    figure.subplots_adjust(left=0.25, right=0.95, bottom=0.3, top=0.88)
    return _save(figure, folder, "templates")


def plot_pairs(folder: Path, pairs: pd.DataFrame, estimators: list[str]) -> Path:
    """P(row estimator better than column estimator) on the decision metric; starred cells are verdicts."""
    n = len(estimators)
    index = {e: i for i, e in enumerate(estimators)}
    matrix = np.full((n, n), np.nan)
    stars = np.zeros((n, n), dtype=bool)
    for pair in pairs.to_dict("records"):
        if pair["estimator"] in index and pair["other"] in index and pair["probability_better"] == pair[
                "probability_better"]:
            i, j = index[pair["estimator"]], index[pair["other"]]
            matrix[i, j], matrix[j, i] = pair["probability_better"], 1 - pair["probability_better"]
            stars[i, j] = pair["verdict"] == "better"
            stars[j, i] = pair["verdict"] == "worse"
    figure = artifacts.figure(0.6 * n + 3.0, 0.5 * n + 1.8)[0]
    axis = figure.axes[0]
    image = axis.imshow(matrix, cmap="RdBu", vmin=0, vmax=1)
    axis.set_xticks(range(n), estimators, rotation=30, ha="right", fontsize=7)
    axis.set_yticks(range(n), estimators, fontsize=7)
    for (i, j), value in np.ndenumerate(matrix):
        if np.isfinite(value):
            axis.text(j, i, f"{value:.2f}{'*' if stars[i, j] else ''}", ha="center", va="center", fontsize=6)
    figure.colorbar(image, ax=axis, shrink=0.8).ax.tick_params(labelsize=7)
    axis.set_title("Share of data sets on which the row does better; * = a verdict", fontsize=9)
    figure.subplots_adjust(left=0.28, right=0.95, bottom=0.3, top=0.9)
    return _save(figure, folder, "pairs")


def _save(figure, folder: Path, name: str) -> Path:
    path = folder / "plots" / f"{artifacts.safe_label(name)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def plot_benchmark(folder: Path, trials: pd.DataFrame, pairs: pd.DataFrame, estimators: list[str], ranked: list[str],
                   metric: str, points: dict[str, list]) -> dict[str, Path]:
    """Every plot of the report, drawn on a worker per core: label -> file. The pairs plot holds
    the ranked estimators only (the others are in no pair)."""
    points = star_points(trials[trials["status"] == "ok"], points)
    knobs = [k for k in _ordered_values(points["knob"]) if points.loc[points["knob"] == k, "knob_value"].nunique() > 1]
    jobs = [("knob", folder, k, points, estimators) for k in knobs]
    jobs += [("templates", folder, trials, estimators, metric)] + ([("pairs", folder, pairs, ranked)] if len(pairs) else [])
    labels = [f"Error against {k}" for k in knobs] + ["Error per template"] + (
        ["Pairs: share of data sets won"] if len(pairs) else [])  # no pair: no empty plot
    return dict(zip(labels, artifacts.in_parallel(_draw, jobs)))


def _draw(job) -> Path:
    what, *arguments = job
    return {"knob": plot_knob, "templates": plot_templates, "pairs": plot_pairs}[what](*arguments)


def format_report(study: EstimatorBenchmarkStudy, board: Leaderboard, trials: pd.DataFrame, *,
                  plots: dict[str, str]) -> str:
    """The benchmark for review: the leaderboard, the pairwise verdicts, where each estimator
    breaks (plots), the failed trials."""
    decision = study.spec.decision
    templates = sorted({e.template for e in study.entries})
    lines = [f"# Estimator benchmark: {study.name}", ""]
    if study.spec.description:
        lines += [study.spec.description.strip(), ""]
    lines += [f"**{headline(study, board.table, board.pairs)}.**", "",
              f"Catalog: {len(study.entries)} entries ({', '.join(templates)}) x {len(study.seeds)} seeds = "
              f"{len(study.dataset_keys)} data sets; {len(study.estimators)} estimators; {len(trials)} trials. "
              f"Leaderboard intervals: {decision.confidence_level:.0%} stratified bootstrap over seeds within "
              f"entries ({decision.bootstrap_resamples} resamples), descriptive. Pairs: the share of data sets on "
              f"which the first estimator does better, with an exact sign-test interval, corrected with "
              f"{decision.correction} across the pairs.", "",
              "## Leaderboard", "",
              "IQM (interquartile mean over entries x seeds, the entries every ranked estimator completed) of "
              "each error, normalised by the root mean square of the true effect: on PEHE, 1.0 is what predicting "
              "no effect scores and 0 is perfect. Qini: 1 ranks units as the true effects do, 0 no better than at "
              "random. The intervals resample seeds within entries: at 2-3 seeds they hold the IQM about 80-87 % "
              "of the time, not 95 % (docs/figures.md); the verdicts below do not rest on them.", "",
              "| rank | estimator | PEHE / RMS effect | ATE error / RMS effect | Qini | sign accuracy | ATE coverage "
              "| fit s | failed |",
              "|---:|---|---|---|---|---|---|---:|---:|"]
    for row in board.table.to_dict("records"):
        cells = []
        for metric in ("pehe_normalised", "ate_error_normalised", "qini"):
            value = row[f"{metric}_iqm"]
            cells.append("n/a" if value != value else
                         f"{value:.3g} [{row[f'{metric}_low']:.3g}, {row[f'{metric}_high']:.3g}]")
        rank = "" if pd.isna(row["rank"]) else str(int(row["rank"]))
        lines.append(f"| {rank} | {row['estimator']} | {' | '.join(cells)} | {_number(row['sign_accuracy'])} | "
                     f"{_number(row['ate_coverage'])} | {_number(row['fit_seconds'])} | {row['failed']} |")
    lines += ["", f"## Pairwise verdicts on {decision.metric} ({SHOWN[decision.metric]})", ""]
    if board.pairs.empty:
        rank_of = dict(zip(board.table["estimator"], board.table["rank"]))
        unranked = [name for name, rank in rank_of.items() if pd.isna(rank)]
        lines += [f"No pairs: fewer than two estimators are ranked on {decision.metric} "
                  f"({sum(not pd.isna(r) for r in rank_of.values())} ranked"
                  + (f"; not ranked, having no {decision.metric} (failed, or an average effect only): "
                     f"{', '.join(unranked)}" if unranked else "") + "). Add an estimator to compare."]
    else:
        lines += ["| pair | verdict | P(first better) | interval | mean difference | data sets |", "|---|---|---|---|---|---:|"]
    for pair in board.pairs.to_dict("records"):
        interval = "" if pair["low"] != pair["low"] else f"[{pair['low']:.3f}, {pair['high']:.3f}] at " \
                                                          f"{pair['interval_level']:.1%}"
        difference = ("" if pair["mean_difference"] != pair["mean_difference"] else
                      f"{pair['mean_difference']:+.3g} [{pair['difference_low']:+.3g}, {pair['difference_high']:+.3g}]")
        lines.append(f"| {pair['subject']} | {pair['verdict']} | {_number(pair['probability_better'], 3)} | {interval} "
                     f"| {difference} | {pair['data_sets']} |")
    lines.append("")
    for label, image in plots.items():
        lines += [f"## {label}", "", image, ""]
    lines += errors_markdown(trials)
    return "\n".join(lines)
