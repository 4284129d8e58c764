"""Files a reviewer reads: the markdown report, JSON/CSV exports, sensitivity plots, the patch."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from benchmark_assets.sweep import ConstantSweep, format_value  # noqa: E402


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
    folder: Path, sweep: ConstantSweep, aggregates: pd.DataFrame, verdict: pd.Series, metric: str
) -> Path:
    """Train and validation curves of one constant with 95 % t-interval bands."""
    figure, axis = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    rows = aggregates[aggregates["metric"] == metric]
    for split, colour in (("train", "tab:blue"), ("validation", "tab:orange")):
        points = []
        for value in sweep.values:
            match = rows[(rows["sweep_point"] == sweep.key_for(value)) & (rows["split"] == split)]
            if len(match):
                r = match.iloc[0]
                points.append((float(value), r["mean"], r["t_low"], r["t_high"]))
        if not points:
            continue
        frame = pd.DataFrame(points, columns=["value", "mean", "low", "high"]).sort_values("value")
        axis.plot(frame["value"], frame["mean"], marker="o", color=colour, label=f"{split} mean")
        axis.fill_between(frame["value"], frame["low"], frame["high"], color=colour, alpha=0.2, label=f"{split} 95% CI")
    axis.axvline(float(sweep.current), color="grey", linestyle="--", label=f"current {format_value(sweep.current)}")
    if verdict["proposed"] != verdict["current"]:
        axis.axvline(float(verdict["proposed"]), color="tab:green", linestyle=":", label=f"proposed {format_value(verdict['proposed'])}")
    axis.set_xlabel(sweep.name)
    axis.set_ylabel(metric)
    axis.set_title(f"{sweep.name}: {verdict['decision']}")
    axis.legend(fontsize=7, loc="best")
    figure.tight_layout()
    path = folder / "plots" / f"{safe_label(sweep.name)}.png"
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def write_exports(folder: Path, *, verdicts: pd.DataFrame, aggregates: pd.DataFrame, summary: dict, report: str, patch: str) -> dict[str, Path]:
    paths = {
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
    paths["summary_json"].write_text(json.dumps(summary, indent=2, default=str))
    paths["patch"].write_text(patch)
    return paths
