"""The load sweep's outputs for review: the reference tool's export shapes and the Pareto plot."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import ScalarFormatter

from benchmark_assets import artifacts
from benchmark_assets.kinds.load_sweep.analysis import Objective


def write_sweep_exports(folder: Path, *, summary: dict, aggregates: pd.DataFrame, report: str) -> dict[str, Path]:
    """The reference tool's shapes: a sweep JSON (metadata, per_combination_metrics,
    best_configurations, pareto_optimal, trends) and per-value aggregates as JSON and CSV."""
    paths = artifacts.write_files(folder, {"report.md": report, "sweep_aggregate.json": summary,
                                 "sweep_aggregate.csv": aggregates})
    per_value = folder / "per_value"
    per_value.mkdir(exist_ok=True)
    for combo in summary["per_combination_metrics"]:
        label = artifacts.safe_label(combo["sweep_point"])
        artifacts.write_files(per_value, {f"{label}.json": combo,
                                f"{label}.csv": aggregates[aggregates["sweep_point"] == combo["sweep_point"]]})
    return {**paths, "per_value_dir": per_value}


def _mark_slos(axis, slos: list[dict], x_column: str, y_column: str) -> None:
    """An SLO on a plotted statistic: a dashed line at its bound, the side beyond it shaded (outside
    the SLA)."""
    sides = {y_column: (axis.get_ylim, axis.set_ylim, axis.axhline, axis.axhspan),
             x_column: (axis.get_xlim, axis.set_xlim, axis.axvline, axis.axvspan)}
    for slo in slos:
        if slo["column"] not in sides:
            continue
        get_limits, set_limits, line, span = sides[slo["column"]]
        bound = slo["below"]
        low, high = get_limits()  # the limits the points give, the bound in view, then held
        high = max(high, bound * 1.1)
        line(bound, color="tab:red", linestyle="--", linewidth=0.9, label=f"SLO: {slo['label']}")
        span(bound, high, color="tab:red", alpha=0.06)
        set_limits(low, high)


def _end(value) -> str:
    return "?" if value is None else f"{value:g}"


def _bar(stat: pd.Series):
    """An error bar from the mean to the interval's ends; None where there is no interval, or none a
    float can hold (two far-apart trials: up to inf)."""
    if not np.isfinite([stat["t_low"], stat["t_high"]]).all():
        return None
    return [[stat["mean"] - stat["t_low"]], [stat["t_high"] - stat["mean"]]]


def plot_pareto(folder: Path, aggregates: pd.DataFrame, summary: dict, objectives) -> Path:
    """The first two objectives against each other, every sweep point with its t-interval bars,
    the Pareto-optimal points joined and labelled."""
    figure, axis = artifacts.figure(7.0, 4.8)
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
        colour = "tab:red" if key in optimal else "tab:grey"
        axis.errorbar([x["mean"]], [y["mean"]], xerr=_bar(x), yerr=_bar(y), fmt="o", color=colour, capsize=3)
        axis.annotate(key, (x["mean"], y["mean"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    front = sorted((xs.loc[k, "mean"], ys.loc[k, "mean"]) for k in keys if k in optimal)
    if front:
        axis.plot(*zip(*front), color="tab:red", linewidth=1, label="Pareto frontier")
    met = stat("slos_met")
    within = [k for k in keys if k in met.index and met.loc[k, "mean"] == 1]
    if within:  # every trial of the point met every SLO
        axis.scatter([xs.loc[k, "mean"] for k in within], [ys.loc[k, "mean"] for k in within], s=160,
                     facecolors="none", edgecolors="tab:green", linewidths=1.2, label="met every SLO in every trial")
    capacity = summary.get("capacity") or {}
    at = next((p["sweep_point"] for p in capacity.get("probes", []) if p["load"] == capacity.get("estimate")), None)
    if capacity.get("monotone") and at in keys:  # the highest load that met the SLA
        axis.scatter([xs.loc[at, "mean"]], [ys.loc[at, "mean"]], marker="*", s=260, color="tab:blue", zorder=3,
                     label=f"capacity under the SLA ({capacity['parameter']}={capacity['estimate']:g}, "
                           f"{capacity['confidence_level']:.0%} interval "
                           f"[{_end(capacity['lower'])}, {_end(capacity['upper'])}))")
    axis.margins(x=0.15, y=0.1)  # room for the labels of the extreme points
    y_means = [ys.loc[k, "mean"] for k in keys]
    if y_means and min(y_means) > 0 and max(y_means) / min(y_means) > 20:
        axis.set_yscale("log")  # latency past the knee dwarfs the rest
    _mark_slos(axis, summary.get("slos") or [], x_obj.column, y_obj.column)  # after the margins and the scale
    axis.set_xlabel(f"{x_obj.column} ({'max' if x_obj.maximize else 'min'})")
    axis.set_ylabel(f"{y_obj.column} ({'max' if y_obj.maximize else 'min'})")
    axis.set_title("Load sweep: Pareto frontier (bars: 95% interval over trials)")
    if front or within or axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7)
    if not keys:
        axis.text(0.5, 0.5, "no sweep point has a successful trial", ha="center", transform=axis.transAxes)
    figure.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.92)
    path = folder / "plots" / "pareto.png"
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path)
    return path


VERDICT_COLOURS = {"met": "tab:green", "failed": "tab:red", "uncertain": "tab:orange", "running": "tab:grey"}


def plot_capacity(folder: Path, aggregates: pd.DataFrame, summary: dict) -> Path:
    """One panel per SLO: its statistic's mean at each probed load with its interval, coloured by
    the probe's call; the bound dashed; the capacity's estimate as a line and its interval shaded."""
    capacity, slos = summary["capacity"], summary.get("slos") or []
    figure, axes = artifacts.figure(7.0, 2.2 + 2.0 * len(slos), rows=len(slos))
    axes = np.atleast_1d(axes)
    verdicts = {p["sweep_point"]: p["verdict"] for p in capacity["probes"]}
    loads = {p["sweep_point"]: p["load"] for p in capacity["probes"]}
    for axis, slo in zip(axes, slos):
        rows = aggregates[(aggregates["metric"] == slo["column"]) & aggregates["sweep_point"].isin(loads)]
        for row in rows.to_dict("records"):
            axis.errorbar([loads[row["sweep_point"]]], [row["mean"]], yerr=_bar(pd.Series(row)), fmt="o", capsize=3,
                          color=VERDICT_COLOURS[verdicts[row["sweep_point"]]])
        axis.axhline(slo["below"], color="tab:red", linestyle="--", linewidth=0.9, label=f"SLO: {slo['label']}")
        left, right = axis.get_xlim()  # an open end reaches the plot's edge
        low = capacity["lower"] if capacity["lower"] is not None else left
        high = capacity["upper"] if capacity["upper"] is not None else right
        if capacity["monotone"] and capacity["estimate"] is not None:
            axis.axvspan(low, high, color="tab:blue", alpha=0.12,
                         label=f"capacity's {capacity['confidence_level']:.0%} interval")
            axis.axvline(capacity["estimate"], color="tab:blue", linewidth=1.2,
                         label=f"capacity: {capacity['parameter']}={capacity['estimate']:g}")
        if capacity["high"] / max(capacity["low"], 1e-9) >= 16:
            axis.set_xscale("log", base=2)
            axis.xaxis.set_major_formatter(ScalarFormatter())  # 8, 16, 32 rather than 2^3
        axis.set_ylim(bottom=0)
        axis.set_ylabel(slo["column"] + ("" if slo["metric"] == "error_rate" else " (ms)"), fontsize=8)
        axis.legend(fontsize=7)
    for verdict, colour in VERDICT_COLOURS.items():  # what the colours mean, once
        axes[0].scatter([], [], color=colour, label=f"probe {verdict}")
    axes[0].legend(fontsize=7, ncol=2)
    axes[-1].set_xlabel(capacity["parameter"])
    axes[0].set_title(("Capacity under the SLA (bars: each probe's interval at the study's level; calls use a "
                       "stricter one)" if capacity["monotone"]
                       else "Capacity under the SLA: not monotone, no boundary reported"), fontsize=9)
    figure.tight_layout()
    path = folder / "plots" / "capacity.png"
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path)
    return path


def _capacity_section(summary: dict) -> list[str]:
    capacity = summary.get("capacity")
    if not capacity:
        return []
    unit = "requests in flight" if capacity["parameter"] == "concurrency" else "requests/s"
    lines = ["", "## Capacity under the SLA", "", f"**{capacity['headline']}**", "",
             f"- Search: {capacity['parameter']} from {capacity['low']:g} to {capacity['high']:g} {unit}, doubling "
             f"until a load misses the SLA, then narrowing to within {capacity['precision']:g}; "
             f"{len(capacity['probes'])} loads probed with {capacity['trials']} trials.",
             f"- The interval holds at {capacity['confidence_level']:.0%} over the whole search: each call of a probe "
             f"(met, failed) is one-sided at the level's share for up to {capacity['max_probes']} probes and every "
             "SLO, spent over the probe's looks; loads too close to call are named, not guessed.",
             ]
    if not capacity["monotone"]:
        lines.append(f"- **Not monotone**: {capacity['why']}. A boundary found here would be false; look at the "
                     "server (warm-up, caching, a restart) before searching again.")
    elif not capacity["finished"]:
        lines.append(f"- Not finished: {capacity['why']}.")
    lines += ["", f"| {capacity['parameter']} | trials | call | why |", "|---:|---:|---|---|"]
    lines += [f"| {p['load']:g} | {p['trials']} | {p['verdict']} | {p['reason']} |" for p in capacity["probes"]]
    return lines


def _overload_section(summary: dict) -> list[str]:
    overload = summary["metadata"].get("overload") or {}
    if not overload.get("overloaded") and not overload.get("not_run"):
        return []
    lines = ["", "## Overload", ""]
    first = {}
    for item in overload["overloaded"]:
        first.setdefault(item["sweep_point"], item)
    lines += [f"- {key} was overloaded in trial {item['trial']}: {item['why']}" for key, item in first.items()]
    skipped = overload.get("not_run") or {}
    if skipped:
        lines.append(f"- Not run, as higher loads of an overloaded point: {', '.join(skipped)} "
                     f"({sum(skipped.values())} trials saved); they are left off the frontier.")
    return lines


def _stopping_section(summary: dict) -> list[str]:
    stopping = summary.get("stopping")
    if not stopping or summary.get("capacity"):
        return []
    lines = ["", "## Stopping", "", f"{stopping['headline']}. Each point got trials one at a time from "
             f"{stopping['min_trials']} up to {stopping['max_trials']}, until every decision metric's interval was "
             f"within +-{stopping['precision']:.0%} of its mean; the intervals hold whichever look a point stopped at "
             "(the error budget is spent across the looks).", "", "| sweep point | trials | why it stopped |",
             "|---|---:|---|"]
    lines += [f"| {p['sweep_point']} | {p['trials']} | {p['reason']} |" for p in stopping["points"]]
    return lines


def _slo_section(summary: dict) -> list[str]:
    """Per point: goodput with its interval, each SLO's statistic (and, for a latency SLO, the
    share of requests within its bound), and how many trials met every SLO."""
    slos = summary.get("slos") or []
    if not slos:
        return []
    lines = ["", "## SLOs", "", "- " + "; ".join(s["label"] for s in slos) + ". Goodput: the requests per second "
             "that succeeded within every latency bound (a failed request is a miss); a trial meets the SLOs when "
             "every statistic is below its bound.", ""]
    lines += ["| sweep point | goodput (requests/s) | " + " | ".join(s["label"] for s in slos)
              + " | trials meeting every SLO |", "|---" * (len(slos) + 3) + "|"]
    for combo in summary["per_combination_metrics"]:
        metrics = combo["metrics"]
        cells = [_with_interval(metrics.get("goodput_avg"))]
        for slo in slos:
            stat = metrics.get(slo["column"])
            if not stat or stat["mean"] is None:
                cells.append("n/a")
                continue
            shown = f"{stat['mean']:.2%}" if slo["metric"] == "error_rate" else f"{stat['mean']:.4g} ms"
            attained = metrics.get(f"{slo['metric']}_attainment")
            if attained and attained["mean"] is not None:
                shown += f" ({attained['mean']:.1%} of requests within)"
            cells.append(shown)
        met, failed = metrics.get("slos_met"), combo["n_failed_trials"]  # a failed trial met none
        cells.append(f"{round(met['mean'] * met['n'])} of {met['n'] + failed}" if met and met["mean"] is not None
                     else f"0 of {failed}" if failed else "n/a")
        lines.append(f"| {combo['sweep_point']} | " + " | ".join(cells) + " |")
    return lines


def _with_interval(stat: dict | None) -> str:
    if not stat or stat["mean"] is None:
        return "n/a"
    if stat["single_run"] or stat["ci_low"] is None:
        return f"{stat['mean']:.4g} (single run)"
    return f"{stat['mean']:.4g} [{stat['ci_low']:.4g}, {stat['ci_high']:.4g}]"


def _trials_per_point(meta: dict) -> str:
    last = meta.get("max_trials_per_value", meta["num_trials_per_value"])
    return f"{meta['num_trials_per_value']}" + (f" to {last}" if last != meta["num_trials_per_value"] else "")


def format_report(summary: dict, objectives: list[Objective], *, study: str, description: str) -> str:
    """A markdown report a reviewer can paste into a pull request."""
    meta = summary["metadata"]
    swept = ", ".join(f"{p['name']} {p['values']}" for p in meta["sweep_parameters"])
    lines = [f"# Load sweep: {study}", "", description, "",
             f"- Swept: {swept or 'nothing'}; {_trials_per_point(meta)} trials per point ({meta['sweep_mode']} order); "
             f"endpoint {meta['url']}"
             + (f"; {meta['ingested_trials']} trials ingested from aiperf exports" if meta.get("ingested_trials") else ""),
             f"- Intervals: {meta['confidence_level']:.0%} over trials, Student-t; on the log scale for latencies and "
             "rates (Cox's method for the mean, so they stay above 0); bootstrap in the exports", ""]
    for name, best in summary["best_configurations"].items():
        lines.append(f"- **{name}**: {best['sweep_point']} ({best['metric']} {best['value']:.4g} {best['unit']})")
    for key, rate in summary["not_ranked_for_errors"].items():
        lines.append(f"- not ranked: {key} failed {rate:.1%} of its requests (limit {summary['max_error_rate']:.1%})")
    for key, columns in summary.get("not_ranked_for_missing", {}).items():
        lines.append(f"- not ranked: {key} has no {', '.join(columns)} (ingested exports have no per-request rows)")
    lines += ["", f"**Pareto-optimal** ({', '.join(('max ' if o.maximize else 'min ') + o.column for o in objectives)}): "
              + (", ".join(summary["pareto_sweep_points"]) or "none"), ""]
    header = " | ".join(o.column for o in objectives)
    lines += [f"| sweep point | {header} | failed trials | Pareto |", "|---" * (len(objectives) + 3) + "|"]
    for combo in summary["per_combination_metrics"]:
        cells = []
        for o in objectives:
            cells.append(_with_interval(combo["metrics"].get(o.column)))
        optimal = "yes" if combo["sweep_point"] in summary["pareto_sweep_points"] else ""
        lines.append(f"| {combo['sweep_point']} | {' | '.join(cells)} | {combo['n_failed_trials']} | {optimal} |")
    lines += _capacity_section(summary)
    lines += _overload_section(summary)
    lines += _stopping_section(summary)
    lines += _slo_section(summary)
    if meta.get("ingested"):
        lines += ["", "## Ingested trials", "", "Measured elsewhere and read from aiperf exports, against the server each "
                  "file records (the study's own endpoint is the one above):", "",
                  "| sweep point | trial | file | endpoint |", "|---|---:|---|---|"]
        lines += [f"| {i['sweep_point']} | {i['trial']} | {i['file']} | {i['endpoint']} |" for i in meta["ingested"]]
    lines += ["", "## Trends", ""]
    for name, items in summary["trends"].items():
        for item in items:
            fixed = f" at {item['fixed']}" if item["fixed"] else ""
            where = f" (extreme at {name}={item['extreme_at']:g})" if item["direction"] in ("peaks", "dips") else ""
            lines.append(f"- {item['metric']} along {name}{fixed}: {item['direction']}{where}, Spearman rho "
                         f"{item['spearman_rho']:.2f}")
    if summary["failed_trials"]:
        lines += ["", "## Failed trials", "", "| sweep point | trial | error |", "|---|---|---|"]
        lines += [f"| {f['sweep_point']} | {f['trial']} | {f['error'].splitlines()[0][:200]} |" for f in summary["failed_trials"]]
    return "\n".join(lines) + "\n"
