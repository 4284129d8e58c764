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


def write_files(folder: Path, files: dict[str, object]) -> dict[str, Path]:
    """Write each named file in ``folder``: text as is, a DataFrame as CSV (``.csv``) or JSON
    records (``.json``), anything else as JSON. Returns {``report_md``-style name: path}."""
    paths = {}
    for name, content in files.items():
        path = folder / safe_label(name)
        if isinstance(content, str):
            path.write_text(content)
        elif isinstance(content, pd.DataFrame):
            if path.suffix == ".csv":
                content.to_csv(path, index=False)
            else:
                path.write_text(content.to_json(orient="records", indent=2))
        else:
            path.write_text(json.dumps(content, indent=2, default=str))
        paths[path.name.replace(".", "_")] = path
    return paths


def _figure(width: float, height: float, columns: int = 1):
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.subplots(1, columns)


ARM_COLOURS = {"control": "tab:blue", "candidate": "tab:orange"}


def plot_variance(folder: Path, variance: pd.DataFrame, metric: str, *, threshold: float) -> Path:
    """CV of the seed-averaged metric against the number of seeds, per arm, with its band."""
    figure, axis = _figure(6.4, 4.0)
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
    import json

    from benchmark_assets.stats import describe

    figure, (left, right) = _figure(11.0, 4.0, 2)
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
        steps = [json.loads(t).get(metric, {}).get("steps", [0]) for t in ok["curves_json"]][0]
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


def write_sweep_exports(folder: Path, *, summary: dict, aggregates: pd.DataFrame, report: str) -> dict[str, Path]:
    """The reference tool's shapes: a sweep JSON (metadata, per_combination_metrics,
    best_configurations, pareto_optimal, trends) and per-value aggregates as JSON and CSV."""
    paths = write_files(folder, {"report.md": report, "sweep_aggregate.json": summary,
                                 "sweep_aggregate.csv": aggregates})
    per_value = folder / "per_value"
    per_value.mkdir(exist_ok=True)
    for combo in summary["per_combination_metrics"]:
        label = safe_label(combo["sweep_point"])
        write_files(per_value, {f"{label}.json": combo,
                                f"{label}.csv": aggregates[aggregates["sweep_point"] == combo["sweep_point"]]})
    return {**paths, "per_value_dir": per_value}


def plot_pareto(folder: Path, aggregates: pd.DataFrame, summary: dict, objectives) -> Path:
    """The first two objectives against each other, every sweep point with its t-interval bars,
    the Pareto-optimal points joined and labelled."""
    figure, axis = _figure(7.0, 4.8)
    x_obj, y_obj = objectives[0], objectives[1]

    def stat(column: str) -> pd.DataFrame:
        return aggregates[aggregates["metric"] == column].set_index("sweep_point")

    xs, ys = stat(x_obj.column), stat(y_obj.column)
    keys = [c["sweep_point"] for c in summary["per_combination_metrics"]
            if c["sweep_point"] in xs.index and c["sweep_point"] in ys.index
            and pd.notna(xs.loc[c["sweep_point"], "mean"]) and pd.notna(ys.loc[c["sweep_point"], "mean"])]
    optimal = set(summary["pareto_sweep_points"])
    for key in keys:
        x, y = xs.loc[key], ys.loc[key]
        xerr = None if pd.isna(x["t_low"]) else [[x["mean"] - x["t_low"]], [x["t_high"] - x["mean"]]]
        yerr = None if pd.isna(y["t_low"]) else [[y["mean"] - y["t_low"]], [y["t_high"] - y["mean"]]]
        colour = "tab:red" if key in optimal else "tab:grey"
        axis.errorbar([x["mean"]], [y["mean"]], xerr=xerr, yerr=yerr, fmt="o", color=colour, capsize=3)
        axis.annotate(key, (x["mean"], y["mean"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    front = sorted((xs.loc[k, "mean"], ys.loc[k, "mean"]) for k in keys if k in optimal)
    if front:
        axis.plot(*zip(*front), color="tab:red", linewidth=1, label="Pareto frontier")
    axis.margins(x=0.15, y=0.1)  # room for the labels of the extreme points
    y_means = [ys.loc[k, "mean"] for k in keys]
    if y_means and min(y_means) > 0 and max(y_means) / min(y_means) > 20:
        axis.set_yscale("log")  # latency past the knee dwarfs the rest
    axis.set_xlabel(f"{x_obj.column} ({'max' if x_obj.maximize else 'min'})")
    axis.set_ylabel(f"{y_obj.column} ({'max' if y_obj.maximize else 'min'})")
    axis.set_title("Load sweep: Pareto frontier (bars: 95% t-interval over trials)")
    if front:
        axis.legend(fontsize=7)
    if not keys:
        axis.text(0.5, 0.5, "no sweep point has a successful trial", ha="center", transform=axis.transAxes)
    figure.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.92)
    path = folder / "plots" / "pareto.png"
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path)
    return path
