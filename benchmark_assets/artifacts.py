"""Files a reviewer reads: the markdown report, JSON/CSV exports, sensitivity plots, the patch."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmark_assets.sweep import ConstantSweep, format_value

SPLIT_COLOURS = (("train", "tab:blue"), ("validation", "tab:orange"))


def safe_label(text: str) -> str:
    """A file-name-safe label: letters, digits, dot, dash, underscore; never a path."""
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "unnamed"
    return label[:120]


def artifacts_dir(study_name: str) -> Path:
    """$BENCHMARK_ASSETS_ARTIFACTS/<study>, by default $DAGSTER_HOME/artifacts/<study>."""
    root = Path(os.environ.get("BENCHMARK_ASSETS_ARTIFACTS") or Path(os.environ.get("DAGSTER_HOME", ".dagster_home")) / "artifacts")
    folder = (root / safe_label(study_name)).resolve()
    if root.resolve() not in folder.parents:
        raise ValueError(f"artifact folder {folder} escapes {root}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def plot_sensitivity(
    folder: Path, sweep: ConstantSweep, aggregates: pd.DataFrame, gains: pd.DataFrame, verdict: pd.Series,
    metric: str, *, improvement_threshold: float,
) -> Path:
    """Two panels per constant. Left: the metric on train and validation with 95 % t-bands.
    Right: the paired gain of each value over the current one (what the ratchet decides on),
    with its band, the improvement threshold and, at the proposed value, the corrected interval
    the verdict used."""
    figure = Figure(figsize=(10.0, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    raw_axis, gain_axis = figure.subplots(1, 2)
    rows = aggregates[aggregates["metric"] == metric]
    for split, colour in SPLIT_COLOURS:
        points = []
        for value in sweep.values:
            match = rows[(rows["sweep_point"] == sweep.key_for(value)) & (rows["split"] == split)]
            if len(match):
                r = match.iloc[0]
                points.append((float(value), r["mean"], r["t_low"], r["t_high"]))
        if points:
            frame = pd.DataFrame(points, columns=["value", "mean", "low", "high"]).sort_values("value")
            raw_axis.plot(frame["value"], frame["mean"], marker="o", color=colour, label=f"{split} mean")
            raw_axis.fill_between(frame["value"], frame["low"], frame["high"], color=colour, alpha=0.2)
        curve = gains[(gains["constant"] == sweep.name) & (gains["split"] == split)].sort_values("value")
        if len(curve):
            gain_axis.plot(curve["value"], curve["gain"], marker="o", color=colour, label=f"{split} paired gain")
            gain_axis.fill_between(curve["value"], curve["t_low"], curve["t_high"], color=colour, alpha=0.2)
    gain_axis.axhline(0.0, color="black", linewidth=0.8)
    gain_axis.axhline(improvement_threshold, color="tab:red", linestyle="--", linewidth=0.8,
                      label=f"improvement threshold {format_value(improvement_threshold)}")
    low, high = verdict.get("corrected_ci_low"), verdict.get("corrected_ci_high")
    if pd.notna(low) and pd.notna(high) and pd.notna(verdict.get("validation_delta")):
        delta = float(verdict["validation_delta"])
        gain_axis.errorbar([float(verdict["proposed"])], [delta], yerr=[[delta - low], [high - delta]], fmt="D",
                           color="tab:green", capsize=4, label="verdict: corrected bootstrap CI")
    for axis in (raw_axis, gain_axis):
        axis.axvline(float(sweep.current), color="grey", linestyle="--", label=f"current {format_value(sweep.current)}")
        if verdict["proposed"] != verdict["current"]:
            axis.axvline(float(verdict["proposed"]), color="tab:green", linestyle=":",
                         label=f"proposed {format_value(verdict['proposed'])}")
        axis.set_xlabel(sweep.name)
        axis.legend(fontsize=7, loc="best")
    raw_axis.set_ylabel(f"{metric} (mean, 95% t-band over scenarios)")
    gain_axis.set_ylabel(f"{metric} gain over current (paired by scenario)")
    figure.suptitle(f"{sweep.name}: {verdict['decision']}")
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.9, wspace=0.28)
    path = folder / "plots" / f"{safe_label(sweep.name)}.png"
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path)
    return path


def write_exports(folder: Path, *, verdicts: pd.DataFrame, aggregates: pd.DataFrame, gains: pd.DataFrame, summary: dict,
                  report: str, patch: str) -> dict[str, Path]:
    paths = {
        "sensitivity_csv": folder / "sensitivity.csv",
        "report": folder / "report.md",
        "verdicts_csv": folder / "verdicts.csv",
        "verdicts_json": folder / "verdicts.json",
        "aggregates_csv": folder / "aggregates.csv",
        "summary_json": folder / "summary.json",
        "patch": folder / "proposed.patch",
    }
    paths["report"].write_text(report)
    verdicts.to_csv(paths["verdicts_csv"], index=False)
    paths["verdicts_json"].write_text(verdicts.to_json(orient="records", indent=2))
    aggregates.to_csv(paths["aggregates_csv"], index=False)
    gains.to_csv(paths["sensitivity_csv"], index=False)
    paths["summary_json"].write_text(json.dumps(summary, indent=2, default=str))
    paths["patch"].write_text(patch)
    return paths
