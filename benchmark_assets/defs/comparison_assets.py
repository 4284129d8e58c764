"""The asset graph of one comparison study: trials -> summaries -> aggregates, comparison, variance -> report."""

import json
import time

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    AssetCheckSpec,
    BackfillPolicy,
    DynamicPartitionsDefinition,
    MetadataValue,
    MultiPartitionsDefinition,
    Output,
    StaticPartitionsDefinition,
    asset,
)

from benchmark_assets import artifacts, schemas
from benchmark_assets.comparison_runner import COMPARISON_TRIAL_COLUMNS, run_comparison_trials, trial_summaries
from benchmark_assets.decisions.comparison import ComparisonRules, compare_arms, format_comparison_report
from benchmark_assets.defs.study_assets import LEDGER_TABLE, _progress_logger, _validate, _version, trials_metadata
from benchmark_assets.provenance import git_commit
from benchmark_assets.stats.aggregate import aggregate_metrics
from benchmark_assets.stats.variance import variance_curve
from benchmark_assets.studies.comparison import ARMS, ComparisonStudy
from benchmark_assets.warehouse import Warehouse

SUMMARY_KEYS = ["arm", "seed", "status"]


def seed_partitions(study: ComparisonStudy) -> DynamicPartitionsDefinition:
    """Seeds are registered from the study file (by the CLI or the study sensor), so adding seeds
    needs no reload of the definitions and only the new partitions are missing."""
    return DynamicPartitionsDefinition(name=f"{study.name}__seeds")


def comparison_partitions(study: ComparisonStudy) -> MultiPartitionsDefinition:
    return MultiPartitionsDefinition({"arm": StaticPartitionsDefinition(list(ARMS)), "seed": seed_partitions(study)})


def comparison_rules(study: ComparisonStudy) -> ComparisonRules:
    d = study.spec.decision
    return ComparisonRules(confidence_level=d.confidence_level, method=d.method, bootstrap_resamples=d.bootstrap_resamples,
                           rng_seed=d.rng_seed, power=d.power,
                           target_effect=None if d.target_effect is None else float(d.target_effect))


def current_trials(study: ComparisonStudy, trials: pd.DataFrame) -> pd.DataFrame:
    """Trials of the study as it stands: its seeds, run with its arms' current command and
    parameters. Rows from a removed seed or an older arm setting are left out, never analysed
    (or put in the ledger) under the new setting; `benchmark-assets run` reruns them."""
    if trials.empty:
        return trials
    fingerprints = trials["arm"].map({arm: study.arm_fingerprint(arm) for arm in ARMS})
    keep = trials["seed"].isin(study.seeds) & (trials["arm_fingerprint"] == fingerprints)
    return trials[keep].reset_index(drop=True)


def build_comparison_assets(study: ComparisonStudy) -> list[AssetsDefinition]:
    """Every asset of a comparison study, keyed ``<study>/<asset>`` in the asset group ``<study>``."""
    prefix, group = [study.name], study.name
    key = lambda name: AssetKey([*prefix, name])  # noqa: E731
    trials_version = _version(*(study.arm_fingerprint(arm) for arm in ARMS))
    summaries_version = _version(trials_version, study.spec.metric, study.spec.summary)
    analysis_version = _version(summaries_version, study.spec.decision.model_dump(), study.spec.direction,
                                study.spec.design)
    common = {"key_prefix": prefix, "group_name": group, "io_manager_key": "warehouse"}

    @asset(
        name="trials", partitions_def=comparison_partitions(study), backfill_policy=BackfillPolicy.single_run(),
        code_version=trials_version, metadata={"partition_columns": ["arm", "seed"]},
        check_specs=[AssetCheckSpec("check_trials_schema", asset=key("trials"), blocking=True)],
        description="One row per (arm, seed): the command's scalar metrics, its curves as JSON, or its error.",
        **common,
    )
    def trials(context: AssetExecutionContext):
        wanted = [(k.keys_by_dimension["arm"], int(k.keys_by_dimension["seed"])) for k in context.partition_keys]
        started = time.perf_counter()
        frame = run_comparison_trials(study, wanted, progress=_progress_logger(context, f"{study.name} trials"))
        yield Output(frame, metadata=trials_metadata(frame, ["arm", "seed"], started))
        yield _validate(schemas.comparison_trials_schema(), frame, "check_trials_schema", key("trials"))

    @asset(
        name="summaries", code_version=summaries_version, ins={"trials": AssetIn(key=key("trials"))},
        description="One row per (arm, seed): every scalar metric and the decision metric (a curve's summary).",
        **common,
    )
    def summaries(context: AssetExecutionContext, trials: pd.DataFrame):
        current = current_trials(study, trials)
        stale = int(trials["seed"].isin(study.seeds).sum() - len(current)) if len(trials) else 0
        if stale:
            context.log.warning(f"{stale} trials ran with an older command or arm setting and are left out; "
                                f"`benchmark-assets run {study.name}` reruns them")
        table, problems = trial_summaries(study, current)
        for problem in problems:
            context.log.warning(problem)
        return Output(table, metadata={
            "rows": len(table), "decision_metric": study.decision_metric, "stale_trials_left_out": stale,
            "problems": MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
        })

    @asset(
        name="aggregates", code_version=analysis_version, ins={"summaries": AssetIn(key=key("summaries"))},
        check_specs=[AssetCheckSpec("check_aggregates_schema", asset=key("aggregates"), blocking=True)],
        description="Per arm and metric: n, mean, std, min, max, cv, se, t and bootstrap intervals.",
        **common,
    )
    def aggregates(summaries: pd.DataFrame):
        frame = arm_aggregates(study, summaries)
        yield Output(frame, metadata={"rows": len(frame)})
        yield _validate(schemas.arm_aggregates_schema(), frame, "check_aggregates_schema", key("aggregates"))

    @asset(
        name="comparison", code_version=analysis_version, ins={"summaries": AssetIn(key=key("summaries"))},
        check_specs=[AssetCheckSpec("check_comparison_schema", asset=key("comparison"), blocking=True)],
        description="Candidate - control per metric: effect, interval, p-values, assumption checks, power, verdict.",
        **common,
    )
    def comparison(summaries: pd.DataFrame):
        frame = compare_study_arms(study, summaries)
        decided = frame[frame["is_decision_metric"]].iloc[0]
        yield Output(frame, metadata={"verdict": decided["verdict"], "reason": decided["reason"],
                                      "effect": float(decided["effect"]), "more_seeds": int(decided["more_seeds"])})
        yield _validate(schemas.comparison_schema(), frame, "check_comparison_schema", key("comparison"))

    @asset(
        name="variance_analysis", code_version=analysis_version, ins={"summaries": AssetIn(key=key("summaries"))},
        check_specs=[AssetCheckSpec("check_variance_analysis_schema", asset=key("variance_analysis"), blocking=True)],
        description="Per arm: CV of the seed-averaged decision metric against the number of seeds, and the stable N.",
        **common,
    )
    def variance_analysis(summaries: pd.DataFrame):
        frame = arm_variance(study, summaries)
        stable = frame.groupby("arm")["stable_n"].first().to_dict() if len(frame) else {}
        plot = artifacts.plot_variance(artifacts.artifacts_dir(study.name), frame, study.decision_metric,
                                       threshold=study.spec.decision.variance_threshold)
        yield Output(frame, metadata={**{f"stable_n_{arm}": int(n) for arm, n in stable.items()},
                                      "plot": MetadataValue.path(str(plot))})
        yield _validate(schemas.variance_schema(), frame, "check_variance_analysis_schema", key("variance_analysis"))

    @asset(
        name="comparison_report", code_version=analysis_version,
        ins={name: AssetIn(key=key(name)) for name in ("trials", "summaries", "aggregates", "comparison", "variance_analysis")},
        description="The verdict for review: markdown report, CSV/JSON exports, plots; appended to the ledger.",
        **common,
    )
    def comparison_report(context: AssetExecutionContext, trials: pd.DataFrame, summaries: pd.DataFrame,
                          aggregates: pd.DataFrame, comparison: pd.DataFrame, variance_analysis: pd.DataFrame):
        trials = current_trials(study, trials)
        report = format_comparison_report(
            study=study.name, description=study.spec.description, control_params=study.params("control"),
            candidate_params=study.params("candidate"), command=" ".join(study.spec.target.command),
            n_seeds=len(study.seeds), decision_metric=study.decision_metric, direction=study.spec.direction,
            comparison=comparison, aggregates=aggregates, variance=variance_analysis,
            failures=trials[trials["status"] != "ok"], git_commits=list(trials["git_commit"]),
            variance_threshold=study.spec.decision.variance_threshold,
            problems=trial_summaries(study, trials)[1],
        )
        folder = artifacts.artifacts_dir(study.name)
        paths = artifacts.write_files(folder, {
            "report.md": report, "comparison.csv": comparison, "comparison.json": comparison,
            "aggregates.csv": aggregates, "summaries.csv": summaries, "variance.csv": variance_analysis,
        })
        paths["plot_comparison"] = artifacts.plot_comparison(folder, study, trials, summaries, comparison)
        append_comparison_ledger(study, comparison, run_id=context.run.run_id)
        decided = comparison[comparison["is_decision_metric"]].iloc[0]
        table = comparison[["metric", "verdict", "effect", "ci_low", "ci_high", "p_bootstrap", "p_t"]].copy()
        return Output(table, metadata={
            "verdict": decided["verdict"], "report": MetadataValue.md(report),
            "artifacts": MetadataValue.path(str(folder)),
            **{f"file_{name}": MetadataValue.path(str(path)) for name, path in paths.items()},
        })

    return [trials, summaries, aggregates, comparison, variance_analysis, comparison_report]


def metric_columns(summaries: pd.DataFrame) -> list[str]:
    return [c for c in summaries.columns if c not in SUMMARY_KEYS]


def arm_aggregates(study: ComparisonStudy, summaries: pd.DataFrame) -> pd.DataFrame:
    d = study.spec.decision
    metrics = metric_columns(summaries)
    frames = []
    for arm in ARMS:
        rows = summaries[summaries["arm"] == arm]
        ok = rows[rows["status"] == "ok"]
        table = aggregate_metrics(ok, metrics, confidence_level=d.confidence_level, n_resamples=d.bootstrap_resamples,
                                  rng_seed=d.rng_seed, label=f"{study.name}|{arm}")
        table.insert(0, "arm", arm)
        table.insert(3, "n_failed", int((rows["status"] != "ok").sum()))
        frames.append(table)
    return pd.concat(frames, ignore_index=True)[list(schemas.arm_aggregates_schema().columns)]


def compare_study_arms(study: ComparisonStudy, summaries: pd.DataFrame) -> pd.DataFrame:
    return compare_arms(summaries, metric_columns(summaries), decision_metric=study.decision_metric,
                        maximize=study.maximize, paired=study.paired, rules=comparison_rules(study))


def arm_variance(study: ComparisonStudy, summaries: pd.DataFrame) -> pd.DataFrame:
    """Variance curve of the decision metric per arm; an arm with fewer than two good seeds has none."""
    d = study.spec.decision
    frames = []
    for arm in ARMS:
        values = summaries.loc[summaries["arm"] == arm, study.decision_metric].dropna().to_numpy(float)
        if values.size < 2 or values.mean() == 0:
            continue
        result = variance_curve(values, threshold=d.variance_threshold, confidence_level=d.confidence_level,
                                rng=[d.rng_seed, ARMS.index(arm)])
        curve = result.curve.copy()
        curve.insert(0, "arm", arm)
        curve["stable_n"] = -1 if result.stable_n is None else int(result.stable_n)
        frames.append(curve)
    if not frames:
        return pd.DataFrame({"arm": pd.Series(dtype=str), "n": pd.Series(dtype="int64"),
                             **{c: pd.Series(dtype=float) for c in ("cv", "cv_low", "cv_high")},
                             "stable_n": pd.Series(dtype="int64")})
    return pd.concat(frames, ignore_index=True)[list(schemas.variance_schema().columns)]


def append_comparison_ledger(study: ComparisonStudy, comparison: pd.DataFrame, *, run_id: str) -> None:
    """The decision metric's verdict joins the ledger with the arms it compared and its provenance."""
    decided = comparison[comparison["is_decision_metric"]].iloc[0]
    control, candidate = study.params("control"), study.params("candidate")
    changed = sorted(k for k in control if control[k] != candidate[k])
    numeric = len(changed) == 1 and all(isinstance(p[changed[0]], int | float) for p in (control, candidate))
    row = {
        "study": study.name, "constant": ",".join(changed), "tier": 0,
        "current": float(control[changed[0]]) if numeric else float("nan"),
        "proposed": float(candidate[changed[0]]) if numeric else float("nan"),
        "decision": decided["verdict"], "reason": decided["reason"], "cliff_warning": "",
        "train_delta": float("nan"), "validation_delta": float(decided["effect"]),
        "ci_low": float(decided["ci_low"]), "ci_high": float(decided["ci_high"]),
        "corrected_ci_low": float(decided["ci_low"]), "p_adjusted": float(decided["p_bootstrap"]),
        "metric": study.decision_metric, "git_commit": git_commit(study.path.parent), "study_hash": study.spec_hash,
        "run_id": run_id, "decided_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "control_params": json.dumps(control, sort_keys=True), "candidate_params": json.dumps(candidate, sort_keys=True),
    }
    Warehouse().append(LEDGER_TABLE, pd.DataFrame([row]))


ANALYSIS_ASSETS = ("summaries", "aggregates", "comparison", "variance_analysis", "comparison_report")

__all__ = ["ANALYSIS_ASSETS", "COMPARISON_TRIAL_COLUMNS", "build_comparison_assets", "comparison_partitions",
           "seed_partitions"]
