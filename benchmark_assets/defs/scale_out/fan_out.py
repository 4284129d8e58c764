"""The trials asset of a scaled-out deployment: the same asset, key, partitions, output and check
as in process, computed by a graph of steps that an executor spreads over workers."""

import inspect
import time

from dagster import AssetKey, AssetsDefinition, BackfillPolicy, Failure, In, OpExecutionContext, Out, graph_asset, op

from benchmark_assets.defs import scale_out
from benchmark_assets.defs.compat import check_output_names
from benchmark_assets.defs.outputs import finish
from benchmark_assets.defs.step import DagsterStep, SubjectSelection
from benchmark_assets.graph import StudyGraph
from benchmark_assets.inbox import inbox_range, ingested_rows, no_trials
from benchmark_assets.kinds.base import Node, NodeResult


def fanned_out_trials(graph: StudyGraph, node: Node, partitions_def, version: str, ins: dict, check_specs, pool,
                      chunks: int) -> AssetsDefinition:
    """The trials asset of a scaled-out deployment (``defs.scale_out``): the same asset, key,
    partitions, output and check, computed by a graph of steps that an executor spreads over
    workers: ``<node>__measure_<i>`` (one step per chunk, all ready at once) measures the i-th
    piece of the run's trials and checkpoints its rows in the warehouse, and ``<node>__gather``
    collects the checkpointed rows into the asset's output. Steps hand each other only row counts
    (through the warehouse), so workers need nothing shared but the databases. The gathering step
    stores nothing unless every trial of the run has its rows and their count is what the
    measuring steps reported (a worker built with another chunk count, or writing to another
    warehouse, fails the run instead of losing trials)."""
    study, kind = graph.study, graph.kind
    key, columns = AssetKey(graph.asset_path(node.name)), graph.partition_columns(node)
    prefix = f"{study.name}__{node.name}"
    if node.deps:  # graph_asset takes no deps beyond its inputs; no shipped kind's trials have any
        raise ValueError(f"{kind.name}'s {node.name} node has deps {list(node.deps)}, which a scaled-out "
                         "deployment cannot fan out; make them inputs, or run in process (unset "
                         f"{scale_out.EXECUTOR_ENV} and {scale_out.BROKER_ENV})")
    selectable = {"config_schema": SubjectSelection.to_config_schema()} if node.selectable else {}

    def measuring(index: int):
        @op(name=f"{prefix}__measure_{index}", ins={name: In() for name in node.inputs},
            out=Out(int, io_manager_key="step_values"), required_resource_keys={"progress", "warehouse"},
            description=f"Measures piece {index + 1} of {chunks} of the run's {node.name} and checkpoints its rows.",
            **selectable, **({"pool": pool} if pool else {}))
        def measure(context: OpExecutionContext, **inputs) -> int:
            subjects = list((context.op_config or {}).get("subjects", [])) if node.selectable else []
            step = DagsterStep(context, graph, node, subjects)
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

    outs = {"result": Out(io_manager_key="tables", metadata={"partition_columns": columns})}
    check_outputs = {}
    if check_specs:
        check_outputs = check_output_names(check_specs, [key])
        outs.update({name: Out(is_required=False) for name in check_outputs})

    @op(name=f"{prefix}__gather", ins={"rows": In()}, out=outs, required_resource_keys={"ledger", "progress", "warehouse"},
        description=f"Gathers the measuring steps' checkpointed rows into {node.name}.", **selectable)
    def gather(context: OpExecutionContext, rows: list):
        started = time.perf_counter()
        subjects = list((context.op_config or {}).get("subjects", [])) if node.selectable else []
        step = DagsterStep(context, graph, node, subjects)
        frame = step.checkpointed()
        wanted = {tuple(str(v) for v in k) for k in step.partition_keys}
        found = {tuple(str(v) for v in k) for k in frame[columns].itertuples(index=False)} if len(frame) else set()
        # A partition of the inbox's range may have no rows (a point no file ran, a key a changed file gave up).
        # (Only those the inbox holds no rows of, in this process's warehouse: a worker writing to
        # another warehouse still fails the run.)
        inbox_keys = set(inbox_range(graph, wanted))
        held = ingested_rows(context.resources.warehouse.open(), graph, sorted(inbox_keys)) if inbox_keys else None
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
        yield from finish(graph, node, context, step, NodeResult(frame), started)

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

