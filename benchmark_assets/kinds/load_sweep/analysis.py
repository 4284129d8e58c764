"""A load sweep's verdicts: per-point aggregates, best configurations, the Pareto frontier, trends."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from benchmark_assets.stats.aggregate import aggregate_metrics
from benchmark_assets.stats.intervals import positive_mean_interval
from benchmark_assets.stats.pareto import pareto_optimal, trend
from benchmark_assets.targets.http_load import LATENCY_METRICS

# Positive quantities with a unit (latencies in ms, rates per second): their interval is on the log
# scale (``positive_mean_interval``). Shares (error rate, attainment) and counts keep the t-interval.
RATES = ("request_throughput_avg", "output_token_throughput_avg", "goodput_avg", "achieved_request_rate")


# The best configurations: name -> (metric statistic, higher is better, unit); None: the latency
# the study ranks by (TTFT p99 when it streams, request latency p99 otherwise).
BEST_CONFIGURATIONS = {"best_throughput": ("request_throughput_avg", True, "requests/s"),
                       "best_latency_p99": (None, False, "ms"),
                       "best_goodput": ("goodput_avg", True, "requests/s")}


def on_log_scale(metric: str) -> bool:
    return metric in RATES or (metric.startswith(tuple(f"{name}_" for name in LATENCY_METRICS))
                               and not metric.endswith("_attainment"))


@dataclass(frozen=True)
class Objective:
    """One axis of the frontier: ``column`` (e.g. ``time_to_first_token_p99``) and its direction."""

    column: str
    maximize: bool


def sweep_aggregates(
    trials: pd.DataFrame,
    point_keys: list[str],
    metrics: list[str],
    *,
    confidence_level: float,
    n_resamples: int,
    rng_seed: int,
    label: str,
    level_for: Callable[[pd.DataFrame], float] | None = None,
) -> pd.DataFrame:
    """One row per (sweep point, metric statistic) over the point's successful trials: n, mean,
    std, min, max, cv, se, t and bootstrap intervals; ``single_run`` where only one trial
    succeeded (no interval then, rather than a crash or a fake one). Latencies and rates get
    their interval (``t_low``/``t_high``) on the log scale, so it stays above 0. ``level_for(rows)``:
    the confidence level of a point with these trials (its look's, with ``stopping``)."""
    frames = []
    for key in point_keys:
        rows = trials[trials["sweep_point"] == key]
        ok = rows[rows["status"] == "ok"]
        if level_for is not None:
            confidence_level = level_for(rows)
        table = aggregate_metrics(ok, metrics, confidence_level=confidence_level, n_resamples=n_resamples,
                                  rng_seed=rng_seed, label=f"{label}|{key}")
        for i, metric in enumerate(table["metric"]):
            if on_log_scale(metric) and table.at[i, "n"] >= 2:
                low, high = positive_mean_interval(ok[metric], confidence_level=confidence_level)
                if low == low:  # every value above 0: the interval stays above 0 too
                    table.loc[i, ["t_low", "t_high"]] = [low, high]
        table.insert(0, "sweep_point", key)
        table.insert(2, "n_failed", int((rows["status"] != "ok").sum()))
        table["single_run"] = table["n"] == 1
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def metric_means(aggregates: pd.DataFrame, column: str) -> pd.Series:
    """The mean of one metric statistic per sweep point (indexed by sweep point)."""
    rows = aggregates[aggregates["metric"] == column]
    return rows.set_index("sweep_point")["mean"]


def summarise_sweep(
    aggregates: pd.DataFrame,
    parameters: dict[str, dict],
    objectives: list[Objective],
    *,
    latency_column: str,
    failures: pd.DataFrame,
    metadata: dict,
    max_error_rate: float = 1.0,
    slos: list[dict] = (),
) -> dict:
    """The sweep summary, shaped like the reference tool's sweep export: metadata,
    per_combination_metrics, best_configurations, pareto_optimal, trends, plus failed trials.

    ``parameters`` maps each sweep point key to its swept parameters, in sweep order."""
    keys = list(parameters)
    per_combination = []
    for key in keys:
        rows = aggregates[aggregates["sweep_point"] == key]
        stats = {
            row.metric: {"mean": _num(row.mean), "std": _num(row.std), "min": _num(row.min), "max": _num(row.max),
                         "cv": _num(row.cv), "se": _num(row.se), "ci_low": _num(row.t_low), "ci_high": _num(row.t_high),
                         "bootstrap_low": _num(row.bootstrap_low), "bootstrap_high": _num(row.bootstrap_high),
                         "n": int(row.n), "single_run": bool(row.single_run)}
            for row in rows.itertuples()
        }
        n_failed = int(rows["n_failed"].max()) if len(rows) else 0
        per_combination.append({"parameters": parameters[key], "sweep_point": key, "metrics": stats,
                                "n_failed_trials": n_failed})
    # Latency and throughput count only requests that succeeded, so a point that fails many of
    # them fast could look best: such points are not ranked.
    error_rates = metric_means(aggregates, "error_rate").reindex(keys)
    excluded = [k for k in keys if pd.notna(error_rates[k]) and error_rates[k] > max_error_rate]
    table = pd.DataFrame({o.column: metric_means(aggregates, o.column).reindex(keys) for o in objectives}, index=keys)
    # A point measured without an objective (goodput of an ingested export) is not ranked either:
    # the frontier would call it dominated.
    missing = {k: [c for c in table.columns if pd.isna(table.at[k, c])] for k in keys if k not in excluded}
    missing = {k: columns for k, columns in missing.items() if columns and len(columns) < len(table.columns)}
    ranked = [k for k in keys if k not in excluded and k not in missing]
    best = {}
    for name, (column, maximize, unit) in BEST_CONFIGURATIONS.items():
        column = column or latency_column
        means = metric_means(aggregates, column).reindex(ranked).dropna()
        if len(means):
            winner = means.idxmax() if maximize else means.idxmin()
            best[name] = {"parameters": parameters[winner], "sweep_point": winner, "metric": column,
                          "value": float(means[winner]), "unit": unit, "maximize": maximize}
    optimal = pareto_optimal(table.loc[ranked].to_numpy(float), [o.maximize for o in objectives]) if ranked else []
    optimal_keys = {k for k, is_optimal in zip(ranked, optimal) if is_optimal}
    mask = [k in optimal_keys for k in keys]
    pareto = [parameters[k] for k, optimal in zip(keys, mask) if optimal]
    trends = {}
    for name in sorted({n for p in parameters.values() for n in p}):
        others = sorted({n for p in parameters.values() for n in p} - {name})
        groups: dict[tuple, list[str]] = {}
        for key in keys:
            groups.setdefault(tuple(parameters[key][o] for o in others), []).append(key)
        trends[name] = [
            {"fixed": dict(zip(others, fixed)), "metric": o.column,
             **trend([parameters[k][name] for k in members], table.loc[members, o.column].to_numpy(float))}
            for fixed, members in groups.items() for o in objectives if len(members) >= 2
        ]
    failed = [{"sweep_point": r.sweep_point, "trial": int(r.trial), "error": str(r.error)} for r in failures.itertuples()]
    return {"metadata": metadata, "per_combination_metrics": per_combination, "best_configurations": best,
            "pareto_optimal": pareto, "pareto_sweep_points": [k for k, optimal in zip(keys, mask) if optimal],
            "trends": trends, "failed_trials": failed,
            "not_ranked_for_errors": {k: float(error_rates[k]) for k in excluded}, "max_error_rate": max_error_rate,
            "not_ranked_for_missing": missing, "slos": list(slos)}


def _num(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)




def summary_headline(summary: dict) -> str:
    """'best throughput: concurrency=16 (123.4 requests/s); best latency p99: concurrency=1 (45.6 ms);
    Pareto frontier: 3 of 8 points'."""
    parts = [f"best {name.removeprefix('best_').replace('_', ' ')}: {_point_label(best['parameters'])} "
             f"({best['value']:.4g} {best['unit']})" for name, best in summary["best_configurations"].items()]
    parts.append(f"Pareto frontier: {len(summary['pareto_sweep_points'])} of "
                 f"{len(summary['per_combination_metrics'])} points")
    return "; ".join(parts)


def _point_label(parameters: dict) -> str:
    return ", ".join(f"{name}={value}" for name, value in parameters.items())
