"""A whole study as Dagster runs, whatever its kind: the trials it still needs (one ranged run per
rectangle of partitions), then what follows them, one in-process run per stage. The CLI runs
studies with it, and so does the ``<study>__run_study`` job launched from the UI: a backfill of
the same assets waits one daemon tick (30 s) per level, this waits for nothing."""

import functools
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy.exc
from dagster import (
    AssetKey,
    AssetSelection,
    Config,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    Failure,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    define_asset_job,
    execute_job,
    in_process_executor,
    job,
    materialize,
    op,
)
from dagster._core.definitions.reconstruct import build_reconstructable_job
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from pydantic import Field
from tqdm import tqdm

from benchmark_assets import inbox
from benchmark_assets.defs import scale_out
from benchmark_assets.defs.builder import (
    LAUNCHED_BY_TAG,
    PARENT_RUN_TAG,
    REASON_TAG,
    build_assets,
    checkpoint_table,
    dimensions,
    endpoint_pools,
    plan_stages,
    pool_holders,
    process_tags,
    reclaim_abandoned_runs,
    register_keys,
    register_study,
    run_reason,
    settle_finished_runs,
    trials_table,
)
from benchmark_assets.defs.inbox_watch import event_mark, unstored_keys
from benchmark_assets.defs.resources import study_resources
from benchmark_assets.kinds import kind_of
from benchmark_assets.kinds.base import MAX_FOLLOWUPS, common_errors
from benchmark_assets.locks import database_lock, file_lock
from benchmark_assets.processes import clean_up_after_dead_runners
from benchmark_assets.studies import StudyError, load_study
from benchmark_assets.warehouse import default_url


def trials_to_run(study, *, subjects=(), tiers=(), force: bool = False, resources: dict | None = None
                  ) -> dict[str, list[str]]:
    """Per selected point, the replicates still to run: all of them, less the trials the kind
    says are up to date (a comparison skips trials that succeeded with the arm's current
    setting, so adding seeds runs only the new ones); ``force`` reruns everything."""

    kind = kind_of(study)
    points = kind.points(study, subjects, tiers)
    done: set[tuple[str, str]] = set()
    if not force:
        warehouse = (resources or study_resources())["warehouse"].warehouse.open()
        done = kind.completed_trials(study, warehouse.read(trials_table(study)))
    replicates = kind.replicate.keys(study)
    return {point: [r for r in replicates if (point, r) not in done] for point in points}


def run_study(study_name: str, *, tiers=None, constants=None, quiet: bool = False, instance=None, force: bool = False,
              warehouse_url: str = "", launched_by: str = "cli", reason: str = "", tags: dict | None = None,
              log: Callable[[str], None] | None = None, should_stop: Callable[[], bool] | None = None,
              trials: dict[str, list[str]] | None = None) -> dict:
    """Materialise a study through Dagster, whatever its kind: the trials it needs (ranged runs
    over rectangles of partitions), then what follows them; one in-process run per stage.
    ``warehouse_url`` (default: $BENCHMARK_ASSETS_WAREHOUSE_URL or SQLite under $DAGSTER_HOME)
    configures the one warehouse resource that the IO manager, the ledger and this function share.
    Each stage's run is tagged ``launched_by`` with ``reason`` (default: the CLI command) and
    ``tags``; ``log`` hears of each stage as it starts and ends (the UI job's progress);
    ``should_stop`` is asked before each stage (the UI job: has its run been terminated?);
    ``trials`` (point -> replicates, registered as partitions if new) replaces the trials the
    study's own lists ask for (``benchmark-assets ingest``: those of its inbox)."""
    study = load_study(study_name)
    kind = kind_of(study)
    subjects, tiers = list(constants or []), list(tiers or [])
    selected = kind.points(study, subjects, tiers)
    decided = kind.subjects(study, subjects, tiers)
    home = Path(instance.root_directory if instance is not None else os.environ.get("DAGSTER_HOME") or ".dagster_home")
    locks = home / "locks"
    # First use of a home creates its databases, and registering partition keys is a read then a
    # write: one process at a time, or a second one fails on "table runs already exists".
    with file_lock(locks / "instance.lock"):
        instance = instance or DagsterInstance.get()
        for line in reclaim_abandoned_runs(instance) + clean_up_after_dead_runners():
            (log or _stderr)(line)
        # Decisions of runs that ended while nobody was settling them (a CLI killed after its run).
        settle_finished_runs(instance, study_resources(warehouse_url)["ledger"].open())
        register_study(instance, study)
        for dimension, partitions in dimensions(study) if trials else ():
            if dimension.dynamic:
                register_keys(instance, partitions, list(dict.fromkeys(
                    key for point, replicates in trials.items()
                    for key in ([point] if dimension is kind.point else replicates))))
        for pool in endpoint_pools(study):
            ensure_pool_limit(instance, pool)
    # One run of a study at a time: a second waits, then runs only what the first left to do.
    waiting = f"waiting for another run of {study.name} ({{holder}}) to finish"
    with file_lock(locks / f"study_{study.name}.lock", say=log, waiting=waiting), \
            database_lock(study_resources(warehouse_url)["results"].open().url, f"benchmark_assets:study:{study.name}",
                          say=log, waiting=waiting):
        return _run_locked(study, kind, instance, subjects, tiers, selected, decided, quiet=quiet, force=force,
                           warehouse_url=warehouse_url, tags={**(tags or {}), LAUNCHED_BY_TAG: launched_by},
                           reason=reason, log=log, should_stop=should_stop, trials=trials)


STAGE_TAG = "benchmark_assets/stage"  # which stage of a study a run is (shown in the UI's run list)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cli_command(study_name: str, subjects, tiers, force: bool) -> str:
    """The `benchmark-assets run` command that selects what these arguments select."""
    return " ".join([f"benchmark-assets run {study_name}", *(f"--tier {t}" for t in tiers),
                     *([f"--constants {','.join(subjects)}"] if subjects else []), *(["--force"] if force else [])])


def _run_locked(study, kind, instance, subjects, tiers, selected, decided, *, quiet, force, warehouse_url,
                tags: dict, reason: str, log, should_stop=None, trials=None) -> dict:

    resources = study_resources(warehouse_url, terminal_bar=not quiet)
    wanted = trials if trials is not None else trials_to_run(study, subjects=subjects, tiers=tiers, force=force,
                                                             resources=resources)
    stages = plan_stages(study, instance, wanted, decided)
    kept = checkpointed_trials(study, wanted, resources)  # finished by an interrupted run: not run again
    started = time.perf_counter()
    assets = build_assets(study)
    stage_tags = {**tags, REASON_TAG: (reason or cli_command(study.name, subjects, tiers, force))[:200]}
    followed = 0
    try:
        timings = _materialise_stages(study, assets, stages, instance=instance, quiet=quiet,
                                      resources=resources, tags=stage_tags, log=log, should_stop=should_stop)
        rerun: set[str] = set()
        for followup in _followups(study, kind, resources, log=log, quiet=quiet):
            for dimension, partitions in dimensions(study):
                if dimension.dynamic:
                    keys = (list(followup.trials) if dimension is kind.point else
                            list(dict.fromkeys(r for rs in followup.trials.values() for r in rs)))
                    register_keys(instance, partitions, keys)
            timings += _materialise_stages(
                study, assets, plan_stages(study, instance, followup.trials, decided, nodes=followup.nodes),
                instance=instance, quiet=quiet, resources=resources, tags=stage_tags, log=log,
                should_stop=should_stop)
            followed += sum(len(r) for r in followup.trials.values())
            rerun |= set(followup.nodes)
        final = _downstream(kind, rerun)  # what reads the follow-ups' results (a report), once at the end
        if final:
            timings += _materialise_stages(
                study, assets, plan_stages(study, instance, {}, decided, nodes=final), instance=instance,
                quiet=quiet, resources=resources, tags=stage_tags, log=log, should_stop=should_stop)
    except (KeyboardInterrupt, StudyInterrupted) as stopped:
        stage = getattr(stopped, "stage", None)
        trials_done = stage is not None and AssetKey([study.name, kind.trial_node().name]) not in stage.asset_keys
        if trials_done:  # the trials stage had finished: its rows are stored, not in the checkpoint
            raise StudyInterrupted(f"interrupted during {stage.label}: the trials are stored; run the study "
                                   f"again (`benchmark-assets run {study.name}` or its job) to finish") from None
        kept, total = len(checkpointed_trials(study, wanted, resources)), sum(len(r) for r in wanted.values())
        raise StudyInterrupted(f"interrupted: {kept} of the {total} trials this run wanted are finished and kept; "
                               f"`benchmark-assets run {study.name}` (or the study's job) runs the other "
                               f"{total - kept}") from None
    except RuntimeError as error:
        # The stage's error may be a consequence (no data to decide on): show what the trials said.
        raise StudyRunError(str(error), trial_outcomes(study, wanted, resources)) from None
    # What the decision rests on: every current trial of the selected points, this run's or earlier.
    current = {point: kind.replicate.keys(study) for point in selected}
    ran = sum(len(replicates) for replicates in wanted.values()) - len(kept) + followed
    return {"study": study, "seconds": time.perf_counter() - started, "stages": timings,
            "trials": ran * kind.rows_per_trial(study), "kept": len(kept) * kind.rows_per_trial(study),
            "up_to_date": max(0, sum(len(r) for r in current.values()) - ran - len(kept)) * kind.rows_per_trial(study),
            "sweep_points": len(selected), "outcomes": trial_outcomes(study, current, resources)}


def ingest_study(study_name: str, *, quiet: bool = False, instance=None, warehouse_url: str = "",
                 log: Callable[[str], None] | None = None) -> tuple[inbox.Scan, dict | None]:
    """Read the study's new and changed inbox files (``inbox.scan``), then store the trials they
    brought, and any an earlier look stored but no run has materialised yet, as the study's trial
    partitions, with everything that follows them. The run's outcome is None if nothing is new."""
    study = load_study(study_name)
    resources = study_resources(warehouse_url)
    warehouse = resources["results"].open()
    instance = instance or DagsterInstance.get()
    found = inbox.scan(study, warehouse, say=log, mark=event_mark(instance))
    trials_key = AssetKey([study.name, kind_of(study).trial_node().name])
    keys = list(dict.fromkeys(found.to_store + unstored_keys(instance, study, warehouse, trials_key)))
    if not keys:
        return found, None
    wanted: dict[str, list[str]] = {}
    for point, replicate in keys:
        wanted.setdefault(point, []).append(replicate)
    files = ", ".join(o.path for o in found.ingested) or "trials stored by an earlier look"
    outcome = run_study(str(study.path), quiet=quiet, instance=instance, warehouse_url=warehouse_url,
                        reason=f"benchmark-assets ingest {study.name}: {files}"[:200], log=log, trials=wanted)
    return found, {**outcome, "ingested_trials": len(keys)}


def _downstream(kind, names: set[str]) -> list[str]:
    """The unpartitioned nodes that read (through inputs or deps, at any distance) one of
    ``names`` but are not among them."""
    found: set[str] = set()
    for node in kind.nodes():  # upstream first, so one pass sees every chain
        if node.partitioned_by is None and node.name not in names and \
                set(node.inputs + node.deps) & (names | found):
            found.add(node.name)
    return [node.name for node in kind.nodes() if node.name in found]


def _followups(study, kind, resources: dict, *, log, quiet: bool):
    """The follow-ups the kind's stored decisions ask for, one at a time (each sees the last one's
    results), each logged with its reason; at most ``MAX_FOLLOWUPS``."""
    warehouse = resources["warehouse"].warehouse.open()
    say = log or (_stderr if not quiet else (lambda line: None))
    previous = None
    for _ in range(MAX_FOLLOWUPS):
        followup = kind.followup(study, lambda node: warehouse.read(f"{study.name}__{node}"))
        if followup is None:
            return
        if followup == previous:  # what it measured did not settle it: asking again would loop
            say(f"follow-up not settled by its own trials, not repeated: {followup.reason} (see the trials' errors)")
            return
        say(f"follow-up: {followup.reason}")
        previous = followup
        yield followup
    say(f"stopped after {MAX_FOLLOWUPS} follow-ups; `benchmark-assets run {study.name}` goes on from here")


def checkpointed_trials(study, wanted: dict[str, list[str]], resources: dict) -> set[tuple[str, str]]:
    """Wanted trials that an interrupted run finished and checkpointed, and that the kind counts
    as complete: the trials step takes them from the checkpoint instead of running them."""

    warehouse = resources["warehouse"].warehouse.open()
    if not warehouse.has_table(checkpoint_table(study)):
        return set()
    done = kind_of(study).resumable_trials(study, warehouse.read(checkpoint_table(study)))
    return {(str(p), str(r)) for p, r in done} & _pairs(wanted)


def _pairs(wanted: dict[str, list[str]]) -> set[tuple[str, str]]:
    """(point, replicate) pairs of a point -> replicates mapping, as text (partition keys are text)."""
    return {(str(p), str(r)) for p, replicates in wanted.items() for r in replicates}


class StudyInterrupted(Exception):
    """A run stopped by Ctrl-C (or a terminated Dagster run); ``stage``: the stage it stopped in."""

    def __init__(self, message: str = "interrupted", stage=None):
        super().__init__(message)
        self.stage = stage


class StudyRunError(RuntimeError):
    """A run that failed, with what its trials reported (``outcomes``)."""

    def __init__(self, message: str, outcomes: dict):
        super().__init__(message)
        self.outcomes = outcomes


def trial_outcomes(study, wanted: dict[str, list[str]], resources: dict) -> dict:
    """How the stored trials of ``wanted`` (point -> replicates) ended: rows, failed rows and
    their most common errors."""
    kind = kind_of(study)
    keys = _pairs(wanted)
    points = sorted({p for p, _ in keys})
    if not points:
        return {"rows": 0, "failed": 0, "errors": []}
    frame = resources["warehouse"].warehouse.open().read(trials_table(study), {kind.point.name: points})
    if frame.empty:
        return {"rows": 0, "failed": 0, "errors": []}
    mine = [(str(p), str(r)) in keys for p, r in zip(frame[kind.point.name], frame[kind.replicate.name])]
    frame = frame[mine]
    return {"rows": len(frame), "failed": int((frame["status"] != "ok").sum()), "errors": common_errors(frame)}


def _materialise_stages(study, assets, stages, *, instance, quiet: bool, resources: dict, tags: dict,
                        log=None, should_stop=None) -> list[tuple[str, float, str]]:
    """One Dagster run per stage, with a progress bar (and a line to ``log`` per stage): in this
    process, but for a trials stage of a scaled-out deployment, whose steps go to celery workers
    (``on_workers``); stops at the first failed run with the user's own error."""
    label = study.name
    fanned_out = {asset.key for asset in assets if hasattr(asset.node_def, "node_defs")}
    quiet_logs = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    timings = []
    pools = {asset.key: pool for asset in assets if (pool := asset_pool(asset))}
    bar = tqdm(stages, desc=label, unit="stage", disable=quiet, file=sys.stderr)
    for number, stage in enumerate(bar, start=1):
        # A stop asked for between stages (a terminated UI job) is not lost: each stage's run
        # handles, then forgets, the interrupts it saw.
        if should_stop is not None and should_stop():
            raise StudyInterrupted(stage=stage)
        bar.set_postfix_str(stage.label)
        for key in stage.asset_keys:  # never wait silently for a pool another run holds
            for line in pool_holders(instance, pools[key]) if key in pools else []:
                (log or _stderr)(f"waiting: {line}")
        run_tags = {ASSET_PARTITION_RANGE_START_TAG: stage.start, ASSET_PARTITION_RANGE_END_TAG: stage.end} if stage.start else {}
        run_tags.update(process_tags())
        run_tags.update(tags)
        run_tags[STAGE_TAG] = stage.label[:200]
        span = f" {stage.start} ... {stage.end}" if stage.start else ""
        if log:
            log(f"stage {number} of {len(stages)}: {stage.label}{span}")
        stage_started = time.perf_counter()
        run_config = {**quiet_logs, **(stage.run_config or {})}
        if fanned_out & set(stage.asset_keys):
            result = on_workers(study, stage, instance=instance, resources=resources, tags=run_tags,
                                run_config=run_config)
        else:
            result = materialize(assets, instance=instance, resources=resources, selection=stage.asset_keys,
                                 tags=run_tags, run_config=run_config, raise_on_error=False)
        timings.append((stage.label, time.perf_counter() - stage_started, result.run_id))
        if log:
            log(f"stage {number} of {len(stages)}: {stage.label} {'succeeded' if result.success else 'failed'} in "
                f"{timings[-1][1]:.1f} s, run {result.run_id}")
        # Its decisions join the ledger only now that the run is known to have completed (those of
        # a failed run wait for a re-execution from the UI: settle_finished_runs).
        if result.success:
            resources["ledger"].open().settle(result.run_id)
        if not result.success and _interrupted(result):
            raise StudyInterrupted(stage=stage)
        if not result.success:
            raise RuntimeError(f"{stage.label} failed in run {result.run_id}: {_failure_message(result)}")
    return timings


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
    study = load_study(study_path)
    if study.spec_hash != spec_hash:
        raise StudyError(study.path, "(whole file)", "changed since the run started (this process reads another "
                         "version than the one that launched it)", "run the study again")
    name = f"{study.name}__stage"
    definitions = Definitions(
        assets=build_assets(study, trial_chunks=chunks), resources=study_resources(),
        jobs=[define_asset_job(name, selection=AssetSelection.assets(*[AssetKey([study.name, n]) for n in node_names]),
                               executor_def=scale_out.executor_def())])
    return definitions.resolve_job_def(name)


def on_workers(study, stage, *, instance, resources: dict, tags: dict, run_config: dict):
    """Runs ``stage`` as one Dagster run whose steps (a fanned-out trials graph) the deployment's
    executor runs elsewhere (celery workers, Kubernetes pods); this process hands them out and
    follows them. Workers read the warehouse from
    their own environment, so a warehouse given only to this process could not be theirs."""
    own = resources["results"].url
    if own and own != default_url():
        raise ValueError(f"a scaled-out run stores results where the workers do ({default_url()}), not in {own}; "
                         "set BENCHMARK_ASSETS_WAREHOUSE_URL (or BENCHMARK_ASSETS_POSTGRES_URL) for every process "
                         "instead")
    job = build_reconstructable_job("benchmark_assets.defs.runner", "stage_job", reconstructable_args=(
        str(study.path), study.spec_hash, tuple(key.path[-1] for key in stage.asset_keys), scale_out.trial_chunks()))
    with warnings.catch_warnings():
        if scale_out.executor() == "celery":
            import celery.exceptions  # the scale extra: only a celery run gets here

            # dagster-celery registers its task again for every step it submits; celery 5.7 warns each time.
            warnings.simplefilter("ignore", getattr(celery.exceptions, "DuplicateTaskNameWarning", Warning))
        with execute_job(job, instance=instance, run_config=run_config, tags=tags) as result:
            events = list(result.all_events)
            run = instance.get_run_by_id(result.run_id)
            stopped = run is not None and run.status in (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED)
            return _Finished(result.success, result.run_id, events, interrupted=stopped or any(
                event.is_engine_event and "termination signal" in (event.message or "") for event in events))


@dataclass(frozen=True)
class _Finished:
    """What a stage's run left once its result is closed: success, run id, events."""

    success: bool
    run_id: str
    all_events: list
    interrupted: bool = False  # Ctrl-C or Terminate reached the executor (it stops handing out steps)


def asset_pool(asset) -> str | None:
    """The concurrency pool an asset's steps run in (an op's own, or that of a fanned-out graph's ops)."""
    ops = [asset.node_def] if not hasattr(asset.node_def, "node_defs") else list(asset.node_def.iterate_op_defs())
    return next((op_def.pool for op_def in ops if getattr(op_def, "pool", None)), None)


def ensure_pool_limit(instance, pool: str, limit: int = 1) -> None:
    """Give an endpoint's pool its limit unless someone already set one (UI or `dagster instance
    concurrency set`): load trials on one server must never overlap, across runs too."""
    storage = instance.event_log_storage
    if storage.get_concurrency_info(pool).slot_count == 0:
        try:
            storage.set_concurrency_slots(pool, limit)
        except sqlalchemy.exc.IntegrityError:
            pass  # another process set it up at the same moment: the limit is there


def _interrupted(result) -> bool:
    """A run that failed because Ctrl-C (or a termination) interrupted a step, or its executor."""
    return getattr(result, "interrupted", False) or any(event.is_step_failure and event.step_failure_data.error is not None
               and event.step_failure_data.error.cls_name in _INTERRUPTS for event in result.all_events)


_INTERRUPTS = ("DagsterExecutionInterruptedError", "KeyboardInterrupt")


def _failure_message(result) -> str:
    """The user's own error from a failed run, not Dagster's wrapper around it: a step's, or,
    when the run failed before any step could (a worker that could not load the study), the run's."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            return error.message.strip()
    for event in result.all_events:
        if event.is_run_failure and getattr(event.event_specific_data, "error", None) is not None:
            return event.event_specific_data.error.message.strip()[:2000]
    return "see the run in the Dagster UI"


# -- the same, launched from the UI, a schedule or a sensor ----------------------------------------

class RunStudyConfig(Config):
    """What `benchmark-assets run` takes: empty lists mean the whole study."""

    subjects: list[str] = Field(default_factory=list, description="subjects to decide on (e.g. constants); "
                                "empty: every subject (the CLI's --constants)")
    tiers: list[str] = Field(default_factory=list, description="tiers of subjects, where the kind has them "
                             "(the CLI's --tier)")
    force: bool = Field(default=False, description="rerun trials that are already up to date (the CLI's --force)")


def build_run_job(study) -> JobDefinition:
    """``<study>__run_study``: one click in the UI (Launchpad -> Launch run) runs the study as
    `benchmark-assets run` does, in this job's run: its stages are runs of their own (tagged with
    this run's id), each stage starts when the one before it ends, and this run's log says which
    stage is running. A backfill of the same assets waits for the daemon's 30 s tick per level."""
    kind = kind_of(study)

    @op(name=f"{study.name}__stages",
        description=f"Runs {study.path.name} as `benchmark-assets run {study.name}` does: the trials it needs, "
                    "then the analysis, one run per stage.")
    def run_whole_study(context: OpExecutionContext, config: RunStudyConfig) -> None:
        reason = run_reason(context.run.tags)
        arguments = cli_command(study.name, config.subjects, config.tiers, config.force).removeprefix(
            "benchmark-assets run ")
        def terminated() -> bool:  # Terminate in the UI marks the run CANCELING, then interrupts it
            run = context.instance.get_run_by_id(context.run_id)
            return run is not None and run.status in (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED)

        try:
            outcome = run_study(str(study.path), tiers=config.tiers, constants=config.subjects, quiet=True,
                                instance=context.instance, force=config.force, launched_by="job",
                                reason=f"{reason} (as `benchmark-assets run {arguments}`)",
                                tags={PARENT_RUN_TAG: context.run_id}, log=context.log.info, should_stop=terminated)
        except StudyError as error:  # the study file as it is now, or a subject or tier it does not have
            raise Failure(description=str(error)) from None
        except StudyRunError as error:
            raise Failure(description=str(error), metadata={"trial_errors": MetadataValue.md(
                trial_errors(error.outcomes, markdown=True))}) from None
        except StudyInterrupted as stopped:
            raise Failure(description=str(stopped)) from None
        outcomes = outcome["outcomes"]
        context.log.info(kind.run_summary(outcome))
        if every_trial_failed(outcomes):
            raise Failure(description=f"every trial failed, so {study.name} decided nothing",
                          metadata={"trial_errors": MetadataValue.md(trial_errors(outcomes, markdown=True))})
        if outcomes["failed"]:
            context.log.warning(trial_errors(outcomes, markdown=True))

    @job(name=f"{study.name}__run_study", executor_def=in_process_executor,
         description=f"Runs the whole {kind.name} study {study.name} as `benchmark-assets run` does "
                     "(Launchpad -> Launch run; the config selects subjects, tiers, --force).",
         tags={"benchmark_assets/study": study.name})
    def run_study_job():
        run_whole_study()

    return run_study_job


def trial_errors(outcomes: dict, *, markdown: bool = False) -> str:
    """How many trials failed and their most common errors with counts (``trial_outcomes``): the
    console's lines, or Markdown for the UI; empty when none failed."""
    if not outcomes.get("failed"):
        return ""
    head = f"{outcomes['failed']} of {outcomes.get('rows', 0)} trials failed; most common errors:"
    errors = [f"- {count} x `{text}`" if markdown else f"  {count} x {text}" for text, count in outcomes["errors"]]
    return "\n".join([head, *([""] if markdown else []), *errors])


def every_trial_failed(outcomes: dict) -> bool:
    """Nothing could be decided: the run's trials all failed."""
    return bool(outcomes["rows"]) and outcomes["failed"] == outcomes["rows"]
