"""What every node's step does with what it computed, in process or gathered from workers:
metadata for the UI, provenance and ledger entries for a decision, the output (stored by the IO
manager), then the blocking schema check, and only then the end of the trials' checkpoint."""
from __future__ import annotations

import time

import pandas as pd
from dagster import AssetKey, Output

from benchmark_assets.defs.compat import add_partition_metadata
from benchmark_assets.defs.metadata import (
    check_name,
    dagster_metadata,
    decision_histories,
    decision_record,
    log_totals,
    per_trial_metadata,
    provenance_metadata,
    trials_metadata,
    validate_frame,
)
from benchmark_assets.defs.step import DagsterStep
from benchmark_assets.graph import StudyGraph
from benchmark_assets.kinds.base import TRIAL, Node, NodeResult
from benchmark_assets.ledger import Provenance, ledger_rows
from benchmark_assets.provenance import code_commit


def finish(graph: StudyGraph, node: Node, context, step: DagsterStep, product: NodeResult, started: float):
    """Yields the node's output and its check result (a generator, as Dagster's compute functions are)."""
    study, key = graph.study, AssetKey(graph.asset_path(node.name))
    trials = node.partitioned_by == TRIAL
    if trials:  # every stored trial carries its fingerprint and source
        product = NodeResult(graph.stamped(product.frame), product.metadata, product.ledger)
    metadata = {}
    if trials:  # each trial partition shows its own rows; the run's totals go to the run's log, once
        by_partition = per_trial_metadata(graph, product.frame)
        add_partition_metadata(context, key, by_partition)
        totals = {**trials_metadata(product.frame, graph.partition_columns(node), started), **product.metadata}
        if len(by_partition) > 1:
            log_totals(context, totals)
        else:
            metadata.update(dagster_metadata(totals))
    else:
        metadata.update(dagster_metadata(product.metadata))
    if node.partitioned_by is None or product.ledger:  # what it was decided with, and why it ran
        commit = code_commit(study.path.parent)
        decided, texts = decision_record(study, context.resources.warehouse.open())
        metadata.update(provenance_metadata(study, context.run, decided, texts, commit))
    if product.ledger:
        provenance = Provenance(study=study.name, kind=graph.kind.name, git_commit=commit, study_hash=study.spec_hash,
                                run_id=context.run.run_id, decided_at=pd.Timestamp.now(tz="UTC").isoformat())
        # They join the ledger when this run completes; a run that fails or is killed adds none.
        metadata["ledger_rows"] = context.resources.ledger.stage(product.ledger, provenance)
        metadata.update(dagster_metadata(decision_histories(study, decided, texts, ledger_rows(product.ledger, provenance))))
    yield Output(product.frame, output_name="result", metadata=metadata)  # stored by the IO manager now
    checked = validate_frame(node.schema(study), product.frame, check_name(node), key) if node.schema else None
    if checked is None or checked.passed:
        # Only now: a failed check fails the step, and its re-execution must find the rows again.
        step.clear_checkpoint()
    if checked is not None:
        yield checked


def computed(graph: StudyGraph, node: Node, context, subjects: list[str], inputs: dict):
    """Compute a node in this step and finish it."""
    started = time.perf_counter()
    trials = graph.trial_node.name
    inputs = {name: graph.upgraded(frame) if name == trials else frame for name, frame in inputs.items()}
    step = DagsterStep(context, graph, node, subjects)
    yield from finish(graph, node, context, step, node.compute(graph.study, step, **inputs), started)
