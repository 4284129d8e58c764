"""A scaled-out stage: one Dagster run whose steps the deployment's executor runs elsewhere
(celery workers, Kubernetes pods), each process rebuilding the stage's job by name."""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterRunStatus,
    Definitions,
    JobDefinition,
    define_asset_job,
    execute_job,
)

from benchmark_assets.defs import scale_out
from benchmark_assets.defs.assets import build_assets
from benchmark_assets.defs.compat import build_reconstructable_job
from benchmark_assets.defs.resources import study_resources
from benchmark_assets.graph import StudyGraph
from benchmark_assets.studies import StudyError
from benchmark_assets.warehouse import default_url


def stage_job(study_path: str, spec_hash: str, node_names, chunks: int) -> JobDefinition:
    """The job a scaled-out stage runs as, rebuilt by name in every process that executes one of
    its steps (a celery worker loads it from this function and these arguments): the study's
    assets named ``node_names``, the trials cut into the launcher's ``chunks``, on the deployment's
    executor. Built once per process and executor."""
    # The arguments arrive as JSON (lists); the executor is this process's (a worker's is its own).
    return _stage_job(study_path, spec_hash, tuple(node_names), int(chunks), scale_out.executor())


@functools.lru_cache(maxsize=32)
def _stage_job(study_path: str, spec_hash: str, node_names: tuple[str, ...], chunks: int,
               executor: str) -> JobDefinition:
    graph = StudyGraph.load(study_path)
    if graph.study.spec_hash != spec_hash:
        raise StudyError(graph.path, "(whole file)", "changed since the run started (this process reads another "
                         "version than the one that launched it)", "run the study again")
    name = f"{graph.name}__stage"
    definitions = Definitions(
        assets=build_assets(graph, trial_chunks=chunks), resources=study_resources(),
        jobs=[define_asset_job(name, selection=AssetSelection.assets(*[AssetKey(graph.asset_path(n)) for n in node_names]),
                               executor_def=scale_out.executor_def())])
    return definitions.resolve_job_def(name)


def on_workers(graph: StudyGraph, stage, *, instance, resources: dict, tags: dict, run_config: dict):
    """Runs ``stage`` as one Dagster run whose steps (a fanned-out trials graph) the deployment's
    executor runs elsewhere; this process hands them out and follows them. Workers read the
    warehouse from their own environment, so a warehouse given only to this process could not be theirs."""
    own = resources["warehouse"].url
    if own and own != default_url():
        raise ValueError(f"a scaled-out run stores results where the workers do ({default_url()}), not in {own}; "
                         "set BENCHMARK_ASSETS_WAREHOUSE_URL (or BENCHMARK_ASSETS_POSTGRES_URL) for every process "
                         "instead")
    job = build_reconstructable_job(__name__, "stage_job", reconstructable_args=(
        str(graph.path), graph.study.spec_hash, tuple(key.path[-1] for key in stage.asset_keys),
        scale_out.trial_chunks()))
    with warnings.catch_warnings():
        if scale_out.executor() == "celery":
            import celery.exceptions  # the scale extra: only a celery run gets here

            # dagster-celery registers its task again for every step it submits; celery 5.7 warns each time.
            warnings.simplefilter("ignore", getattr(celery.exceptions, "DuplicateTaskNameWarning", Warning))
        with execute_job(job, instance=instance, run_config=run_config, tags=tags) as result:
            events = list(result.all_events)
            run = instance.get_run_by_id(result.run_id)
            stopped = run is not None and run.status in (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED)
            return Finished(result.success, result.run_id, events, interrupted=stopped or any(
                event.is_engine_event and "termination signal" in (event.message or "") for event in events))


@dataclass(frozen=True)
class Finished:
    """What a stage's run left once its result is closed: success, run id, events."""

    success: bool
    run_id: str
    all_events: list
    interrupted: bool = False  # Ctrl-C or Terminate reached the executor (it stops handing out steps)


def asset_pool(asset) -> str | None:
    """The concurrency pool an asset's steps run in (an op's own, or that of a fanned-out graph's ops)."""
    ops = [asset.node_def] if not hasattr(asset.node_def, "node_defs") else list(asset.node_def.iterate_op_defs())
    return next((op_def.pool for op_def in ops if getattr(op_def, "pool", None)), None)
