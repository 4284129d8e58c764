"""The acceptance suite's plots: per benchmark, each criterion's measurements on both sides and
its effect's interval against the band asked for."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark_assets import artifacts
from benchmark_assets.kinds.acceptance.spec import SIDES, UNITS

SIDE_COLOURS = {"baseline": "tab:blue", "optimised": "tab:orange"}
VERDICT_COLOURS = {"met": "tab:green", "not_met": "tab:red", "inconclusive": "tab:grey"}


def _scaled(values, measure: str) -> tuple[np.ndarray, str]:
    unit = UNITS.get(measure)
    values = np.asarray(values, dtype=float)
    if unit == "s":
        return values * 1e3, f"{measure} (ms)"
    if unit == "bytes":
        return values / 2**20, f"{measure} (MiB)"
    return values, measure


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
