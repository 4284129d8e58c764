"""A whole study as Dagster runs, whatever its kind: the trials it still needs (one ranged run per
rectangle of partitions), then what follows them and the follow-ups its decisions ask for, one
in-process run per stage. The CLI runs studies with it, and so does the ``<study>__run_study`` job
(``run_job``): a backfill of the same assets waits one daemon tick (30 s) per level, this waits
for nothing."""
from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path

from dagster import AssetKey, DagsterInstance, materialize
from tqdm import tqdm

from benchmark_assets import inbox
from benchmark_assets.defs.assets import build_assets
from benchmark_assets.defs.compat import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from benchmark_assets.defs.hygiene import (
    ensure_pool_limit,
    pool_holders,
    reclaim_abandoned_runs,
    settle_finished_runs,
    storage_advice,
)
from benchmark_assets.defs.inbox_watch import event_mark, unstored_keys
from benchmark_assets.defs.partitions import register
from benchmark_assets.defs.resources import study_resources
from benchmark_assets.defs.scale_out.workers import asset_pool, on_workers
from benchmark_assets.defs.stages import Stage, plan_stages
from benchmark_assets.defs.tags import (
    LAUNCHED_BY_TAG,
    PARENT_RUN_TAG,
    REASON_TAG,
    STAGE_TAG,
    STUDY_RUN_TAG,
    STUDY_TAG,
    process_tags,
)
from benchmark_assets.graph import StudyGraph, trial_pairs, trials_by_point
from benchmark_assets.kinds.base import common_errors
from benchmark_assets.locks import database_lock, file_lock
from benchmark_assets.outcomes import RunOutcome, StageRun, TrialResults, cli_command
from benchmark_assets.processes import clean_up_after_dead_runners


class StudyInterrupted(Exception):
    """A run stopped by Ctrl-C (or a terminated Dagster run); ``stage``: the stage it stopped in."""

    def __init__(self, message: str = "interrupted", stage: Stage | None = None):
        super().__init__(message)
        self.stage = stage


class StudyRunError(RuntimeError):
    """A run that failed, with how its trials ended (``results``)."""

    def __init__(self, message: str, results: TrialResults):
        super().__init__(message)
        self.results = results


def trials_to_run(graph: StudyGraph, *, subjects=(), tiers=(), force: bool = False, resources: dict | None = None
                  ) -> dict[str, list[str]]:
    """Per selected point, the replicates still to run: all of them, less the trials the kind
    says are up to date (a comparison skips trials that succeeded with the arm's current
    setting, so adding seeds runs only the new ones); ``force`` reruns everything."""
    points = graph.points(subjects, tiers)
    done: set[tuple[str, str]] = set()
    if not force:
        warehouse = (resources or study_resources())["warehouse"].open()
        done = graph.completed_trials(warehouse.read(graph.trials_table))
    replicates = graph.keys(graph.replicate)
    return {point: [r for r in replicates if (point, r) not in done] for point in points}


def run_study(study_name: str, *, subjects=None, tiers=None, quiet: bool = False, instance=None, force: bool = False,
              warehouse_url: str = "", launched_by: str = "cli", reason: str = "", tags: dict | None = None,
              log: Callable[[str], None] | None = None, should_stop: Callable[[], bool] | None = None,
              trials: dict[str, list[str]] | None = None, steps: Collection[str] = ()) -> RunOutcome:
    """Materialise a study through Dagster, whatever its kind: the trials it needs (ranged runs
    over rectangles of partitions), then what follows them; one in-process run per stage.
    ``warehouse_url`` (default: $BENCHMARK_ASSETS_WAREHOUSE_URL or SQLite under $DAGSTER_HOME)
    configures the one warehouse resource that the IO manager, the ledger and this function share.
    Each stage's run is tagged ``launched_by`` with ``reason`` (default: the CLI command) and
    ``tags``; ``log`` hears of each stage as it starts and ends (the UI job's progress);
    ``should_stop`` is asked before each stage (the UI job: has its run been terminated?);
    ``trials`` (point -> replicates, registered as partitions if new) replaces the trials the
    study's own lists ask for (``benchmark-assets ingest``: those of its inbox; the study sensor's
    reruns); ``steps`` (nodes whose settings changed) rerun over every partition. ``subjects`` and
    ``tiers`` select what a kind that selects subjects decides on (the CLI's --constants, --tier)."""
    graph = StudyGraph.load(study_name)
    study = graph.study
    subjects, tiers = list(subjects or []), list(tiers or [])
    graph.points(subjects, tiers)  # a subject or tier the study lacks: refused before anything else
    home = Path(instance.root_directory if instance is not None else os.environ.get("DAGSTER_HOME") or ".dagster_home")
    locks = home / "locks"
    resources = study_resources(warehouse_url, terminal_bar=not quiet, parent_run_id=(tags or {}).get(PARENT_RUN_TAG, ""))
    # First use of a home creates its databases, and registering partition keys is a read then a
    # write: one process at a time, or a second one fails on "table runs already exists".
    with file_lock(locks / "instance.lock"):
        instance = instance or DagsterInstance.get()
        for line in reclaim_abandoned_runs(instance) + clean_up_after_dead_runners():
            (log or _stderr)(line)
        # Decisions of runs that ended while nobody was settling them (a CLI killed after its run).
        settle_finished_runs(instance, resources["ledger"].open())
        register(instance, graph)
        if trials:
            register(instance, graph, trials)
        for pool in graph.pools():
            ensure_pool_limit(instance, pool)
    # One run of a study at a time: a second waits, then runs only what the first left to do.
    waiting = f"waiting for another run of {study.name} ({{holder}}) to finish"
    with file_lock(locks / f"study_{study.name}.lock", say=log, waiting=waiting), \
            database_lock(resources["warehouse"].open().url, f"benchmark_assets:study:{study.name}",
                          say=log, waiting=waiting):
        run = _StudyRun(graph, instance, resources, subjects, tiers, quiet=quiet, log=log, should_stop=should_stop,
                        tags={**(tags or {}), LAUNCHED_BY_TAG: launched_by, STUDY_RUN_TAG: uuid.uuid4().hex[:12], STUDY_TAG: study.name,
                              REASON_TAG: (reason or cli_command(study.name, subjects, tiers, force))[:200]})
        wanted = trials if trials is not None else trials_to_run(graph, subjects=subjects, tiers=tiers, force=force,
                                                                 resources=resources)
        if advice := storage_advice(instance, sum(len(r) for r in wanted.values())):
            (log or _stderr)(advice)
        return run.go(wanted, steps)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class _StudyRun:
    """One run of a study, under its locks: the stages for the wanted trials, the follow-ups, the end."""

    def __init__(self, graph: StudyGraph, instance, resources: dict, subjects: list[str], tiers: list,
                 *, quiet: bool, log, should_stop, tags: dict):
        self.graph, self.instance, self.resources, self.quiet = graph, instance, resources, quiet
        self.log, self.should_stop, self.tags = log, should_stop, tags
        self.selected = graph.points(subjects, tiers)
        self.decided = graph.subjects(subjects, tiers)
        self.assets = build_assets(graph)

    def stages(self, wanted: dict[str, list[str]], nodes=None, steps: Collection[str] = ()) -> list[StageRun]:
        plan = plan_stages(self.graph, self.instance, wanted, self.decided, nodes=nodes, every_partition=steps,
                           stored=stored_partitions(self.graph, self.resources))
        return materialise_stages(self.graph, self.assets, plan,
                                  instance=self.instance, quiet=self.quiet, resources=self.resources, tags=self.tags,
                                  log=self.log, should_stop=self.should_stop)

    def go(self, wanted: dict[str, list[str]], steps: Collection[str] = ()) -> RunOutcome:
        graph, study = self.graph, self.graph.study
        kept = checkpointed_trials(graph, wanted, self.resources)  # finished by an interrupted run: not run again
        started = time.perf_counter()
        followed = 0
        try:
            timings = self.stages(wanted, steps=steps)
            rerun: set[str] = set()
            for followup in followups(graph, self.resources, log=self.log, quiet=self.quiet):
                register(self.instance, graph, followup.trials)
                timings += self.stages(followup.trials, nodes=followup.nodes)
                followed += sum(len(r) for r in followup.trials.values())
                rerun |= set(followup.nodes)
            if final := graph.downstream(rerun):  # what reads the follow-ups' results (a report), once at the end
                timings += self.stages({}, nodes=final)
        except (KeyboardInterrupt, StudyInterrupted) as stopped:
            raise self._interrupted(getattr(stopped, "stage", None), wanted) from None
        except RuntimeError as error:
            # The stage's error may be a consequence (no data to decide on): show what the trials said.
            raise StudyRunError(str(error), trial_results(graph, wanted, self.resources)) from None
        # What the decision rests on: every current trial of the selected points, this run's or earlier.
        current = {point: graph.keys(graph.replicate) for point in self.selected}
        ran = sum(len(replicates) for replicates in wanted.values()) - len(kept) + followed
        per = graph.kind.rows_per_trial(study)
        return RunOutcome(study=study, seconds=time.perf_counter() - started, stages=tuple(timings),
                          measured=ran * per, kept=len(kept) * per,
                          up_to_date=max(0, sum(len(r) for r in current.values()) - ran - len(kept)) * per,
                          points=len(self.selected), results=trial_results(graph, current, self.resources))

    def _interrupted(self, stage: Stage | None, wanted) -> StudyInterrupted:
        graph, name = self.graph, self.graph.name
        if stage is not None and AssetKey(graph.asset_path(graph.trial_node.name)) not in stage.asset_keys:
            # the trials stage had finished: its rows are stored, not in the checkpoint
            return StudyInterrupted(f"interrupted during {stage.label}: the trials are stored; run the study "
                                    f"again (`benchmark-assets run {name}` or its job) to finish")
        kept, total = len(checkpointed_trials(graph, wanted, self.resources)), sum(len(r) for r in wanted.values())
        return StudyInterrupted(f"interrupted: {kept} of the {total} trials this run wanted are finished and kept; "
                                f"`benchmark-assets run {name}` (or the study's job) runs the other {total - kept}")


def ingest_study(study_name: str, *, quiet: bool = False, instance=None, warehouse_url: str = "",
                 log: Callable[[str], None] | None = None) -> tuple[inbox.Scan, RunOutcome | None]:
    """Read the study's new and changed inbox files (``inbox.scan``), then store the trials they
    brought, and any an earlier look stored but no run has materialised yet, as the study's trial
    partitions, with everything that follows them. The run's outcome is None if nothing is new."""
    graph = StudyGraph.load(study_name)
    warehouse = study_resources(warehouse_url)["warehouse"].open()
    instance = instance or DagsterInstance.get()
    found = inbox.scan(graph, warehouse, say=log, mark=event_mark(instance))
    keys = list(dict.fromkeys(found.to_store + unstored_keys(instance, graph, warehouse)))
    if not keys:
        return found, None
    files = ", ".join(o.path for o in found.ingested) or "trials stored by an earlier look"
    outcome = run_study(str(graph.path), quiet=quiet, instance=instance, warehouse_url=warehouse_url,
                        reason=f"benchmark-assets ingest {graph.name}: {files}"[:200], log=log,
                        trials=trials_by_point(keys))
    return found, replace(outcome, ingested=len(keys))


def stored_partitions(graph: StudyGraph, resources: dict) -> dict[str, set[str]]:
    """Per node the trials read (a scenario catalog), the partition keys the warehouse holds rows
    of: a warehouse newer than the instance's records has its catalog built again."""
    warehouse, out = resources["warehouse"].open(), {}
    for name in graph.upstream_of_trials():
        columns = graph.partition_columns(graph.nodes[name])
        if len(columns) != 1:
            continue
        table = graph.table(name)
        out[name] = set(warehouse.read(table)[columns[0]].astype(str)) if warehouse.has_table(table) else set()
    return out


def followups(graph: StudyGraph, resources: dict, *, log, quiet: bool):
    """The follow-ups the kind's stored decisions ask for, one at a time (each sees the last one's
    results), each logged with its reason; at most ``graph.followup_limit``."""
    read = graph.reader(resources["warehouse"].open())
    say = log or (_stderr if not quiet else (lambda line: None))
    previous = None
    for _ in range(graph.followup_limit):
        followup = graph.followup(read)
        if followup is None:
            return
        if followup == previous:  # what it measured did not settle it: asking again would loop
            say(f"follow-up not settled by its own trials, not repeated: {followup.reason} (see the trials' errors)")
            return
        say(f"follow-up: {followup.reason}")
        previous = followup
        yield followup
    say(f"stopped after {graph.followup_limit} follow-ups; `benchmark-assets run {graph.name}` goes on from here")


def checkpointed_trials(graph: StudyGraph, wanted: dict[str, list[str]], resources: dict) -> set[tuple[str, str]]:
    """Wanted trials that an interrupted run finished and checkpointed, and that the kind counts
    as complete: the trials step takes them from the checkpoint instead of running them."""
    warehouse = resources["warehouse"].open()
    if not warehouse.has_table(graph.checkpoint_table):
        return set()
    done = graph.resumable_trials(warehouse.read(graph.checkpoint_table))
    return {(str(p), str(r)) for p, r in done} & trial_pairs(wanted)


def trial_results(graph: StudyGraph, wanted: dict[str, list[str]], resources: dict) -> TrialResults:
    """How the stored trials of ``wanted`` (point -> replicates) ended."""
    keys = trial_pairs(wanted)
    points = sorted({p for p, _ in keys})
    if not points:
        return TrialResults()
    point, replicate = graph.point.name, graph.replicate.name
    frame = resources["warehouse"].open().read(graph.trials_table, {point: points})
    if frame.empty:
        return TrialResults()
    frame = frame[[(str(p), str(r)) in keys for p, r in zip(frame[point], frame[replicate])]]
    return TrialResults(len(frame), int((frame["status"] != "ok").sum()), tuple(common_errors(frame)))


def materialise_stages(graph: StudyGraph, assets, stages: list[Stage], *, instance, quiet: bool, resources: dict,
                       tags: dict, log=None, should_stop=None) -> list[StageRun]:
    """One Dagster run per stage, with a progress bar (and a line to ``log`` per stage): in this
    process, but for a trials stage of a scaled-out deployment, whose steps go to workers
    (``scale_out.workers``); stops at the first failed run with the user's own error."""
    fanned_out = {asset.key for asset in assets if hasattr(asset.node_def, "node_defs")}
    quiet_logs = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    timings = []
    pools = {asset.key: pool for asset in assets if (pool := asset_pool(asset))}
    # A bar only on a terminal (disable=None): piped into a file or CI's log it is many lines of \r.
    bar = tqdm(stages, desc=graph.name, unit="stage", disable=True if quiet else None, file=sys.stderr)
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
            result = on_workers(graph, stage, instance=instance, resources=resources, tags=run_tags,
                                run_config=run_config)
        else:
            result = materialize(assets, instance=instance, resources=resources, selection=stage.asset_keys,
                                 tags=run_tags, run_config=run_config, raise_on_error=False)
        timings.append(StageRun(stage.label, time.perf_counter() - stage_started, result.run_id))
        if log:
            log(f"stage {number} of {len(stages)}: {stage.label} {'succeeded' if result.success else 'failed'} in "
                f"{timings[-1].seconds:.1f} s, run {result.run_id}")
        # Its decisions join the ledger only now that the run is known to have completed (those of
        # a failed run wait for a re-execution from the UI: settle_finished_runs).
        if result.success:
            resources["ledger"].open().settle(result.run_id)
        if not result.success and _interrupted(result):
            raise StudyInterrupted(stage=stage)
        if not result.success:
            raise RuntimeError(f"{stage.label} failed in run {result.run_id}: {_failure_message(result)}")
    return timings


_INTERRUPTS = ("DagsterExecutionInterruptedError", "KeyboardInterrupt")


def _interrupted(result) -> bool:
    """A run that failed because Ctrl-C (or a termination) interrupted a step, or its executor."""
    return getattr(result, "interrupted", False) or any(
        event.is_step_failure and event.step_failure_data.error is not None
        and event.step_failure_data.error.cls_name in _INTERRUPTS for event in result.all_events)


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


__all__ = ["StudyInterrupted", "StudyRunError", "ingest_study", "run_study", "trials_to_run"]
