"""The benchmark-assets command: the same Dagster materialisations as the UI, for scripts and CI."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

# Exit codes: 0 done; 1 a Dagster run failed (its own error is printed); 2 bad input (one line,
# nothing written); 3 every trial failed, so nothing was decided (the most common errors are printed);
# 130 interrupted (Ctrl-C): finished trials are kept, the next run runs the rest.
EXIT_ALL_TRIALS_FAILED = 3
EXIT_INTERRUPTED = 130

DEFAULT_DAGSTER_YAML = """\
telemetry:
  enabled: false
event_log_storage:
  module: benchmark_assets.defs.instance_storage
  class: PooledSqliteEventLogStorage
"""


def ensure_dagster_home() -> Path:
    """$DAGSTER_HOME, or ./.dagster_home; seeded with the project's dagster.yaml when it has none."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    config = home / "dagster.yaml"
    if not config.exists():
        project_yaml = Path("dagster.yaml")
        text = project_yaml.read_text() if project_yaml.exists() else DEFAULT_DAGSTER_YAML
        # Written whole and renamed into place: a second process starting at the same moment never
        # reads half a file.
        partial = home / f".dagster.yaml.{os.getpid()}"
        partial.write_text(text)
        os.replace(partial, config)
    return home


def trials_to_run(study, *, subjects=(), tiers=(), force: bool = False, resources: dict | None = None
                  ) -> dict[str, list[str]]:
    """Per selected point, the replicates still to run: all of them, less the trials the kind
    says are up to date (a comparison skips trials that succeeded with the arm's current
    setting, so adding seeds runs only the new ones); ``force`` reruns everything."""
    from benchmark_assets.defs.builder import trials_table
    from benchmark_assets.defs.resources import study_resources
    from benchmark_assets.kinds import kind_of

    kind = kind_of(study)
    points = kind.points(study, subjects, tiers)
    done: set[tuple[str, str]] = set()
    if not force:
        warehouse = (resources or study_resources())["warehouse"].warehouse.open()
        done = kind.completed_trials(study, warehouse.read(trials_table(study)))
    replicates = kind.replicate.keys(study)
    return {point: [r for r in replicates if (point, r) not in done] for point in points}


def run_study(study_name: str, *, tiers=None, constants=None, quiet: bool = False, instance=None, force: bool = False,
              warehouse_url: str = "") -> dict:
    """Materialise a study through Dagster, whatever its kind: the trials it needs (ranged runs
    over rectangles of partitions), then what follows them; one in-process run per stage.
    ``warehouse_url`` (default: $BENCHMARK_ASSETS_WAREHOUSE_URL or SQLite under $DAGSTER_HOME)
    configures the one warehouse resource that the IO manager, the ledger and this function share."""
    from dagster import DagsterInstance

    from benchmark_assets.defs.builder import (
        endpoint_pools,
        reclaim_abandoned_runs,
        register_study,
        settle_finished_runs,
    )
    from benchmark_assets.defs.resources import study_resources
    from benchmark_assets.kinds import kind_of
    from benchmark_assets.locks import file_lock
    from benchmark_assets.processes import clean_up_after_dead_runners
    from benchmark_assets.studies import load_study

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
            print(line, file=sys.stderr)
        # Decisions of runs that ended while nobody was settling them (a CLI killed after its run).
        settle_finished_runs(instance, study_resources(warehouse_url)["ledger"].open())
        register_study(instance, study)
        for pool in endpoint_pools(study):
            ensure_pool_limit(instance, pool)
    # One run of a study at a time: a second waits, then runs only what the first left to do.
    with file_lock(locks / f"study_{study.name}.lock",
                   waiting=f"waiting for another run of {study.name} ({{holder}}) to finish"):
        return _run_locked(study, kind, instance, subjects, tiers, selected, decided, quiet=quiet, force=force,
                           warehouse_url=warehouse_url)


def _run_locked(study, kind, instance, subjects, tiers, selected, decided, *, quiet, force, warehouse_url) -> dict:
    from dagster import AssetKey

    from benchmark_assets.defs.builder import build_assets, plan_stages
    from benchmark_assets.defs.resources import study_resources

    resources = study_resources(warehouse_url, terminal_bar=not quiet)
    wanted = trials_to_run(study, subjects=subjects, tiers=tiers, force=force, resources=resources)
    stages = plan_stages(study, instance, wanted, decided)
    kept = checkpointed_trials(study, wanted, resources)  # finished by an interrupted run: not run again
    started = time.perf_counter()
    try:
        reason = " ".join([f"benchmark-assets run {study.name}", *(f"--tier {t}" for t in tiers),
                           *([f"--constants {','.join(subjects)}"] if subjects else []), *(["--force"] if force else [])])
        timings = _materialise_stages(study.name, build_assets(study), stages, instance=instance, quiet=quiet,
                                      resources=resources, reason=reason)
    except (KeyboardInterrupt, StudyInterrupted) as stopped:
        stage = getattr(stopped, "stage", None)
        trials_done = stage is not None and AssetKey([study.name, kind.trial_node().name]) not in stage.asset_keys
        if trials_done:  # the trials stage had finished: its rows are stored, not in the checkpoint
            raise StudyInterrupted(f"interrupted during {stage.label}: the trials are stored; run "
                                   f"`benchmark-assets run {study.name}` again to finish") from None
        kept, total = len(checkpointed_trials(study, wanted, resources)), sum(len(r) for r in wanted.values())
        raise StudyInterrupted(f"interrupted: {kept} of the {total} trials this run wanted are finished and kept; "
                               f"`benchmark-assets run {study.name}` runs the other {total - kept}") from None
    except RuntimeError as error:
        # The stage's error may be a consequence (no data to decide on): show what the trials said.
        raise StudyRunError(str(error), trial_outcomes(study, wanted, resources)) from None
    # What the decision rests on: every current trial of the selected points, this run's or earlier.
    current = {point: kind.replicate.keys(study) for point in selected}
    ran = sum(len(replicates) for replicates in wanted.values()) - len(kept)
    return {"study": study, "seconds": time.perf_counter() - started, "stages": timings,
            "trials": ran * kind.rows_per_trial(study), "kept": len(kept) * kind.rows_per_trial(study),
            "sweep_points": len(selected), "outcomes": trial_outcomes(study, current, resources)}


def checkpointed_trials(study, wanted: dict[str, list[str]], resources: dict) -> set[tuple[str, str]]:
    """Wanted trials that an interrupted run finished and checkpointed, and that the kind counts
    as complete: the trials step takes them from the checkpoint instead of running them."""
    from benchmark_assets.defs.builder import checkpoint_table
    from benchmark_assets.kinds import kind_of

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
    from benchmark_assets.defs.builder import trials_table
    from benchmark_assets.kinds import kind_of
    from benchmark_assets.kinds.base import common_errors

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


def print_trial_errors(outcomes: dict) -> None:
    """The most common trial errors, with counts, on stderr."""
    if not outcomes.get("failed"):
        return
    print(f"{outcomes['failed']} of {outcomes['rows']} trials failed; most common errors:", file=sys.stderr)
    for text, count in outcomes["errors"]:
        print(f"  {count} x {text}", file=sys.stderr)


def _materialise_stages(label: str, assets, stages, *, instance, quiet: bool, resources: dict,
                        reason: str) -> list[tuple[str, float, str]]:
    """One in-process Dagster run per stage, with a progress bar; stops at the first failed run
    with the user's own error."""
    from dagster import materialize
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
    from tqdm import tqdm

    from benchmark_assets.defs.builder import LAUNCHED_BY_TAG, REASON_TAG, pool_holders, process_tags

    quiet_logs = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    timings = []
    pools = {asset.key: asset.op.pool for asset in assets if getattr(asset.op, "pool", None)}
    bar = tqdm(stages, desc=label, unit="stage", disable=quiet, file=sys.stderr)
    for stage in bar:
        bar.set_postfix_str(stage.label)
        for key in stage.asset_keys:  # never wait silently for a pool another run holds
            for line in pool_holders(instance, pools[key]) if key in pools else []:
                print(f"waiting: {line}", file=sys.stderr, flush=True)
        tags = {ASSET_PARTITION_RANGE_START_TAG: stage.start, ASSET_PARTITION_RANGE_END_TAG: stage.end} if stage.start else {}
        tags.update(process_tags())
        tags.update({LAUNCHED_BY_TAG: "cli", REASON_TAG: reason[:200]})
        stage_started = time.perf_counter()
        result = materialize(assets, instance=instance, resources=resources, selection=stage.asset_keys, tags=tags,
                             run_config={**quiet_logs, **(stage.run_config or {})}, raise_on_error=False)
        timings.append((stage.label, time.perf_counter() - stage_started, result.run_id))
        # Its decisions join the ledger only now that the run is known to have completed (those of
        # a failed run wait for a re-execution from the UI: settle_finished_runs).
        if result.success:
            resources["ledger"].open().settle(result.run_id)
        if not result.success and _interrupted(result):
            raise StudyInterrupted(stage=stage)
        if not result.success:
            raise RuntimeError(f"{stage.label} failed in run {result.run_id}: {_failure_message(result)}")
    return timings


def ensure_pool_limit(instance, pool: str, limit: int = 1) -> None:
    """Give an endpoint's pool its limit unless someone already set one (UI or `dagster instance
    concurrency set`): load trials on one server must never overlap, across runs too."""
    import sqlalchemy.exc

    storage = instance.event_log_storage
    if storage.get_concurrency_info(pool).slot_count == 0:
        try:
            storage.set_concurrency_slots(pool, limit)
        except sqlalchemy.exc.IntegrityError:
            pass  # another process set it up at the same moment: the limit is there


def _interrupted(result) -> bool:
    """A run that failed because Ctrl-C (or a termination) interrupted a step."""
    return any(event.is_step_failure and event.step_failure_data.error is not None
               and event.step_failure_data.error.cls_name in _INTERRUPTS for event in result.all_events)


_INTERRUPTS = ("DagsterExecutionInterruptedError", "KeyboardInterrupt")


class _NoInterruptTraces(logging.Filter):
    """Dagster logs an interrupted step as an error with its stack trace; after Ctrl-C the CLI says
    what was kept instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return "DagsterExecutionInterruptedError" not in text and "Execution was interrupted" not in text


def _failure_message(result) -> str:
    """The user's own error from a failed run, not Dagster's wrapper around it."""
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            return error.message.strip()
    return "see the run in the Dagster UI"


def cmd_run(args) -> int:
    from benchmark_assets.artifacts import artifacts_dir, latest_dir, safe_label
    from benchmark_assets.kinds import kind_of
    from benchmark_assets.studies import load_study

    tiers = list(args.tier) if args.tier else None
    constants = [c.strip() for c in args.constants.split(",") if c.strip()] if args.constants else None
    # Everything about the input is checked before DAGSTER_HOME or any database is created.
    checked = load_study(args.study)
    kind_of(checked).points(checked, constants or (), tiers or ())
    ensure_dagster_home()
    outcome = run_study(str(checked.path), tiers=tiers, constants=constants, quiet=args.quiet, force=args.force)
    study = outcome["study"]
    kind = kind_of(study)
    # This run's own folder (latest may already be another run's, e.g. one launched from the UI).
    own = [artifacts_dir(study.name) / safe_label(run_id) for _, _, run_id in outcome["stages"]]
    folder = next((f for f in reversed(own) if (f / "report.md").exists()), latest_dir(study.name))
    report = folder / "report.md"
    if report.exists():
        print(report.read_text())
    print(kind.run_summary(outcome))
    if outcome.get("kept"):
        print(f"Kept {outcome['kept']} trials an interrupted run had finished (not run again).")
    print(f"Artifacts: {latest_dir(study.name)}  ({kind.artifact_files})")
    print(f"  (this run's own folder: {folder}; latest points at the newest run's, earlier runs keep theirs)")
    print(f"Warehouse: {os.environ.get('BENCHMARK_ASSETS_WAREHOUSE_URL') or Path(os.environ['DAGSTER_HOME']) / 'benchmark.db'}")
    outcomes = outcome["outcomes"]
    print_trial_errors(outcomes)
    if outcomes["rows"] and outcomes["failed"] == outcomes["rows"]:
        print(f"error: every trial failed, so {study.name} decided nothing; fix the cause above and run it again",
              file=sys.stderr)
        return EXIT_ALL_TRIALS_FAILED
    return 0


def cmd_report(args) -> int:
    from benchmark_assets.artifacts import latest_dir
    from benchmark_assets.studies import load_study

    ensure_dagster_home()
    study = load_study(args.study)
    report = latest_dir(study.name) / "report.md"
    if not report.exists():
        print(f"No report for {study.name} yet: run `benchmark-assets run {study.name}` first.", file=sys.stderr)
        return 1
    print(report.read_text())
    return 0


def cmd_ledger(args) -> int:
    import pandas as pd

    from benchmark_assets.defs.resources import study_resources

    ensure_dagster_home()
    ledger = study_resources()["ledger"].open().read(subject=args.subject, study=args.study, kind=args.kind)
    if ledger.empty:
        print("The ledger is empty: no decisions recorded yet (or none match).", file=sys.stderr)
        return 1
    ledger = ledger.tail(args.limit)
    columns = ["decided_at", "study", "kind", "subject", "baseline", "proposal", "decision", "effect",
               "adjusted_ci_low", "adjusted_ci_high", "git_commit", "study_hash", "run_id"]
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 40):
        print(ledger[columns].to_string(index=False))
    return 0


def cmd_why(args) -> int:
    from benchmark_assets.defs.resources import study_resources
    from benchmark_assets.history import StudyVersions, history_markdown, subject_history
    from benchmark_assets.studies import load_study

    study = load_study(args.study).name
    ensure_dagster_home()
    ledger = study_resources()["ledger"].open()
    decided = ledger.read(study=study)
    history = subject_history(decided, StudyVersions(ledger.warehouse).texts(study), args.subject, limit=args.limit)
    if history.empty:
        known = sorted(set(decided["subject"])) if len(decided) else []
        hint = f"subjects with decisions: {', '.join(known)}" if known else f"run `benchmark-assets run {study}` first"
        print(f"No decisions on {args.subject!r} in {study} yet; {hint}.", file=sys.stderr)
        return 1
    print(f"Why {args.subject} in {study} has its value: every decision on it, newest first.\n")
    print(history_markdown(args.subject, history, run_link="{run_id}"))
    return 0


def _quiet_dagster_warnings() -> None:
    """Dagster's beta/preview notices are for developers of definitions, not for users of the CLI."""
    import warnings

    from dagster import BetaWarning, PreviewWarning

    for category in (BetaWarning, PreviewWarning):
        warnings.filterwarnings("ignore", category=category)
    if logging.getLoggerClass() is logging.Logger:  # Dagster's console logger is made from this class
        logging.setLoggerClass(_CliLogger)


class _CliLogger(logging.Logger):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.addFilter(_NoInterruptTraces())


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes are one line and exit code 2, like mistakes in a study file."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}. Fix: see {self.prog} --help\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="benchmark-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="materialise a study through Dagster and print its report")
    run.add_argument("study", help="study name (file in studies/) or path to a .yaml file")
    run.add_argument("--tier", action="append", type=int, help="only constants of this tier (repeatable)")
    run.add_argument("--constants", help="only these constants, comma separated")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--force", action="store_true", help="rerun every trial, also those a kind keeps as up to date")
    run.set_defaults(handler=cmd_run)
    report = commands.add_parser("report", help="print the latest report of a study")
    report.add_argument("study")
    report.set_defaults(handler=cmd_report)
    ledger = commands.add_parser("ledger", help="print the decision ledger with provenance")
    ledger.add_argument("--subject", "--constant", dest="subject",
                        help="only decisions about this subject (a constant, a sweep point, ...)")
    ledger.add_argument("--study")
    ledger.add_argument("--kind")
    ledger.add_argument("--limit", type=int, default=50)
    ledger.set_defaults(handler=cmd_ledger)
    why = commands.add_parser("why", help="every decision on one subject (a constant...), newest first, with what "
                                          "changed in the study between decisions")
    why.add_argument("study")
    why.add_argument("subject", help="a constant, the arms' parameters, a criterion such as best_throughput, ...")
    why.add_argument("--limit", type=int, default=20)
    why.set_defaults(handler=cmd_why)
    args = parser.parse_args(argv)
    _quiet_dagster_warnings()
    from benchmark_assets.studies import StudyError

    try:
        return args.handler(args)
    except StudyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (StudyInterrupted, KeyboardInterrupt) as error:
        print(f"\n{str(error) or 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        print_trial_errors(getattr(error, "outcomes", {}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
