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
from benchmark_assets.kinds.load_sweep.followups import round_trials, stopping_table
from benchmark_assets.kinds.load_sweep.report import format_report, plot_capacity, plot_pareto, write_sweep_exports
from benchmark_assets.kinds.load_sweep.spec import LoadSweepStudy
from benchmark_assets.kinds.load_sweep.trials import NOT_RUN, metric_columns, resumable, run_sweep_trials
from benchmark_assets.stats.sequential import look_alpha

PARETO, DOMINATED, NOT_RANKED, NO_DATA = "pareto_optimal", "dominated", "not_ranked", "no_data"
CAPACITY_SUBJECT = "capacity_under_sla"


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
    trials = round_trials(study, trials)
    if study.spec.slos:  # against the study's SLOs as they are now, from each trial's statistics
        trials = trials.assign(slos_met=[study.slos_met(row) for row in trials.to_dict("records")])
    frame = sweep_aggregates(trials, list(step.partition_keys), metric_columns(trials),
                             confidence_level=d.confidence_level, n_resamples=d.bootstrap_resamples,
                             rng_seed=d.rng_seed, label=study.name, level_for=level_for(study))
    return NodeResult(frame, {"rows": len(frame),
                           "single_run_points": int(frame.groupby("sweep_point")["single_run"].any().sum())})


def level_for(study: LoadSweepStudy):
    """With ``stopping`` (or a capacity search), a point's intervals hold over every look it may
    have stopped at: the level of its look (``stats.sequential.look_alpha``); None: the study's."""
    first, last = study.trial_range
    if first == last:
        return None
    alpha = 1.0 - float(study.spec.decision.confidence_level)
    spending = study.spec.stopping.spending
    # the look a point stopped at: its trials this round, failed ones too
    return lambda rows: 1.0 - look_alpha(max(len(rows), 1), first, last, alpha, spending)


def stopping(study: LoadSweepStudy, step, trials: pd.DataFrame) -> NodeResult:
    table, headline, _ = stopping_table(study, trials)
    return NodeResult(table, {"headline": headline, "points": table,
                              "still_measuring": int((~table["done"].astype(bool)).sum()) if len(table) else 0})


def sweep_summary(study: LoadSweepStudy, step, aggregates: pd.DataFrame, trials: pd.DataFrame,
                  stopping: pd.DataFrame) -> NodeResult:
    _, stop_headline, search = stopping_table(study, trials)
    measured = set(aggregates["sweep_point"])
    # a capacity search's probes are its latest run's (an earlier search's loads keep their partitions)
    keys = ([p.key for p in search.probes if p.key in measured] if search is not None
            else study.ordered_points(measured))
    aggregates = aggregates[aggregates["sweep_point"].isin(keys)]
    trials = round_trials(study, trials)
    trials = trials[trials["sweep_point"].isin(keys)]
    objectives = objectives_of(study)
    load = study.load
    first, last = study.trial_range
    # rows of versions that did not record a source are told by the inbox's trial numbers
    ingested = is_ingested(trials, legacy=trials["trial"].astype(int) >= INBOX_BASE)
    not_run = trials["error"].astype(str).str.startswith(NOT_RUN)
    overloaded = trials.get("overloaded", pd.Series("", index=trials.index)).fillna("").astype(str)
    metadata = {
        "sweep_parameters": [{"name": n, "values": v} for n, v in study.swept.items()],
        "num_combinations": len(keys), "num_trials_per_value": first, "max_trials_per_value": last,
        "sweep_mode": study.spec.order,
        "cooldown_seconds": float(study.spec.cooldown_seconds), "same_seed": study.spec.same_seed,
        "confidence_level": study.spec.decision.confidence_level, "url": load.url, "endpoint": load.endpoint,
        "streaming": load.streaming, "study_hash": study.spec_hash,
        "ingested_trials": int(ingested.sum()),
        # which trials came from files, and from which file and server
        "ingested": [{"sweep_point": r["sweep_point"], "trial": int(r["trial"]),
                      "file": str(r.get(SOURCE, "")).removeprefix(INBOX_SOURCE),
                      "endpoint": str(r.get("endpoint") or "(not recorded)")}
                     for r in trials[ingested].to_dict("records")],
        # which points showed overload, and which higher loads were not run for it
        "overload": {"overloaded": [{"sweep_point": r["sweep_point"], "trial": int(r["trial"]), "why": why}
                                    for r, why in zip(trials.to_dict("records"), overloaded) if why],
                     "not_run": {str(k): int(v) for k, v in trials[not_run].groupby("sweep_point").size().items()},
                     "limits": study.spec.overload and study.spec.overload.model_dump()},
    }
    summary = summarise_sweep(
        aggregates, {k: study.point(k).params for k in keys}, objectives,
        latency_column="time_to_first_token_p99" if load.streaming else "request_latency_p99",
        failures=trials[(trials["status"] != "ok") & ~not_run], metadata=metadata,
        max_error_rate=float(study.spec.decision.max_error_rate),
        slos=[{"label": s.label, "metric": s.metric, "column": s.column, "below": float(s.below)} for s in study.spec.slos],
    )
    if study.spec.stopping is not None or search is not None:
        summary["stopping"] = {"headline": stop_headline, "precision": study.spec.stopping and
                               float(study.spec.stopping.precision), "min_trials": first, "max_trials": last,
                               "points": stopping.to_dict("records")}
    if search is not None:
        summary["capacity"] = capacity_summary(search)
    report = format_report(summary, objectives, study=study.name, description=study.spec.description)
    folder = artifacts.run_dir(study.name, step.run_id)
    paths = write_sweep_exports(folder, summary=summary, aggregates=aggregates, report=report)
    paths["pareto_plot"] = plot_pareto(folder, aggregates, summary, objectives)
    plots = [(f"Pareto frontier ({' / '.join(o.column for o in objectives)})", paths["pareto_plot"])]
    if search is not None:
        paths["capacity_plot"] = plot_capacity(folder, aggregates, summary)
        plots.insert(0, ("Capacity under the SLA: each SLO statistic against the load", paths["capacity_plot"]))
    table = pd.DataFrame({
        "sweep_point": keys,
        "pareto_optimal": [k in summary["pareto_sweep_points"] for k in keys],
        **{o.column: metric_means(aggregates, o.column).reindex(keys).to_numpy(float) for o in objectives},
    })
    return NodeResult(table, {
        "headline": summary["capacity"]["headline"] if search is not None else summary_headline(summary),
        "pareto_optimal": ", ".join(summary["pareto_sweep_points"]) or "none",
        **{name: best["sweep_point"] for name, best in summary["best_configurations"].items()},
        "failed_trials": len(summary["failed_trials"]), "report": Markdown(report),
        "points": table,
        "plots": Markdown(artifacts.budgeted_markdown(plots)),
        "artifacts": folder,
        **{f"file_{name}": path for name, path in paths.items()},
    }, ledger=ledger_entries(study, summary, aggregates, objectives, keys))


def capacity_summary(search) -> dict:
    """The capacity search's findings, JSON-able, for the export, the report and the plot."""
    plan = search.plan
    return {"parameter": plan.parameter, "headline": search.headline(), "estimate": search.estimate,
            "lower": search.lower, "upper": search.upper, "monotone": search.monotone, "binding": list(search.binding),
            "finished": search.done, "why": search.why, "low": plan.low, "high": plan.high,
            "precision": plan.precision, "confidence_level": 1.0 - plan.alpha, "max_probes": plan.max_probes,
            "trials": int(sum(p.trials for p in search.probes)),
            "probes": [{"sweep_point": p.key, "load": p.value, "trials": int(p.trials), "verdict": p.verdict,
                        "met_on_means": p.met_on_means, "binding": list(p.binding), "reason": p.reason}
                       for p in search.probes]}


def ledger_entries(study: LoadSweepStudy, summary: dict, aggregates: pd.DataFrame, objectives: list[Objective],
                   keys: list[str]) -> list[LedgerEntry]:
    """The capacity under the SLA (when searched), the best configuration per criterion (its mean
    with its t-interval), then every point's place on the frontier: Pareto-optimal, dominated,
    not ranked for failing requests, or no data."""
    level = float(study.spec.decision.confidence_level)
    by_point = aggregates.set_index(["sweep_point", "metric"])
    entries = []
    capacity = summary.get("capacity")
    if capacity and capacity["finished"]:
        found = capacity["monotone"] and capacity["estimate"] is not None
        entries.append(LedgerEntry(
            subject=CAPACITY_SUBJECT, decision="capacity" if found else "no_capacity", metric=capacity["parameter"],
            reason=capacity["headline"], proposal={capacity["parameter"]: capacity["estimate"]},
            effect=float(capacity["estimate"]) if found else float("nan"),
            ci_low=float(capacity["lower"]) if capacity["lower"] is not None else float("nan"),
            ci_high=float(capacity["upper"]) if capacity["upper"] is not None else float("nan"),
            confidence_level=capacity["confidence_level"],
            details={"binding": capacity["binding"], "trials": capacity["trials"], "monotone": capacity["monotone"],
                     "interval": "capacity >= ci_low and < ci_high; NaN: not bounded within the search"}))
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


