"""The asset graph of one load sweep: trials (point x trial) -> aggregates (per point) -> sweep_summary."""
import time

import pandas as pd
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    DynamicPartitionsDefinition,
    MetadataValue,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    Output,
    asset,
)

from benchmark_assets import artifacts, schemas
from benchmark_assets.decisions.load_sweep import format_sweep_report, metric_means, summarise_sweep, sweep_aggregates
from benchmark_assets.defs.study_assets import _progress_logger, _validate, _version, trials_metadata
from benchmark_assets.load_runner import LOAD_TRIAL_COLUMNS, metric_columns, objectives_of, run_sweep_trials
from benchmark_assets.studies.load_sweep import LoadSweepStudy


def point_partitions(study: LoadSweepStudy) -> DynamicPartitionsDefinition:
    return DynamicPartitionsDefinition(name=f"{study.name}__load_points")


def trial_partitions(study: LoadSweepStudy) -> DynamicPartitionsDefinition:
    """Trial numbers are dynamic too: raising `trials:` adds partitions without reloading definitions."""
    return DynamicPartitionsDefinition(name=f"{study.name}__load_trials")


def load_partitions(study: LoadSweepStudy) -> MultiPartitionsDefinition:
    return MultiPartitionsDefinition({"sweep_point": point_partitions(study), "trial": trial_partitions(study)})


def build_load_sweep_assets(study: LoadSweepStudy) -> list[AssetsDefinition]:
    prefix, group = [study.name], study.name
    key = lambda name: AssetKey([*prefix, name])  # noqa: E731
    trials_version = _version(study.fingerprint())
    summary_version = _version(trials_version, study.spec.decision.model_dump(),
                               [o.model_dump() for o in study.objectives])
    common = {"key_prefix": prefix, "group_name": group, "io_manager_key": "warehouse"}

    @asset(
        name="trials", partitions_def=load_partitions(study), backfill_policy=BackfillPolicy.single_run(),
        # One pool per endpoint with a limit of 1: no two load trials overlap on a server, across runs too.
        pool=study.endpoint_pool,
        code_version=trials_version, metadata={"partition_columns": ["sweep_point", "trial"]},
        check_specs=[AssetCheckSpec("check_trials_schema", asset=key("trials"), blocking=True)],
        description="One row per (sweep point, trial): every load metric statistic, or the trial's error.",
        **common,
    )
    def trials(context: AssetExecutionContext):
        wanted = [(k.keys_by_dimension["sweep_point"], int(k.keys_by_dimension["trial"])) for k in context.partition_keys]
        started = time.perf_counter()
        frame = run_sweep_trials(study, wanted, progress=_progress_logger(context, f"{study.name} load trials"),
                                 log=context.log.info)
        yield Output(frame, metadata=trials_metadata(frame, ["sweep_point", "trial"], started))
        yield _validate(schemas.load_trials_schema(), frame, "check_trials_schema", key("trials"))

    @asset(
        name="aggregates", partitions_def=point_partitions(study), backfill_policy=BackfillPolicy.single_run(),
        code_version=summary_version, metadata={"partition_columns": ["sweep_point"]},
        ins={"trials": AssetIn(key=key("trials"), partition_mapping=MultiToSingleDimensionPartitionMapping("sweep_point"))},
        check_specs=[AssetCheckSpec("check_aggregates_schema", asset=key("aggregates"), blocking=True)],
        description="Per sweep point and metric statistic: n, mean, std, min, max, cv, se, t and bootstrap intervals.",
        **common,
    )
    def aggregates(context: AssetExecutionContext, trials: pd.DataFrame):
        d = study.spec.decision
        frame = sweep_aggregates(trials, list(context.partition_keys), metric_columns(trials),
                                 confidence_level=d.confidence_level, n_resamples=d.bootstrap_resamples,
                                 rng_seed=d.rng_seed, label=study.name)
        yield Output(frame, metadata={"rows": len(frame), "single_run_points": int(frame.groupby("sweep_point")["single_run"].any().sum())})
        yield _validate(schemas.load_aggregates_schema(), frame, "check_aggregates_schema", key("aggregates"))

    @asset(
        name="sweep_summary", code_version=summary_version,
        ins={"aggregates": AssetIn(key=key("aggregates")), "trials": AssetIn(key=key("trials"))},
        description="Best configurations, Pareto-optimal points, trends, failed trials; JSON/CSV exports and a Pareto plot.",
        **common,
    )
    def sweep_summary(aggregates: pd.DataFrame, trials: pd.DataFrame):
        keys = [k for k in study.point_keys if k in set(aggregates["sweep_point"])]
        aggregates = aggregates[aggregates["sweep_point"].isin(keys)]
        trials = trials[trials["sweep_point"].isin(keys)]
        objectives = objectives_of(study)
        load = study.load
        metadata = {
            "sweep_parameters": [{"name": n, "values": v} for n, v in study.swept.items()],
            "num_combinations": len(keys), "num_trials_per_value": study.spec.trials, "sweep_mode": study.spec.order,
            "cooldown_seconds": float(study.spec.cooldown_seconds), "same_seed": study.spec.same_seed,
            "confidence_level": study.spec.decision.confidence_level, "url": load.url, "endpoint": load.endpoint,
            "streaming": load.streaming, "study_hash": study.spec_hash,
        }
        summary = summarise_sweep(
            aggregates, {k: study.point(k).parameters for k in keys}, objectives,
            latency_column="time_to_first_token_p99" if load.streaming else "request_latency_p99",
            failures=trials[trials["status"] != "ok"], metadata=metadata,
            max_error_rate=float(study.spec.decision.max_error_rate),
        )
        report = format_sweep_report(summary, objectives, study=study.name, description=study.spec.description)
        folder = artifacts.artifacts_dir(study.name)
        paths = artifacts.write_sweep_exports(folder, summary=summary, aggregates=aggregates, report=report)
        paths["pareto_plot"] = artifacts.plot_pareto(folder, aggregates, summary, objectives)
        table = pd.DataFrame({
            "sweep_point": keys,
            "pareto_optimal": [k in summary["pareto_sweep_points"] for k in keys],
            **{o.column: metric_means(aggregates, o.column).reindex(keys).to_numpy(float) for o in objectives},
        })
        return Output(table, metadata={
            "pareto_optimal": ", ".join(summary["pareto_sweep_points"]) or "none",
            **{name: best["sweep_point"] for name, best in summary["best_configurations"].items()},
            "failed_trials": len(summary["failed_trials"]), "report": MetadataValue.md(report),
            "artifacts": MetadataValue.path(str(folder)),
            **{f"file_{name}": MetadataValue.path(str(path)) for name, path in paths.items()},
        })

    return [trials, aggregates, sweep_summary]


__all__ = ["LOAD_TRIAL_COLUMNS", "build_load_sweep_assets", "load_partitions", "point_partitions", "trial_partitions"]
