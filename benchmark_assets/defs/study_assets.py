"""The asset graph of one ratchet study: catalog -> trials -> aggregates -> verdicts -> summary."""

import hashlib
import os
import time
from dataclasses import dataclass

import pandas as pd
import pandera.errors
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    DynamicPartitionsDefinition,
    MetadataValue,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    Output,
    StaticPartitionsDefinition,
    asset,
)

from benchmark_assets import artifacts, schemas
from benchmark_assets.decisions import (
    decide_ratchet,
    format_ratchet_report,
    paired_gain_curves,
    proposed_study_patch,
    summarise_verdicts,
)
from benchmark_assets.provenance import git_commit
from benchmark_assets.runner import TRIAL_COLUMNS, points_by_key, run_trials
from benchmark_assets.scenarios.parametric import ScenarioSeed, build_scenario
from benchmark_assets.stats.aggregate import aggregate_metrics
from benchmark_assets.studies.spec import Study
from benchmark_assets.warehouse import Warehouse

LEDGER_TABLE = "ledger"


class SelectionConfig(Config):
    """Which constants a verdicts/summary run decides on; empty means every constant of the study."""

    constants: list[str] = []
    tiers: list[int] = []


@dataclass(frozen=True)
class StudyPartitions:
    sweep_points: DynamicPartitionsDefinition
    seeds: StaticPartitionsDefinition
    trials: MultiPartitionsDefinition


def study_partitions(study: Study) -> StudyPartitions:
    sweep_points = DynamicPartitionsDefinition(name=f"{study.name}__sweep_points")
    seeds = StaticPartitionsDefinition(study.seed_keys)
    return StudyPartitions(sweep_points, seeds, MultiPartitionsDefinition({"sweep_point": sweep_points, "seed_id": seeds}))


def unregistered_keys(instance, partitions: DynamicPartitionsDefinition, keys: list[str]) -> list[str]:
    """The ``keys`` (in order) that ``partitions`` does not hold yet on this instance."""
    known = set(instance.get_dynamic_partitions(partitions.name))
    return [k for k in keys if k not in known]


def register_keys(instance, partitions: DynamicPartitionsDefinition, keys: list[str]) -> list[str]:
    """Add the ``keys`` the instance does not know yet to ``partitions``; returns them."""
    new = unregistered_keys(instance, partitions, keys)
    if new:
        instance.add_dynamic_partitions(partitions.name, new)
    return new


def _version(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def _validate(schema, frame: pd.DataFrame, check_name: str, asset_key: AssetKey) -> AssetCheckResult:
    """Run a pandera schema; a violation fails the check with the offending rows as metadata."""
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as error:
        cases = error.failure_cases
        return AssetCheckResult(
            check_name=check_name,
            asset_key=asset_key,
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "failure_count": len(cases),
                "failing_rows": MetadataValue.md(cases.head(20).to_markdown(index=False)),
            },
        )
    return AssetCheckResult(check_name=check_name, asset_key=asset_key, passed=True, metadata={"rows_checked": len(frame)})


def trials_metadata(frame: pd.DataFrame, key_columns: list[str], started: float) -> dict:
    """What every trials asset reports: counts, wall time and the first failures with their errors."""
    failed = frame[frame["status"] == "failed"]
    first_errors = failed[[*key_columns, "error"]].head(10).to_markdown(index=False) if len(failed) else ""
    return {"trials": len(frame), "failed": len(failed), "seconds": round(time.perf_counter() - started, 3),
            "first_errors": MetadataValue.md(first_errors)}


def _progress_logger(context: AssetExecutionContext, label: str):
    """Log progress to Dagster every ~10 %; draw a terminal bar when the CLI asks for one."""
    bar = None
    if os.environ.get("BENCHMARK_ASSETS_PROGRESS_BAR") == "1":
        from tqdm import tqdm

        bar = tqdm(desc=label, unit="trial", leave=False)
    state = {"logged": 0}

    def report(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()
        if done * 10 // max(total, 1) > state["logged"] or done == total:
            state["logged"] = done * 10 // max(total, 1)
            context.log.info(f"{label}: {done}/{total} trials")
        if bar is not None and done == total:
            bar.close()

    return report


def build_study_assets(study: Study) -> list[AssetsDefinition]:
    """Every asset of a study, keyed ``<study>/<asset>`` in the asset group ``<study>``."""
    parts = study_partitions(study)
    prefix = [study.name]
    group = study.name
    key = lambda name: AssetKey([*prefix, name])  # noqa: E731
    catalog_version = _version(study.spec.scenarios.model_dump())
    trials_version = _version(catalog_version, study.point_fingerprints().get("current"))
    decision = study.spec.decision
    aggregates_version = _version(trials_version, decision.confidence_level, decision.bootstrap_resamples, decision.rng_seed)
    verdicts_version = _version(aggregates_version, study.decision_fingerprint())

    @asset(
        name="scenario_catalog",
        key_prefix=prefix,
        group_name=group,
        partitions_def=parts.seeds,
        backfill_policy=BackfillPolicy.single_run(),
        io_manager_key="warehouse",
        code_version=catalog_version,
        metadata={"partition_columns": ["seed_id"]},
        check_specs=[AssetCheckSpec("check_scenario_catalog_schema", asset=key("scenario_catalog"), blocking=True)],
        description="One row per generated scenario: its seven axes and its train/validation split.",
    )
    def scenario_catalog(context: AssetExecutionContext):
        wanted = {int(k) for k in context.partition_keys}
        rows = []
        for seed in study.scenario_seeds:
            if seed.seed_id in wanted:
                scenario = build_scenario(seed)
                rows.append({**seed.as_dict(), "name": scenario.name, "split": study.split_of(seed.seed_id),
                             "relevant_count": scenario.relevant_count()})
        frame = pd.DataFrame(rows)[list(schemas.scenario_catalog_schema().columns)]
        yield Output(frame, metadata={"scenarios": len(frame), "train": int((frame["split"] == "train").sum())})
        yield _validate(schemas.scenario_catalog_schema(), frame, "check_scenario_catalog_schema", key("scenario_catalog"))

    @asset(
        name="trials",
        key_prefix=prefix,
        group_name=group,
        partitions_def=parts.trials,
        backfill_policy=BackfillPolicy.single_run(),
        io_manager_key="warehouse",
        code_version=trials_version,
        ins={"scenario_catalog": AssetIn(key=key("scenario_catalog"),
                                         partition_mapping=MultiToSingleDimensionPartitionMapping("seed_id"))},
        metadata={"partition_columns": ["sweep_point", "seed_id"]},
        check_specs=[AssetCheckSpec("check_trials_schema", asset=key("trials"), blocking=True)],
        description="One row per trial (sweep point x scenario x repeat): metrics, or the error of a failed trial.",
    )
    def trials(context: AssetExecutionContext, scenario_catalog: pd.DataFrame):
        seeds_by_point: dict[str, set[int]] = {}
        for partition in context.partition_keys:
            by_dimension = partition.keys_by_dimension
            seeds_by_point.setdefault(by_dimension["sweep_point"], set()).add(int(by_dimension["seed_id"]))
        catalog = {int(row["seed_id"]): ScenarioSeed.from_mapping(row) for row in scenario_catalog.to_dict("records")}
        # Points that share the same seeds run as one vectorised group (a ranged run is a rectangle).
        groups: dict[frozenset, list[str]] = {}
        for point, seeds in seeds_by_point.items():
            groups.setdefault(frozenset(seeds), []).append(point)
        started = time.perf_counter()
        frames = []
        for seeds, point_keys in groups.items():
            missing = sorted(seeds - catalog.keys())
            if missing:
                raise ValueError(f"scenario_catalog has no rows for seed ids {missing}; materialise it first")
            frames.append(
                run_trials(study, points_by_key(study, point_keys), [catalog[s] for s in sorted(seeds)],
                           progress=_progress_logger(context, f"{study.name} trials"))
            )
        frame = pd.concat(frames, ignore_index=True)
        yield Output(frame, metadata={**trials_metadata(frame, ["sweep_point", "seed_id"], started),
                                      "sweep_points": len(seeds_by_point)})
        yield _validate(schemas.trials_schema(study), frame, "check_trials_schema", key("trials"))

    @asset(
        name="aggregates",
        key_prefix=prefix,
        group_name=group,
        partitions_def=parts.sweep_points,
        backfill_policy=BackfillPolicy.single_run(),
        io_manager_key="warehouse",
        code_version=aggregates_version,
        ins={"trials": AssetIn(key=key("trials"), partition_mapping=MultiToSingleDimensionPartitionMapping("sweep_point"))},
        metadata={"partition_columns": ["sweep_point"]},
        check_specs=[AssetCheckSpec("check_aggregates_schema", asset=key("aggregates"), blocking=True)],
        description="Per sweep point, split and metric: n, mean, std, min, max, cv, se, t and bootstrap intervals.",
    )
    def aggregates(context: AssetExecutionContext, trials: pd.DataFrame):
        frame = aggregate_trials(study, trials, list(context.partition_keys))
        yield Output(frame, metadata={"sweep_points": frame["sweep_point"].nunique(), "rows": len(frame)})
        yield _validate(schemas.aggregates_schema(), frame, "check_aggregates_schema", key("aggregates"))

    @asset(
        name="verdicts",
        key_prefix=prefix,
        group_name=group,
        io_manager_key="warehouse",
        code_version=verdicts_version,
        ins={"trials": AssetIn(key=key("trials"))},
        deps=[key("aggregates")],
        check_specs=[AssetCheckSpec("check_verdicts_schema", asset=key("verdicts"), blocking=True)],
        description="One verdict per constant (accept / reject / no_sensitivity) with its evidence; appended to the ledger.",
    )
    def verdicts(context: AssetExecutionContext, config: SelectionConfig, trials: pd.DataFrame):
        sweeps = study.constant_sweeps(tiers=config.tiers or None, names=config.constants or None)
        unknown = sorted(set(config.constants) - set(study.spec.constants))
        if unknown or not sweeps:
            raise ValueError(f"no constants selected (unknown: {unknown}); choose from {sorted(study.spec.constants)}")
        if trials.empty:
            present = set()
        else:
            trials = trials[trials["seed_id"].isin([int(s) for s in study.seed_keys])]
            present = set(trials["sweep_point"])
        missing = sorted({s.key_for(v) for s in sweeps for v in s.values} - present)
        if missing:
            raise ValueError(
                f"sweep points {missing[:5]}{'...' if len(missing) > 5 else ''} have no trials yet; "
                f"materialise them first (benchmark-assets run {study.name})"
            )
        train_ids, validation_ids = study.split
        frame = decide_ratchet(trials, sweeps, study.rules, metric=study.spec.metric, maximize=study.maximize,
                               train_ids=train_ids, validation_ids=validation_ids)
        append_ledger(study, frame, run_id=context.run.run_id)
        counts = summarise_verdicts(frame)
        yield Output(frame, metadata={**counts, "accepted_constants": ", ".join(frame.loc[frame["decision"] == "accept", "constant"]) or "none"})
        yield _validate(schemas.verdicts_schema(), frame, "check_verdicts_schema", key("verdicts"))

    @asset(
        name="ratchet_summary",
        key_prefix=prefix,
        group_name=group,
        io_manager_key="warehouse",
        code_version=verdicts_version,
        ins={"verdicts": AssetIn(key=key("verdicts")), "aggregates": AssetIn(key=key("aggregates")),
             "trials": AssetIn(key=key("trials"))},
        description="The ratchet's proposal: report, exports, sensitivity plots and a patch of the study file.",
    )
    def ratchet_summary(verdicts: pd.DataFrame, aggregates: pd.DataFrame, trials: pd.DataFrame):
        summary, metadata = write_ratchet_outputs(study, verdicts, aggregates, trials)
        return Output(summary, metadata=metadata)

    return [scenario_catalog, trials, aggregates, verdicts, ratchet_summary]


def aggregate_trials(study: Study, trials: pd.DataFrame, point_keys: list[str]) -> pd.DataFrame:
    """Aggregates of each sweep point over train, validation and all scenarios, every metric."""
    metrics = list(study.target.metrics or sorted(c for c in trials.columns if c not in TRIAL_COLUMNS))
    decision = study.spec.decision
    rows = []
    points = {p.key: p for p in study.sweep_points()}
    for point_key in point_keys:
        point_trials = trials[trials["sweep_point"] == point_key]
        for split in ("train", "validation", "all"):
            subset = point_trials if split == "all" else point_trials[point_trials["split"] == split]
            ok = subset[subset["status"] == "ok"]
            table = aggregate_metrics(ok, metrics, confidence_level=decision.confidence_level,
                                      n_resamples=decision.bootstrap_resamples, rng_seed=decision.rng_seed,
                                      label=f"{study.name}|{point_key}|{split}")
            point = points.get(point_key)
            table.insert(0, "sweep_point", point_key)
            table.insert(1, "constant", (point.constant or "") if point else "")
            table.insert(2, "value", float(point.value) if point and point.value is not None else float("nan"))
            table.insert(3, "split", split)
            table.insert(5, "n_failed", int((subset["status"] != "ok").sum()))
            rows.append(table)
    columns = list(schemas.aggregates_schema().columns)
    return pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)


def append_ledger(study: Study, verdicts: pd.DataFrame, *, run_id: str) -> None:
    """Append every verdict with its provenance; the ledger is never rewritten."""
    ledger = verdicts[["constant", "tier", "current", "proposed", "decision", "reason", "cliff_warning",
                       "train_delta", "validation_delta", "ci_low", "ci_high", "corrected_ci_low", "p_adjusted"]].copy()
    ledger.insert(0, "study", study.name)
    ledger["metric"] = study.spec.metric
    ledger["git_commit"] = git_commit(study.path.parent)
    ledger["study_hash"] = study.spec_hash
    ledger["run_id"] = run_id
    ledger["decided_at"] = pd.Timestamp.now(tz="UTC").isoformat()
    Warehouse().append(LEDGER_TABLE, ledger)


def write_ratchet_outputs(study: Study, verdicts: pd.DataFrame, aggregates: pd.DataFrame, trials: pd.DataFrame):
    """Report, exports, plots and patch under the artifacts folder; returns (summary table, metadata)."""
    decided = set(verdicts["constant"])
    sweeps = [s for s in study.constant_sweeps() if s.name in decided]
    keys = {s.key_for(v) for s in sweeps for v in s.values}
    trials = trials[trials["sweep_point"].isin(keys)]
    aggregates = aggregates[aggregates["sweep_point"].isin(keys)]
    train_ids, validation_ids = study.split
    compute_seconds = float(trials["duration_seconds"].sum())
    report = format_ratchet_report(
        verdicts, study=study.name, rules=study.rules, duration_seconds=compute_seconds,
        n_train=len(train_ids), n_validation=len(validation_ids), n_trials=len(trials),
        n_failed=int((trials["status"] != "ok").sum()),
    )
    accepted = verdicts[verdicts["decision"] == "accept"]
    patch = proposed_study_patch(study.text, f"studies/{study.path.name}", dict(zip(accepted["constant"], accepted["proposed"])))
    folder = artifacts.artifacts_dir(study.name)
    by_constant = verdicts.set_index("constant")
    gains = paired_gain_curves(trials, sweeps, metric=study.spec.metric, maximize=study.maximize,
                               splits={"train": train_ids, "validation": validation_ids},
                               confidence_level=study.rules.confidence_level)
    plots = {
        sweep.name: artifacts.plot_sensitivity(folder, sweep, aggregates, gains, by_constant.loc[sweep.name],
                                               study.spec.metric, improvement_threshold=study.rules.improvement_threshold)
        for sweep in sweeps
    }
    counts = summarise_verdicts(verdicts)
    summary_info = {**counts, "study": study.name, "study_hash": study.spec_hash, "trial_compute_seconds": compute_seconds,
                    "metric": study.spec.metric, "accepted": accepted[["constant", "current", "proposed"]].to_dict("records"),
                    "accepted_count": counts["accepted"]}
    paths = artifacts.write_files(folder, {
        "report.md": report, "proposed.patch": patch, "verdicts.csv": verdicts, "verdicts.json": verdicts,
        "aggregates.csv": aggregates, "sensitivity.csv": gains, "summary.json": summary_info,
    })
    summary = verdicts[["constant", "tier", "decision", "current", "proposed", "train_delta", "validation_delta",
                        "corrected_ci_low", "corrected_ci_high", "reason", "cliff_warning"]].copy()
    metadata = {
        **counts,
        "report": MetadataValue.md(report),
        "proposed_patch": MetadataValue.md(f"```diff\n{patch or '(no accepted changes)'}\n```"),
        "artifacts": MetadataValue.path(str(folder)),
        "trial_compute_seconds": round(compute_seconds, 3),
    }
    first_plot = next(iter(plots.values()), None)
    if first_plot is not None:
        metadata["plots"] = MetadataValue.path(str(first_plot.parent))
    metadata.update({f"file_{name}": MetadataValue.path(str(path)) for name, path in paths.items()})
    return summary, metadata
