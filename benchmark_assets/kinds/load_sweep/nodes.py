"""The node functions of ``kind: load_sweep``: each computes one asset of its graph from its inputs
(``kinds.base.Node``), calling the kind's analysis and report; ``kind.py`` wires them."""
from __future__ import annotations

import pandas as pd

from benchmark_assets import artifacts
from benchmark_assets.kinds.base import (
    INBOX_BASE,
    INBOX_SOURCE,
    SOURCE,
    LedgerEntry,
    Markdown,
    NodeResult,
    is_ingested,
    resumed_trials,
)
from benchmark_assets.kinds.load_sweep.analysis import (
    Objective,
    metric_means,
    summarise_sweep,
    summary_headline,
    sweep_aggregates,
)
from benchmark_assets.kinds.load_sweep.report import format_report, plot_pareto, write_sweep_exports
from benchmark_assets.kinds.load_sweep.spec import LoadSweepStudy
from benchmark_assets.kinds.load_sweep.trials import metric_columns, resumable, run_sweep_trials

PARETO, DOMINATED, NOT_RANKED, NO_DATA = "pareto_optimal", "dominated", "not_ranked", "no_data"


def objectives_of(study: LoadSweepStudy) -> list[Objective]:
    return [Objective(column=o.column, maximize=o.direction == "maximize") for o in study.objectives]


def trials(study: LoadSweepStudy, step) -> NodeResult:
    """Every run measures again, but a run that resumes an interrupted one (within the study's
    ``resume_within_minutes``) keeps the trials it had finished."""
    return resumed_trials(step, resumable(study, step.checkpointed()), ("sweep_point", "trial"),
                          lambda keys, on_row: run_sweep_trials(
                              study, keys, progress=step.progress(f"{study.name} load trials"), log=step.log,
                              on_row=on_row))


def aggregates(study: LoadSweepStudy, step, trials: pd.DataFrame) -> NodeResult:
    d = study.spec.decision
    if study.spec.slos:  # against the study's SLOs as they are now, from each trial's statistics
        trials = trials.assign(slos_met=[study.slos_met(row) for row in trials.to_dict("records")])
    frame = sweep_aggregates(trials, list(step.partition_keys), metric_columns(trials),
                             confidence_level=d.confidence_level, n_resamples=d.bootstrap_resamples,
                             rng_seed=d.rng_seed, label=study.name)
    return NodeResult(frame, {"rows": len(frame),
                           "single_run_points": int(frame.groupby("sweep_point")["single_run"].any().sum())})


def sweep_summary(study: LoadSweepStudy, step, aggregates: pd.DataFrame, trials: pd.DataFrame) -> NodeResult:
    keys = [k for k in study.point_keys if k in set(aggregates["sweep_point"])]
    aggregates = aggregates[aggregates["sweep_point"].isin(keys)]
    trials = trials[trials["sweep_point"].isin(keys)]
    objectives = objectives_of(study)
    load = study.load
    # rows of versions that did not record a source are told by the inbox's trial numbers
    ingested = is_ingested(trials, legacy=trials["trial"].astype(int) >= INBOX_BASE)
    metadata = {
        "sweep_parameters": [{"name": n, "values": v} for n, v in study.swept.items()],
        "num_combinations": len(keys), "num_trials_per_value": study.spec.trials, "sweep_mode": study.spec.order,
        "cooldown_seconds": float(study.spec.cooldown_seconds), "same_seed": study.spec.same_seed,
        "confidence_level": study.spec.decision.confidence_level, "url": load.url, "endpoint": load.endpoint,
        "streaming": load.streaming, "study_hash": study.spec_hash,
        "ingested_trials": int(ingested.sum()),
        # which trials came from files, and from which file and server
        "ingested": [{"sweep_point": r["sweep_point"], "trial": int(r["trial"]),
                      "file": str(r.get(SOURCE, "")).removeprefix(INBOX_SOURCE),
                      "endpoint": str(r.get("endpoint") or "(not recorded)")}
                     for r in trials[ingested].to_dict("records")],
    }
    summary = summarise_sweep(
        aggregates, {k: study.point(k).params for k in keys}, objectives,
        latency_column="time_to_first_token_p99" if load.streaming else "request_latency_p99",
        failures=trials[trials["status"] != "ok"], metadata=metadata,
        max_error_rate=float(study.spec.decision.max_error_rate),
        slos=[{"label": s.label, "metric": s.metric, "column": s.column, "below": float(s.below)} for s in study.spec.slos],
    )
    report = format_report(summary, objectives, study=study.name, description=study.spec.description)
    folder = artifacts.run_dir(study.name, step.run_id)
    paths = write_sweep_exports(folder, summary=summary, aggregates=aggregates, report=report)
    paths["pareto_plot"] = plot_pareto(folder, aggregates, summary, objectives)
    table = pd.DataFrame({
        "sweep_point": keys,
        "pareto_optimal": [k in summary["pareto_sweep_points"] for k in keys],
        **{o.column: metric_means(aggregates, o.column).reindex(keys).to_numpy(float) for o in objectives},
    })
    return NodeResult(table, {
        "headline": summary_headline(summary),
        "pareto_optimal": ", ".join(summary["pareto_sweep_points"]) or "none",
        **{name: best["sweep_point"] for name, best in summary["best_configurations"].items()},
        "failed_trials": len(summary["failed_trials"]), "report": Markdown(report),
        "points": table,
        "plots": Markdown(artifacts.budgeted_markdown([
            (f"Pareto frontier ({' / '.join(o.column for o in objectives)})", paths["pareto_plot"])])),
        "artifacts": folder,
        **{f"file_{name}": path for name, path in paths.items()},
    }, ledger=ledger_entries(study, summary, aggregates, objectives, keys))


def ledger_entries(study: LoadSweepStudy, summary: dict, aggregates: pd.DataFrame, objectives: list[Objective],
                   keys: list[str]) -> list[LedgerEntry]:
    """The best configuration per criterion (its mean with its t-interval), then every point's
    place on the frontier: Pareto-optimal, dominated, not ranked for failing requests, or no data."""
    level = float(study.spec.decision.confidence_level)
    by_point = aggregates.set_index(["sweep_point", "metric"])
    entries = []
    for name, best in summary["best_configurations"].items():
        row = by_point.loc[(best["sweep_point"], best["metric"])]
        direction = "highest" if best["maximize"] else "lowest"
        entries.append(LedgerEntry(
            subject=name, decision="best", metric=best["metric"], proposal=best["parameters"],
            reason=f"{best['sweep_point']} has the {direction} mean {best['metric']} ({best['value']:.4g} "
                   f"{best['unit']}) of the ranked sweep points",
            effect=float(best["value"]), ci_low=float(row["t_low"]), ci_high=float(row["t_high"]),
            adjusted_ci_low=float(row["t_low"]), adjusted_ci_high=float(row["t_high"]), confidence_level=level,
            details={"sweep_point": best["sweep_point"], "unit": best["unit"], "n": int(row["n"])},
        ))
    axes = ", ".join(("max " if o.maximize else "min ") + o.column for o in objectives)
    for key in keys:
        means = {o.column: float(metric_means(aggregates, o.column).get(key, float("nan"))) for o in objectives}
        if all(mean != mean for mean in means.values()):
            decision, reason = NO_DATA, "no successful trial measured the objectives"
        elif key in summary["not_ranked_for_missing"]:
            decision = NOT_RANKED
            reason = (f"{', '.join(summary['not_ranked_for_missing'][key])} not measured (an ingested export has no "
                      "per-request rows to count goodput in), so it cannot be placed on the frontier")
        elif key in summary["not_ranked_for_errors"]:
            decision = NOT_RANKED
            reason = (f"failed {summary['not_ranked_for_errors'][key]:.1%} of its requests "
                      f"(limit {summary['max_error_rate']:.1%})")
        elif key in summary["pareto_sweep_points"]:
            decision, reason = PARETO, f"no other ranked point is at least as good on every objective ({axes})"
        else:
            decision, reason = DOMINATED, f"another ranked point is at least as good on every objective ({axes})"
        entries.append(LedgerEntry(subject=key, decision=decision, reason=reason,
                                   metric=",".join(o.column for o in objectives), proposal=study.point(key).params,
                                   confidence_level=level, details={"means": means}))
    return entries


