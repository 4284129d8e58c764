"""The one builder: any study kind becomes its Dagster graph, checks, sensor, schedule and CLI stages.

A kind describes its graph as ``Node``s (``kinds.base``); this module is the only place that
turns them into Dagster objects. It never asks which kind it holds.
"""
import hashlib
import inspect
import json
import os
import socket
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandera.errors
import sqlalchemy.exc
from dagster import (
    AllPartitionMapping,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    BackfillPolicy,
    Config,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    Failure,
    In,
    MetadataValue,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    OpExecutionContext,
    Out,
    Output,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    StaticPartitionsDefinition,
    asset,
    graph_asset,
    op,
    schedule,
    sensor,
)
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset

from benchmark_assets.defs import code_reload, scale_out
from benchmark_assets.defs.rectangle_ranges import contiguous_blocks, rectangles
from benchmark_assets.defs.resources import LedgerResource
from benchmark_assets.defs.ticks import sensor_interval
from benchmark_assets.history import StudyVersions, changes_between, history_markdown, subject_history
from benchmark_assets.inbox import inbox_range, ingested_rows, no_trials, with_inbox
from benchmark_assets.kinds import kind_of
from benchmark_assets.kinds.base import POINT, REPLICATE, TRIAL, Dimension, Markdown, Node, Product, StudyKind
from benchmark_assets.ledger import Ledger, Provenance, ledger_rows
from benchmark_assets.processes import process_alive
from benchmark_assets.provenance import code_commit
from benchmark_assets.studies import StudyError, load_study

REASON_TAG = "benchmark_assets/reason"
LAUNCHED_BY_TAG = "benchmark_assets/launched_by"
# A stage run of the ``<study>__run_study`` job names the job's run that launched it.
PARENT_RUN_TAG = "benchmark_assets/launched_by_run"
PID_TAG, HOST_TAG = "benchmark_assets/pid", "benchmark_assets/host"  # on the CLI's runs: who runs them


class SubjectSelection(Config):
    """Which subjects (e.g. constants) a run decides on; empty means every subject of the study."""

    subjects: list[str] = []  # noqa: RUF012 - a Dagster Config (pydantic) copies its defaults


# -- partitions ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StudyPartitions:
    point: DynamicPartitionsDefinition | StaticPartitionsDefinition
    replicate: DynamicPartitionsDefinition | StaticPartitionsDefinition
    trials: MultiPartitionsDefinition

    def of(self, partitioned_by: "str | None"):
        return {POINT: self.point, REPLICATE: self.replicate, TRIAL: self.trials}.get(partitioned_by)


def _dimension_partitions(study, dimension: Dimension):
    if dimension.dynamic:
        return DynamicPartitionsDefinition(name=dimension.registry_name(study))
    return StaticPartitionsDefinition(dimension.keys(study))


def study_partitions(study) -> StudyPartitions:
    kind = kind_of(study)
    point, replicate = _dimension_partitions(study, kind.point), _dimension_partitions(study, kind.replicate)
    return StudyPartitions(point, replicate, MultiPartitionsDefinition({kind.point.name: point,
                                                                       kind.replicate.name: replicate}))


def unregistered_keys(instance, partitions: DynamicPartitionsDefinition, keys: list[str]) -> list[str]:
    """The ``keys`` (in order) that ``partitions`` does not hold yet on this instance."""
    known = set(instance.get_dynamic_partitions(partitions.name))
    return [k for k in keys if k not in known]


def register_keys(instance, partitions: DynamicPartitionsDefinition, keys: list[str]) -> list[str]:
    """Add the ``keys`` the instance does not know yet to ``partitions``; returns them. Another
    process (a sensor, a second CLI) adding some of them at the same moment is not an error."""
    new = unregistered_keys(instance, partitions, keys)
    for attempt in range(3):
        try:
            if new:
                instance.add_dynamic_partitions(partitions.name, new)
            return new
        except sqlalchemy.exc.IntegrityError:
            if attempt == 2:
                raise
            new = unregistered_keys(instance, partitions, new)  # they added some: add the rest
    return new


def dimensions(study) -> list[tuple[Dimension, object]]:
    kind, parts = kind_of(study), study_partitions(study)
    return [(kind.point, parts.point), (kind.replicate, parts.replicate)]


def trials_table(study) -> str:
    """The warehouse table of a study's trials (written by the IO manager)."""
    return f"{study.name}__{kind_of(study).trial_node().name}"


def checkpoint_table(study) -> str:
    """Where a trials step checkpoints finished trials until its rows are stored for good."""
    return f"{trials_table(study)}__checkpoint"


def register_study(instance, study) -> dict[str, list[str]]:
    """Register the study's dynamic partition keys (sweep points, seeds, trial numbers) that the
    instance does not know yet; returns the new keys per dimension."""
    return {dimension.name: register_keys(instance, partitions, dimension.keys(study))
            for dimension, partitions in dimensions(study) if dimension.dynamic}


def dimension_order(instance, study, dimension: Dimension, partitions) -> list[str]:
    """The dimension's keys in the order Dagster ranges over them on this instance."""
    if dimension.dynamic:
        return list(instance.get_dynamic_partitions(partitions.name))
    return list(partitions.get_partition_keys())


# -- versions, checks, metadata ----------------------------------------------------------------

def _version(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def node_versions(study, *, per_point_trials: bool = False) -> dict[str, str]:
    """Each node's code version: its upstream versions, then what it depends on itself (a tuple
    counts part by part), so a change marks it and everything after it stale in the UI.

    ``per_point_trials``: leave out what the trials depend on; the sensor tracks that per point
    (``point_fingerprints``), so that a change to some points reruns only their aggregates."""
    versions: dict[str, str] = {}
    for node in kind_of(study).nodes():
        own = () if per_point_trials and node.partitioned_by == TRIAL else node.version(study)
        versions[node.name] = _version(*(versions[n] for n in (*node.inputs, *node.deps)),
                                       *(own if isinstance(own, tuple) else (own,)))
    return versions


def validate_frame(schema, frame: pd.DataFrame, check_name: str, asset_key: AssetKey) -> AssetCheckResult:
    """Run a pandera schema; a violation fails the check with the offending rows as metadata."""
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as error:
        cases = failing_rows(schema, frame, error.failure_cases)
        return AssetCheckResult(
            check_name=check_name, asset_key=asset_key, passed=False, severity=AssetCheckSeverity.ERROR,
            metadata={"failure_count": len(cases),
                      "failing_rows": MetadataValue.md(cases.head(20).to_markdown(index=False))},
        )
    return AssetCheckResult(check_name=check_name, asset_key=asset_key, passed=True, metadata={"rows_checked": len(frame)})


def failing_rows(schema, frame: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """pandera's failure cases keyed by what identifies a row (the schema's unique columns: the
    sweep point and seed id of a trial, a verdict's constant) instead of the frame's index."""
    keys = [c for c in (schema.unique or []) if c in frame.columns]
    shown = cases.copy()
    if keys and "index" in shown:
        # A column-level failure (a missing column, a wrong type) has no row: its index is None/NaN.
        located = [i if not pd.isna(i) and i in frame.index else None for i in shown["index"].astype(object)]
        for column in keys:
            shown[column] = [None if i is None else frame.at[i, column] for i in located]
        shown = shown.drop(columns="index")
    row_id = keys or ["index"]  # nothing identifies a row: its position is all there is
    columns = [c for c in (*row_id, "column", "check", "failure_case") if c in shown.columns]
    return shown[columns]


def check_name(node: Node) -> str:
    return f"check_{node.name}_schema"


def trials_metadata(frame: pd.DataFrame, key_columns: list[str], started: float) -> dict:
    """What every trials run reports: its counts, wall time and first failures with their errors."""
    failed = frame[frame["status"] != "ok"] if "status" in frame else frame.iloc[0:0]
    columns = [c for c in (*key_columns, "error") if c in failed.columns]
    first_errors = failed[columns].head(10).to_markdown(index=False) if len(failed) else ""
    # Totals of the whole run (one run covers many partitions): named so, beside each partition's own.
    return {"run_trials": len(frame), "run_failed_trials": len(failed),
            "run_seconds": round(time.perf_counter() - started, 3), "run_first_errors": MetadataValue.md(first_errors)}


def per_trial_metadata(kind: StudyKind, frame: pd.DataFrame) -> dict[MultiPartitionKey, dict]:
    """Per trial partition: how many rows it holds, how many failed and the first error, its split
    (if the kind has one) and the mean of each metric over its repeats that succeeded."""
    point, replicate = kind.point.name, kind.replicate.name
    if frame.empty:
        return {}
    keys = [point, replicate]
    failed_rows = frame["status"] != "ok" if "status" in frame else pd.Series(False, index=frame.index)
    numeric = [c for c in frame.select_dtypes("number").columns if c not in keys]
    table = pd.DataFrame({"rows": frame.groupby(keys, sort=False).size(),
                          "failed": failed_rows.groupby([frame[point], frame[replicate]], sort=False).sum()})
    table["error"] = frame[failed_rows].groupby(keys, sort=False)["error"].first().str[:500] \
        if "error" in frame and failed_rows.any() else ""
    if "split" in frame:
        table["split"] = frame.groupby(keys, sort=False)["split"].first().astype(str)
    means = frame[~failed_rows].groupby(keys, sort=False)[numeric].mean()
    # a metric called rows, failed or error keeps its mean (merge: join's rsuffix is deprecated in pandas 3)
    table = table.merge(means, how="left", left_index=True, right_index=True, suffixes=("", "_mean"))
    table["error"] = table["error"].fillna("")
    out = {}
    for (p, r), row in zip(table.index, table.to_dict("records")):
        own = {k: (int(v) if k in ("rows", "failed") else v) for k, v in row.items()
               if not (isinstance(v, float) and v != v)}
        out[MultiPartitionKey({point: str(p), replicate: str(r)})] = own
    return out


def add_partition_metadata(context: AssetExecutionContext, asset_key: AssetKey, by_partition: dict) -> None:
    """``context.add_asset_metadata(metadata, partition_key=...)`` for many partitions in one step:
    the public call lists the run's partitions and copies all metadata added so far on every call,
    which took 3 minutes for the ratchet's 3,600 trial partitions. Dagster is pinned below 1.14 and
    ``test_each_trial_partition_shows_its_own_rows`` reads the events, so a change shows there."""
    from dagster._core.execution.context.metadata_logging import AssetMetadataHandle, OutputMetadataAccumulator

    step = context.get_step_execution_context()
    merged = dict(step._metadata_accumulator.per_output_metadata)
    for partition_key, metadata in by_partition.items():
        handle = AssetMetadataHandle(asset_key=asset_key, partition_key=partition_key)
        merged[handle] = {**merged.get(handle, {}), **metadata}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=merged)


def dagster_metadata(metadata: dict) -> dict:
    """A node's plain metadata as Dagster metadata: ``Markdown`` renders, a ``Path`` links."""
    out = {}
    for name, value in metadata.items():
        if isinstance(value, Markdown):
            out[name] = MetadataValue.md(str(value))
        elif isinstance(value, Path):
            out[name] = MetadataValue.path(str(value))
        else:
            out[name] = value
    return out


def run_reason(tags: dict) -> str:
    """Why a run ran, from its tags: the CLI, a sensor, a schedule, a backfill or the UI."""
    reason = tags.get(REASON_TAG, "")
    if tags.get(LAUNCHED_BY_TAG) == "cli":
        return f"CLI: {reason}"
    if tags.get(LAUNCHED_BY_TAG) == "job":
        return f"job run {tags.get(PARENT_RUN_TAG, '?')}: {reason}"
    for tag, what in (("dagster/sensor_name", "sensor"), ("dagster/schedule_name", "schedule")):
        if tag in tags:
            return f"{what} {tags[tag]}" + (f": {reason}" if reason else "")
    if "dagster/backfill" in tags:
        return f"backfill {tags['dagster/backfill']} (launched from the UI or the API)" + (f": {reason}" if reason else "")
    return "launched from the UI or the API" + (f": {reason}" if reason else "")


def study_record(study, warehouse) -> tuple[pd.DataFrame, dict[str, str]]:
    """The study's decisions so far and the study file texts they were made with, read once per
    analysis step; remembers this study file's text so later decisions can be compared with it."""
    versions = StudyVersions(warehouse)
    versions.remember(study.name, study.spec_hash, study.text, pd.Timestamp.now(tz="UTC").isoformat())
    return Ledger(warehouse).read(study=study.name), versions.texts(study.name)


def provenance_metadata(study, run, decided: pd.DataFrame, texts: dict[str, str], commit: str) -> dict:
    """Git commit (``+dirty`` when the checkout has changes), the study file's hash, what changed in
    the study since its previous decision (``decided``, ``texts``: ``study_record``), and why this
    run ran."""
    earlier = decided[decided["run_id"] != run.run_id] if len(decided) else decided
    previous = earlier["study_hash"].iloc[-1] if len(earlier) else None
    return {"git_commit": commit, "study_hash": study.spec_hash, "run_reason": run_reason(run.tags),
            "study_changes_since_previous_decision": changes_between(texts, previous, study.spec_hash)}


def decision_histories(study, decided: pd.DataFrame, texts: dict[str, str], pending: pd.DataFrame,
                       limit: int = 10) -> str:
    """Per subject this run decides on (``pending``): its earlier decisions and this one, newest first."""
    rows = pd.concat([decided, pending], ignore_index=True) if len(decided) else pending
    parts = [f"Every decision on each subject (newest first; `benchmark-assets why {study.name} <subject>` prints the same)", ""]
    for subject in dict.fromkeys(pending["subject"]):
        parts.append(history_markdown(subject, subject_history(rows, texts, subject, limit=limit)))
    return "\n".join(parts)


def progress_reporter(context, label: str, *, terminal_bar: bool):
    """Log progress to Dagster every ~10 %; draw a terminal bar when the CLI asks for one."""
    bar = None
    if terminal_bar:
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


class DagsterStep:
    """A node's view of its Dagster run (``kinds.base.Step``)."""

    def __init__(self, context: AssetExecutionContext, kind: StudyKind, node: Node, subjects: list[str],
                 checkpoint_table: str = "", columns: list[str] = ()):
        self._context = context
        self._checkpoint_table, self._columns = checkpoint_table, list(columns)
        self.run_id = context.run.run_id
        self.subjects = list(subjects)
        self.warehouse_url = context.resources.results.open().url
        if node.partitioned_by == TRIAL:
            self.partition_keys = _trial_keys(kind, context.partition_keys)
        elif node.partitioned_by is not None:
            self.partition_keys = list(context.partition_keys)
        else:
            self.partition_keys = []

    def log(self, message: str) -> None:
        self._context.log.info(message)

    def warn(self, message: str) -> None:
        self._context.log.warning(message)

    def progress(self, label: str):
        return progress_reporter(self._context, label, terminal_bar=self._context.resources.progress.terminal_bar)

    def _keys(self, rows: pd.DataFrame) -> list[tuple]:
        return [tuple(str(v) for v in key) for key in rows[self._columns].itertuples(index=False)]

    def checkpoint(self, rows: pd.DataFrame) -> None:
        if self._checkpoint_table and len(rows):
            self._context.resources.results.open().replace_partitions(self._checkpoint_table, rows, self._columns,
                                                                      self._keys(rows))

    def checkpointed(self) -> pd.DataFrame:
        if not self._checkpoint_table:
            return pd.DataFrame()
        warehouse = self._context.resources.results.open()
        wanted = {tuple(str(v) for v in key) for key in self.partition_keys}
        rows = warehouse.read(self._checkpoint_table, {self._columns[0]: sorted({k[0] for k in wanted})})
        return rows[[key in wanted for key in self._keys(rows)]].reset_index(drop=True) if len(rows) else rows

    def clear_checkpoint(self) -> None:
        """The step's rows are stored for good: its checkpoint rows are not needed any more."""
        if self._checkpoint_table and self.partition_keys:
            warehouse = self._context.resources.results.open()
            if warehouse.has_table(self._checkpoint_table):
                warehouse.replace_partitions(self._checkpoint_table, pd.DataFrame(), self._columns,
                                             [tuple(str(v) for v in key) for key in self.partition_keys])


# -- assets -------------------------------------------------------------------------------------

def _partition_mapping(kind: StudyKind, node: Node, upstream: Node):
    """How a node reads an upstream node's partitions: a trial reads its replicate's row, a
    point reads all its trials, an unpartitioned node reads everything."""
    if node.partitioned_by is None or upstream.partitioned_by is None or node.partitioned_by == upstream.partitioned_by:
        return None
    if TRIAL in (node.partitioned_by, upstream.partitioned_by):
        single = node.partitioned_by if upstream.partitioned_by == TRIAL else upstream.partitioned_by
        return MultiToSingleDimensionPartitionMapping((kind.point if single == POINT else kind.replicate).name)
    return AllPartitionMapping()


def _partition_columns(kind: StudyKind, node: Node) -> list[str]:
    return {TRIAL: [kind.point.name, kind.replicate.name], POINT: [kind.point.name],
            REPLICATE: [kind.replicate.name]}.get(node.partitioned_by, [])


def build_assets(study, *, trial_chunks: int | None = None) -> list[AssetsDefinition]:
    """Every asset of a study, keyed ``<study>/<node>`` in the asset group ``<study>``; the trials
    asset cut into ``trial_chunks`` measuring steps (default: the deployment's, ``defs.scale_out``;
    0: one step, in process)."""
    kind, parts, versions = kind_of(study), study_partitions(study), node_versions(study)
    # A kind that ingests result files: the trials its inbox holds are stored, not measured.
    nodes = {node.name: with_inbox(study, node) if node.partitioned_by == TRIAL and kind.inbox_files else node
             for node in kind.nodes()}
    chunks = scale_out.trial_chunks() if trial_chunks is None else trial_chunks
    return [_build_asset(study, kind, node, nodes, parts, versions[node.name], chunks) for node in nodes.values()]


def _build_asset(study, kind: StudyKind, node: Node, nodes: dict[str, Node], parts: StudyPartitions,
                 version: str, chunks: int = 0) -> AssetsDefinition:
    key = AssetKey([study.name, node.name])
    partitions_def = parts.of(node.partitioned_by)
    columns = _partition_columns(kind, node)

    checkpoint = checkpoint_table(study) if node.partitioned_by == TRIAL else ""

    def finish(context, step: "DagsterStep", product, started: float):
        """What every node's step does with its product: metadata, provenance, ledger, output, check."""
        metadata = trials_metadata(product.frame, columns, started) if node.partitioned_by == TRIAL else {}
        if node.partitioned_by == TRIAL:  # each trial partition shows its own rows, not the batch's totals
            add_partition_metadata(context, key, per_trial_metadata(kind, product.frame))
        metadata.update(dagster_metadata(product.metadata))
        analysis = node.partitioned_by is None or bool(product.ledger)
        if analysis:  # what it was decided with, and why it ran
            commit = code_commit(study.path.parent)
            decided, texts = study_record(study, context.resources.results.open())
            metadata.update(provenance_metadata(study, context.run, decided, texts, commit))
        if product.ledger:
            provenance = Provenance(study=study.name, kind=kind.name, git_commit=commit, study_hash=study.spec_hash,
                                    run_id=context.run.run_id, decided_at=pd.Timestamp.now(tz="UTC").isoformat())
            # They join the ledger when this run completes; a run that fails or is killed adds none.
            metadata["ledger_rows"] = context.resources.ledger.stage(product.ledger, provenance)
            history = Markdown(decision_histories(study, decided, texts, ledger_rows(product.ledger, provenance)))
            metadata.update(dagster_metadata({"history": history}))
        yield Output(product.frame, output_name="result", metadata=metadata)  # stored by the IO manager now
        checked = validate_frame(node.schema(study), product.frame, check_name(node), key) if node.schema else None
        if checked is None or checked.passed:
            # Only now: a failed check fails the step, and its re-execution must find the rows again.
            step.clear_checkpoint()
        if checked is not None:
            yield checked

    def run(context: AssetExecutionContext, subjects: list[str], inputs: dict):
        started = time.perf_counter()
        step = DagsterStep(context, kind, node, subjects, checkpoint, columns)
        yield from finish(context, step, node.compute(study, step, **inputs), started)

    pool = node.pool(study) if node.pool else None
    ins = {name: AssetIn(key=AssetKey([study.name, name]), partition_mapping=_partition_mapping(kind, node, nodes[name]))
           for name in node.inputs}
    check_specs = [AssetCheckSpec(check_name(node), asset=key, blocking=True, description=(
        f"Every row of {node.name} matches its pandera schema (types, ranges, uniqueness); blocking: a "
        "failure stops what depends on it and lists the failing rows by their keys"))] if node.schema else None
    if node.partitioned_by == TRIAL and chunks:
        return _fanned_out_trials(study, kind, node, key, partitions_def, version, ins, check_specs, pool, columns,
                                  checkpoint, finish, chunks)

    if node.selectable:
        def compute(context: AssetExecutionContext, config: SubjectSelection, **inputs):
            yield from run(context, config.subjects, inputs)
    else:
        def compute(context: AssetExecutionContext, **inputs):
            yield from run(context, [], inputs)

    return asset(
        name=node.name,
        key_prefix=[study.name],
        group_name=study.name,
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run() if partitions_def is not None else None,
        io_manager_key="warehouse",
        required_resource_keys={"ledger", "progress", "results"},
        code_version=version,
        ins=ins,
        deps=[AssetKey([study.name, name]) for name in node.deps],
        metadata={"partition_columns": columns} if columns else None,
        check_specs=check_specs,
        description=node.description,
        **({"pool": pool} if pool else {}),
    )(compute)


def _fanned_out_trials(study, kind: StudyKind, node: Node, key: AssetKey, partitions_def, version: str, ins: dict,
                       check_specs, pool, columns: list[str], checkpoint: str, finish, chunks: int
                       ) -> AssetsDefinition:
    """The trials asset of a scaled-out deployment (``defs.scale_out``): the same asset, key,
    partitions, output and check, computed by a graph of steps that an executor spreads over
    workers: ``<node>__measure_<i>`` (one step per chunk, all ready at once) measures the i-th
    piece of the run's trials and checkpoints its rows in the warehouse, and ``<node>__gather``
    collects the checkpointed rows into the asset's output. Steps hand each other only row counts
    (through the warehouse), so workers need nothing shared but the databases. The gathering step
    stores nothing unless every trial of the run has its rows and their count is what the
    measuring steps reported (a worker built with another chunk count, or writing to another
    warehouse, fails the run instead of losing trials)."""
    prefix = f"{study.name}__{node.name}"
    if node.deps:  # graph_asset takes no deps beyond its inputs; no shipped kind's trials have any
        raise ValueError(f"{kind.name}'s {node.name} node has deps {list(node.deps)}, which a scaled-out "
                         "deployment cannot fan out; make them inputs, or run in process (unset "
                         f"{scale_out.EXECUTOR_ENV} and {scale_out.BROKER_ENV})")
    selectable = {"config_schema": SubjectSelection.to_config_schema()} if node.selectable else {}

    def measuring(index: int):
        @op(name=f"{prefix}__measure_{index}", ins={name: In() for name in node.inputs},
            out=Out(int, io_manager_key="step_values"), required_resource_keys={"progress", "results"},
            description=f"Measures piece {index + 1} of {chunks} of the run's {node.name} and checkpoints its rows.",
            **selectable, **({"pool": pool} if pool else {}))
        def measure(context: OpExecutionContext, **inputs) -> int:
            subjects = list((context.op_config or {}).get("subjects", [])) if node.selectable else []
            step = DagsterStep(context, kind, node, subjects, checkpoint, columns)
            # Point-major (Dagster orders multi-partition keys by dimension name): a point's trials
            # stay together, so a vectorised target still sees them at once.
            pieces = scale_out.split(sorted(step.partition_keys), chunks)
            if index >= len(pieces):  # fewer trials than steps
                return 0
            step.partition_keys = pieces[index]
            context.log.info(f"measuring {len(step.partition_keys)} of the run's trials")
            product = node.compute(study, step, **inputs)
            step.checkpoint(product.frame)  # every row, also those the kind checkpointed on the way
            return len(product.frame)

        return measure

    measures = [measuring(index) for index in range(chunks)]

    outs = {"result": Out(io_manager_key="warehouse", metadata={"partition_columns": columns})}
    check_outputs = {}
    if check_specs:
        from dagster._core.definitions.decorators.decorator_assets_definition_builder import (
            validate_and_assign_output_names_to_check_specs,
        )

        check_outputs = validate_and_assign_output_names_to_check_specs(check_specs, [key])
        outs.update({name: Out(is_required=False) for name in check_outputs})

    @op(name=f"{prefix}__gather", ins={"rows": In()}, out=outs, required_resource_keys={"ledger", "progress", "results"},
        description=f"Gathers the measuring steps' checkpointed rows into {node.name}.", **selectable)
    def gather(context: OpExecutionContext, rows: list):
        started = time.perf_counter()
        subjects = list((context.op_config or {}).get("subjects", [])) if node.selectable else []
        step = DagsterStep(context, kind, node, subjects, checkpoint, columns)
        frame = step.checkpointed()
        wanted = {tuple(str(v) for v in k) for k in step.partition_keys}
        found = {tuple(str(v) for v in k) for k in frame[columns].itertuples(index=False)} if len(frame) else set()
        # A partition of the inbox's range may have no rows (a point no file ran, a key a changed file gave up).
        # (Only those the inbox holds no rows of, in this process's warehouse: a worker writing to
        # another warehouse still fails the run.)
        inbox_keys = set(inbox_range(study, wanted))
        held = ingested_rows(context.resources.results.open(), study, sorted(inbox_keys)) if inbox_keys else None
        holding = {(str(p), str(r)) for p, r in zip(held[columns[0]], held[columns[1]])} if held is not None and len(
            held) else set()
        missing = sorted(wanted - found - (inbox_keys - holding))
        if missing or len(frame) != sum(rows):
            shown = ", ".join("/".join(k) for k in missing[:5])
            raise Failure(description=(
                f"the measuring steps reported {sum(rows)} rows, the warehouse holds {len(frame)} for this run's "
                f"{len(wanted)} trials" + (f"; {len(missing)} have none ({shown}{', ...' if len(missing) > 5 else ''})"
                                           if missing else "") +
                "; nothing was stored. Do every worker and this process use the same "
                f"{scale_out.CHUNKS_ENV} and warehouse? Run the study again to measure what is missing"))
        context.log.info(f"gathered {len(frame)} rows of {len(wanted)} trials from {len(rows)} steps")
        if frame.empty:  # only partitions of the inbox's range, which no file holds: stored empty
            frame = no_trials(study, node)
        yield from finish(context, step, Product(frame), started)

    def compose(**inputs):
        outputs = gather([measure(**inputs) for measure in measures])
        if not check_outputs:
            return outputs
        result, *checks = outputs
        return {"result": result, **dict(zip(check_outputs, checks))}

    compose.__signature__ = inspect.Signature(
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in node.inputs])
    compose.__name__ = node.name
    return graph_asset(
        name=node.name,
        key_prefix=[study.name],
        group_name=study.name,
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        code_version=version,
        ins=ins,
        metadata={"partition_columns": columns},
        check_specs=check_specs,
        description=node.description,
    )(compose)


def _trial_keys(kind: StudyKind, partition_keys) -> list[tuple[str, str]]:
    return [(k.keys_by_dimension[kind.point.name], k.keys_by_dimension[kind.replicate.name]) for k in partition_keys]


# -- reruns: sensor and schedule ------------------------------------------------------------------

def rerun_request(study, trial_keys: list[tuple[str, str]], changed_nodes: set[str], *, reason: str,
                  tags: dict | None = None) -> RunRequest:
    """One asset backfill: ``trial_keys`` (point, replicate), the point and replicate partitions
    they touch (every current one for a node whose version changed), and every unpartitioned
    node. Trials run as a single run over their partitions, then what follows, in order."""
    kind, parts = kind_of(study), study_partitions(study)
    points = list(dict.fromkeys(p for p, _ in trial_keys))
    replicates = list(dict.fromkeys(r for _, r in trial_keys))
    subsets, unpartitioned = {}, set()
    for node in kind.nodes():
        key = AssetKey([study.name, node.name])
        if node.partitioned_by == TRIAL:
            keys = [MultiPartitionKey({kind.point.name: p, kind.replicate.name: r}) for p, r in trial_keys]
        elif node.partitioned_by in (POINT, REPLICATE):
            dimension, touched = (kind.point, points) if node.partitioned_by == POINT else (kind.replicate, replicates)
            keys = dimension.keys(study) if node.name in changed_nodes else touched
        else:
            unpartitioned.add(key)
            continue
        if keys:
            subsets[key] = parts.of(node.partitioned_by).empty_subset().with_partition_keys(keys)
    subset = AssetGraphSubset(partitions_subsets_by_asset_key=subsets, non_partitioned_asset_keys=unpartitioned)
    return RunRequest.for_asset_graph_subset(subset, tags={**(tags or {}), REASON_TAG: reason[:200]})


def _sensor_state(study) -> dict:
    kind = kind_of(study)
    trial_node = kind.trial_node().name
    return {"points": kind.point_fingerprints(study), "replicates": kind.replicate.keys(study),
            "versions": {name: v for name, v in node_versions(study, per_point_trials=True).items()
                         if name != trial_node},
            "hash": study.spec_hash}


def _cursor_of_an_earlier_version(previous: dict, state: dict) -> dict:
    """A cursor written before study kinds shared one sensor (its keys differ): what it tells of
    point fingerprints and replicates is kept, so an edit made across the upgrade still reruns its
    trials; an edit it cannot attribute (the file changed, no point did) reruns the analysis."""
    points = previous.get("points") if isinstance(previous.get("points"), dict) else previous.get("arms")
    if points is None and isinstance(previous.get("points"), list):  # load sweep: one fingerprint for all points
        points = dict.fromkeys(previous["points"], previous.get("trials"))
    replicates = previous.get("seeds") or previous.get("trial_keys") or state["replicates"]
    unchanged = previous.get("hash") == state["hash"]
    versions = state["versions"] if unchanged else dict.fromkeys(state["versions"], "")
    return {"points": points or {}, "replicates": list(replicates), "versions": versions, "hash": previous.get("hash")}


def changes_to_rerun(current, previous: dict, state: dict) -> list[RunRequest]:
    """What an edit of the study file affects: a point whose fingerprint changed (or a new one)
    reruns all its trials, new replicates run on every point, a node whose version changed
    reruns (all its partitions); then everything unpartitioned after them."""
    replicates, known_replicates = state["replicates"], set(previous["replicates"])
    wanted = []
    for point, fingerprint in state["points"].items():
        if previous["points"].get(point) != fingerprint:
            wanted += [(point, r) for r in replicates]
        else:
            wanted += [(point, r) for r in replicates if r not in known_replicates]
    changed = {name for name, v in state["versions"].items() if previous["versions"].get(name) != v}
    lists_changed = list(previous["points"]) != list(state["points"]) or previous["replicates"] != replicates
    if not (wanted or changed or lists_changed):
        return []
    reason = (f"{len(wanted)} trials to run after a change to {current.path.name}" if wanted
              else f"analysis settings or lists changed in {current.path.name}")
    return [rerun_request(current, wanted, changed, reason=reason)]


def _state_key(study, digest: str) -> str:
    return f"benchmark_assets/study_state/{study.name}/{digest}"


def _store_sensor_state(instance, study, state: dict) -> str:
    """Keep the study's state (every point's fingerprint...) in the instance's key-value store and
    return a one-line cursor naming it: the sensor page shows the cursor, so it stays short."""
    text = json.dumps(state)  # key order is part of the state: the order of points and replicates
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    instance.run_storage.set_cursor_values({_state_key(study, digest): text})
    return f"{digest}: {len(state['points'])} points, {len(state['replicates'])} replicates, study {state['hash']}"


def _load_sensor_state(instance, study, cursor: str | None) -> dict | None:
    """The state a cursor names; a cursor written before states moved out of it is the state itself."""
    if not cursor:
        return None
    if cursor.lstrip().startswith("{"):
        return json.loads(cursor)
    key = _state_key(study, cursor.split(":", 1)[0])
    text = instance.run_storage.get_cursor_values({key}).get(key)
    return json.loads(text) if text else None


def build_sensor(study):
    """A sensor that watches the study file. Each tick it loads the file (an invalid edit skips,
    saying why), registers new dynamic partition keys, and compares the file's state with the
    last tick's (kept in the cursor) to request exactly the reruns an edit needs. The first tick
    adopts the file as it is: reruns are for changes, not for start-up."""
    path = study.path

    @sensor(
        name=f"{study.name}__study_changes",
        minimum_interval_seconds=sensor_interval(30),
        default_status=DefaultSensorStatus.RUNNING,
        # Backfill requests are only accepted from a sensor whose selection covers their assets.
        asset_selection=AssetSelection.groups(study.name),
        description=f"Watches {path.name}: registers new partition keys and reruns what a change affects.",
    )
    def study_changes(context: SensorEvaluationContext):
        try:
            current = load_study(path)
        except StudyError as error:
            return SkipReason(f"study file is invalid, nothing rerun: {error}")
        if current.kind != study.kind:
            return SkipReason(f"{path.name} is no longer a {study.kind} study; reload the definitions")
        origin = context.code_location_origin
        location = origin.location_name if origin else None
        if (outcome := code_reload.take_outcome(location)) is not None:
            context.log.info(f"the last reload: {outcome}")
        if current.spec_hash != study.spec_hash and code_reload.reload_soon(location, current.spec_hash):
            # the definitions hold an older version of the file
            context.log.info(f"{path.name} changed since the definitions were loaded: asking for a reload of "
                             f"{location}, so the UI shows the study's new code versions")
        add_requests = []
        for dimension, partitions in dimensions(current):
            if dimension.dynamic:
                new_keys = unregistered_keys(context.instance, partitions, dimension.keys(current))
                if new_keys:
                    add_requests.append(partitions.build_add_request(new_keys))
        state = _sensor_state(current)
        previous = _load_sensor_state(context.instance, current, context.cursor)
        cursor = _store_sensor_state(context.instance, current, state)
        if previous is None:  # the first tick adopts the file as it is
            return SensorResult(dynamic_partitions_requests=add_requests, cursor=cursor)
        if set(previous) != set(state):
            previous = _cursor_of_an_earlier_version(previous, state)
        return SensorResult(run_requests=changes_to_rerun(current, previous, state),
                            dynamic_partitions_requests=add_requests, cursor=cursor)

    return study_changes


def build_schedule(study):
    """``<study>__nightly``: reruns the whole study (every registered point and replicate) as one
    backfill; off unless the study's ``schedule.enabled`` is true. None for a spec without schedule."""
    spec = getattr(study.spec, "schedule", None)
    kind = kind_of(study)
    final = [AssetKey([study.name, n.name]) for n in kind.nodes() if n.partitioned_by is None]
    if spec is None or not final:
        return None
    parts = study_partitions(study)

    @schedule(
        name=f"{study.name}__nightly",
        cron_schedule=spec.cron,
        # The request is a backfill of the whole group; the target only has to be a loadable job,
        # and one over the group would mix partitioned and unpartitioned assets (Dagster refuses).
        target=AssetSelection.assets(*final),
        default_status=DefaultScheduleStatus.RUNNING if spec.enabled else DefaultScheduleStatus.STOPPED,
        description=f"Reruns the whole {kind.name} study as one backfill.",
    )
    def nightly(context: ScheduleEvaluationContext):
        keys = {}
        for dimension, partitions in ((kind.point, parts.point), (kind.replicate, parts.replicate)):
            registered = set(dimension_order(context.instance, study, dimension, partitions))
            keys[dimension.name] = [k for k in dimension.keys(study) if k in registered]
            if not keys[dimension.name]:
                return SkipReason(f"no {dimension.name} keys registered yet; the study sensor or the CLI registers them")
        wanted = [(p, r) for p in keys[kind.point.name] for r in keys[kind.replicate.name]]
        # Every registered point and replicate is touched, so every partition rerun is a registered one.
        return rerun_request(study, wanted, set(), reason=f"nightly {kind.name}")

    return nightly


# -- the CLI's stages -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    """One in-process Dagster run of the CLI: a label, the assets, a partition range, run config."""

    label: str
    asset_keys: list[AssetKey]
    start: str | None = None
    end: str | None = None
    run_config: dict | None = None


def plan_stages(study, instance, wanted: dict[str, list[str]], subjects: list[str],
                nodes: Collection[str] | None = None) -> list[Stage]:
    """The runs that materialise ``wanted`` trials (point -> replicates) and what follows them:
    per partitioned node, one ranged run per contiguous block (trials: per rectangle of points
    that need the same replicates); consecutive unpartitioned nodes share one run. ``nodes``
    (a follow-up's) limits the unpartitioned nodes to those named."""
    kind, parts = kind_of(study), study_partitions(study)
    point_order = dimension_order(instance, study, kind.point, parts.point)
    replicate_order = dimension_order(instance, study, kind.replicate, parts.replicate)
    points = [p for p in point_order if wanted.get(p)]
    replicates = [r for r in replicate_order if any(r in wanted[p] for p in points)]
    stages: list[Stage] = []
    pending: list[Node] = []

    def key(node: Node) -> AssetKey:
        return AssetKey([study.name, node.name])

    def flush() -> None:
        if pending:
            config = {f"{study.name}__{n.name}": {"config": {"subjects": list(subjects)}} for n in pending if n.selectable}
            stages.append(Stage(", ".join(n.name.replace("_", " ") for n in pending), [key(n) for n in pending],
                                run_config={"ops": config} if config else None))
            pending.clear()

    for node in kind.nodes():
        if node.partitioned_by is None:
            if nodes is None or node.name in nodes:
                pending.append(node)
            continue
        flush()
        label = node.name.replace("_", " ")
        if node.partitioned_by == TRIAL:
            def corner(pair: tuple[str, str]) -> str:
                return str(MultiPartitionKey({kind.point.name: pair[0], kind.replicate.name: pair[1]}))

            known = set(replicate_order)
            pairs = [(p, r) for p in points for r in wanted[p] if r in known]
            stages += [Stage(label, [key(node)], corner(first), corner(last))
                       for first, last in rectangles(pairs, point_order, replicate_order)]
        else:
            selected, order = (points, point_order) if node.partitioned_by == POINT else (replicates, replicate_order)
            stages += [Stage(label, [key(node)], block[0], block[-1]) for block in contiguous_blocks(selected, order)]
    flush()
    return stages


def endpoint_pools(study) -> list[str]:
    """The concurrency pools the study's assets run in."""
    return [pool for node in kind_of(study).nodes() if node.pool and (pool := node.pool(study))]


def build_study(study) -> tuple[list[AssetsDefinition], list, list]:
    """Assets, sensors and schedules of one study."""
    schedule_def = build_schedule(study)
    return build_assets(study), [build_sensor(study)], [schedule_def] if schedule_def else []


# -- runs whose process is gone -------------------------------------------------------------------

def process_tags() -> dict[str, str]:
    """Tags that say which process runs a run, so a later process can tell it was abandoned."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def reclaim_abandoned_runs(instance) -> list[str]:
    """Mark failed every unfinished run that a process on this host started and that process is
    gone (killed with SIGKILL, the machine's OOM killer...), and free the concurrency-pool slots
    it held: otherwise it stays STARTED forever and later load trials on its endpoint wait
    forever. Returns one line per run reclaimed."""
    from dagster import DagsterRunStatus, RunsFilter

    reclaimed = []
    unfinished = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.NOT_STARTED,
                  DagsterRunStatus.CANCELING]
    for run in instance.get_runs(RunsFilter(statuses=unfinished, tags={HOST_TAG: socket.gethostname()})):
        pid = int(run.tags.get(PID_TAG, "0") or 0)
        if pid <= 0 or pid == os.getpid() or process_alive(pid):
            continue
        instance.report_run_failed(run, message=f"the process that ran it (pid {pid}) is gone; marked failed by "
                                               f"benchmark-assets (pid {os.getpid()})")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reclaimed.append(f"run {run.run_id} (pid {pid}, gone) marked failed; its pool slots are free again")
    return reclaimed


# How long the decisions of a failed run wait for a re-execution that completes it.
KEEP_FAILED_DECISIONS_SECONDS = 7 * 24 * 3600


def _completed_by_reexecution(instance, run) -> str | None:
    """The id of a later run of the same run group (a re-execution "from failure" in the UI) that
    succeeded: it completed what ``run`` decided."""
    from dagster import DagsterRunStatus, RunsFilter

    root = run.tags.get("dagster/root_run_id", run.run_id)
    for other in instance.get_runs(RunsFilter(tags={"dagster/root_run_id": root}, statuses=[DagsterRunStatus.SUCCESS])):
        if other.run_id != run.run_id:
            return other.run_id
    return None


def settle_finished_runs(instance, ledger) -> list[str]:
    """Decisions of runs that have ended: those of a run that succeeded, or that failed and was then
    re-executed to success, join the ledger; those of a run that failed or was canceled and stayed
    so for ``KEEP_FAILED_DECISIONS_SECONDS`` are dropped; a run still going keeps them waiting.
    Runs this instance does not know (another Dagster home sharing the warehouse) are left to that
    home. Returns one line per run settled or dropped."""
    from dagster import DagsterRunStatus

    lines = []
    for run_id in ledger.pending_runs():
        run = instance.get_run_by_id(run_id)
        if run is None:
            continue
        if run.status == DagsterRunStatus.SUCCESS:
            lines.append(f"run {run_id} succeeded: {ledger.settle(run_id)} decisions joined the ledger")
        elif run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            completed_by = _completed_by_reexecution(instance, run)
            record = instance.get_run_record_by_id(run_id)
            ended = record.end_time if record and record.end_time else time.time()
            if completed_by:
                lines.append(f"run {run_id} failed, its re-execution {completed_by} succeeded: "
                             f"{ledger.settle(run_id)} decisions joined the ledger")
            elif time.time() - ended > KEEP_FAILED_DECISIONS_SECONDS:
                lines.append(f"run {run_id} {run.status.value.lower()} and was not re-executed: its "
                             f"{ledger.discard(run_id)} decisions were dropped, not put in the ledger")
    return lines


def build_ledger_sensor():
    """``ledger_settlement``: moves the decisions of runs launched from the UI (or anywhere) into
    the ledger once they succeed, and drops those of runs that failed. The CLI settles its own
    runs at once; this catches every other run within a tick."""

    @sensor(name="ledger_settlement", minimum_interval_seconds=sensor_interval(15), default_status=DefaultSensorStatus.RUNNING,
            description="Puts a run's decisions into the ledger when it succeeds; drops them when it fails.")
    def ledger_settlement(context: SensorEvaluationContext, ledger: LedgerResource):
        lines = settle_finished_runs(context.instance, ledger.open())
        return SkipReason("; ".join(lines) if lines else "no decisions waiting for a run that has ended")

    return ledger_settlement


def pool_holders(instance, pool: str) -> list[str]:
    """Who holds a pool's slots when they are all taken: one line per run, for a waiting message."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    if info.slot_count == 0 or len(info.claimed_slots) < info.slot_count:
        return []
    lines = []
    for run_id in sorted(info.active_run_ids):
        run = instance.get_run_by_id(run_id)
        who = f"pid {run.tags.get(PID_TAG)} on {run.tags.get(HOST_TAG)}" if run and PID_TAG in run.tags else "the UI or a daemon"
        lines.append(f"pool {pool} is held by run {run_id} ({who}, {run.status.value if run else 'unknown'}); "
                     f"to free it stop that run, or: dagster instance concurrency set {pool} 1 after checking it is dead")
    return lines
