"""The benchmark-assets command: the same Dagster materialisations as the UI, for scripts and CI."""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import sys
from pathlib import Path

# Exit codes: 0 done; 1 a Dagster run failed (its own error is printed); 2 bad input (one line,
# nothing written); 3 every trial failed, so nothing was decided (the most common errors are printed);
# 4 the run completed but `--fail-on` found verdicts it fails on (an acceptance suite's criteria not
# met, or not settled); 5 `regressions` found a confirmed regression in force; 6 `ingest` rejected
# a file (the others are ingested); 130 interrupted (Ctrl-C): finished trials are kept, the next
# run runs the rest.
EXIT_ALL_TRIALS_FAILED = 3
EXIT_GATE_FAILED = 4
EXIT_REGRESSION = 5
EXIT_REJECTED = 6
EXIT_INTERRUPTED = 130

DEFAULT_DAGSTER_YAML = """\
telemetry:
  enabled: false
storage:
  custom:
    module: benchmark_assets.defs.instance_storage
    class: StudyInstanceStorage
retention:
  schedule:
    purge_after_days: 90
  sensor:
    purge_after_days: {skipped: 7, failure: 30, success: 30}
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


def warehouse_label() -> str:
    """Where results are stored, as the user can find them: the SQLite file, or the URL without its password."""
    import sqlalchemy as sa

    from benchmark_assets.warehouse import default_url

    url = sa.make_url(default_url())
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


def print_trial_errors(results) -> None:
    """The most common trial errors, with counts, on stderr."""
    if text := results.text():
        print(text, file=sys.stderr)


class _NoInterruptTraces(logging.Filter):
    """Dagster logs an interrupted step as an error with its stack trace; after Ctrl-C the CLI says
    what was kept instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return "DagsterExecutionInterruptedError" not in text and "Execution was interrupted" not in text


def program() -> str:
    """This command as a person would type it again: ``benchmark-assets`` when that is the one on
    PATH, else the path it was started by, as typed (``.venv/bin/benchmark-assets`` in a clone)."""
    invoked = sys.argv[0]
    on_path = shutil.which("benchmark-assets")
    if Path(invoked).name != "benchmark-assets" or (on_path and os.path.samefile(on_path, invoked)):
        return "benchmark-assets"
    return invoked


def an(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def cmd_new(args) -> int:
    from benchmark_assets.new_study import write_new_study
    from benchmark_assets.study_file import studies_dir

    path = write_new_study(args.kind, args.name, studies_dir(), args.target)
    try:
        shown = path.relative_to(Path.cwd())
    except ValueError:
        shown = path
    if args.target:
        print(f"Wrote {shown}, {an(args.kind)} study of {args.target}. Set each constant's current value and the "
              "values to try there, then check and run it:")
    else:
        print(f"Wrote {shown}, {an(args.kind)} study that runs as written. Check it, run it, then make it yours:")
    print(f"  {program()} check {args.name}\n  {program()} run {args.name}")
    return 0


def checked_run(args):
    """A run's study and options, checked as far as they can be without running anything: the
    study (``StudyGraph.load``), ``--tier``/``--constants`` against it, ``--fail-on`` against its
    verdicts. Returns (graph, constants, tiers); raises ``StudyError`` with the field and the fix."""
    from benchmark_assets.graph import StudyGraph
    from benchmark_assets.studies import StudyError

    tiers = list(args.tier) if args.tier else None
    constants = [c.strip() for c in args.constants.split(",") if c.strip()] if args.constants else None
    graph = StudyGraph.load(args.study)
    graph.points(constants or (), tiers or ())
    if args.fail_on and args.fail_on not in graph.fail_on:
        choices, study = graph.fail_on, graph.study
        raise StudyError(study.path, "--fail-on", f"a {study.kind} study has "
                         + (f"no verdict {args.fail_on!r} to gate on" if choices else "no verdicts to gate on"),
                         f"use --fail-on {' or '.join(choices)}" if choices else "drop --fail-on")
    return graph, constants, tiers


def cmd_check(args) -> int:
    """Load a study as a run would, with every check that needs no user code run (its target's
    module and function, a command's program, its extras) and the run's options, and say what a
    run would do."""
    from benchmark_assets.outcomes import cli_command

    graph, constants, tiers = checked_run(args)
    study, kind = graph.study, graph.kind
    points, replicates = graph.points(constants or (), tiers or ()), graph.keys(graph.replicate)
    needs = sorted(kind.extras(study.spec))
    print(f"{study.path}: a valid {study.kind} study ({study.name}).")
    print(f"  {len(points)} sweep points x {len(replicates)} {graph.replicate.name}s = "
          f"{len(points) * len(replicates)} trial partitions; decided by: {', '.join(graph.nodes)}")
    if needs:
        print(f"  needs the extras: {', '.join(needs)} (installed)")
    named = study.name if Path(args.study).stem == args.study else shlex.quote(args.study)  # a name, or its path
    print(f"  run it: {cli_command(named, constants or (), tiers or (), args.force, args.fail_on, program())}")
    return 0


def cmd_run(args) -> int:
    from benchmark_assets.artifacts import artifacts_dir, latest_dir, safe_label
    from benchmark_assets.defs.runner import run_study

    # Everything about the input is checked before DAGSTER_HOME or any database is created.
    graph, constants, tiers = checked_run(args)
    checked, kind = graph.study, graph.kind
    ensure_dagster_home()
    outcome = run_study(str(checked.path), subjects=constants, tiers=tiers, quiet=args.quiet, force=args.force)
    study = outcome.study
    # This run's own folder (latest may already be another run's, e.g. one launched from the UI).
    own = [artifacts_dir(study.name) / safe_label(stage.run_id) for stage in outcome.stages]
    folder = next((f for f in reversed(own) if (f / "report.md").exists()), latest_dir(study.name))
    report = folder / "report.md"
    if report.exists():
        print(report.read_text())
    print(kind.run_summary(outcome))
    decided = headline_of(graph)
    if decided:
        print(f"Decided: {decided}")
    if outcome.kept:
        print(f"Kept {outcome.kept} trials an interrupted run had finished (not run again).")
    print(f"Artifacts: {latest_dir(study.name)}  ({kind.artifact_files})")
    print(f"  (this run's own folder: {folder}; latest points at the newest run's, earlier runs keep theirs)")
    print(f"Warehouse: {warehouse_label()}")
    print_trial_errors(outcome.results)
    if outcome.results.all_failed:
        print(f"error: every trial failed, so {study.name} decided nothing; fix the cause above and run it again",
              file=sys.stderr)
        return EXIT_ALL_TRIALS_FAILED
    from benchmark_assets.defs.resources import study_resources

    read = graph.reader(study_resources()["warehouse"].open())
    nothing = kind.decided_nothing(study, read)
    if nothing:
        print(f"error: {study.name} decided nothing: {nothing}", file=sys.stderr)
        return EXIT_ALL_TRIALS_FAILED
    if args.fail_on:
        failing = graph.gate(read, args.fail_on)
        if failing:
            print(f"error: --fail-on {args.fail_on}: {failing}", file=sys.stderr)
            return EXIT_GATE_FAILED
        print(f"--fail-on {args.fail_on}: passed")
    return 0


UI_WORKSPACE = """load_from:
  - python_module:
      module_name: benchmark_assets.definitions
      working_directory: {folder}
"""


def cmd_ui(args) -> int:
    """`dagster dev` with its daemon for the studies here, on ``--host``/``--port``: the instance
    in $DAGSTER_HOME (./.dagster_home), the code reload told where the webserver is, and started
    from the home folder so Dagster does not warn about the project's dagster.yaml."""
    import signal
    import subprocess

    from benchmark_assets.artifact_server import serve_artifacts
    from benchmark_assets.artifacts import ARTIFACTS_URL_ENV, artifacts_root
    from benchmark_assets.defs.code_reload import WEBSERVER_ENV
    from benchmark_assets.processes import descendants, end_processes
    from benchmark_assets.study_file import studies_dir

    home = ensure_dagster_home()
    env = {**os.environ, "BENCHMARK_ASSETS_STUDIES": str(studies_dir()), "PYTHONPATH": os.pathsep.join(
        filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH", "")]))}
    env.setdefault(WEBSERVER_ENV, f"http://{args.host}:{args.port}")
    # `dagster dev` is what starts the webserver and the daemon together; its successor `dg dev`
    # needs a `dg` project, so the notice that it is superseded says nothing a user can act on.
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS", ""),
                                                   "ignore:Function `dev_command` is superseded"]))
    seen = home / ".nux" / "nux.yaml"  # Dagster's "join the community" notice would cover the first page
    if not seen.exists():
        seen.parent.mkdir(exist_ok=True)
        seen.write_text("seen: 1\n")
    workspace = home / "workspace.yaml"
    workspace.write_text(UI_WORKSPACE.format(folder=json.dumps(str(Path.cwd()))))
    print(f"Dagster UI: http://{args.host}:{args.port}  (studies: {env['BENCHMARK_ASSETS_STUDIES']}; instance: "
          f"{home}; Ctrl-C stops it)", flush=True)
    server = None
    if not env.get(ARTIFACTS_URL_ENV):  # plots and files open from the UI's links, served from here
        port = args.artifacts_port or args.port + 1
        server = serve_artifacts(artifacts_root(), args.host, port)
        env[ARTIFACTS_URL_ENV] = f"http://{args.host}:{port}"
        print(f"Artifacts: {env[ARTIFACTS_URL_ENV]}  ({artifacts_root()})", flush=True)
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", args.host, "-p", str(args.port)]
    process = subprocess.Popen(command, cwd=home, env=env)

    def stop(_signal, _frame):  # `kill` (SIGTERM) stops it as Ctrl-C does, services and all
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    services: list[int] = []
    try:
        return process.wait()
    except KeyboardInterrupt:  # a terminal's Ctrl-C reaches dagster dev too: let it stop its services
        services = descendants(process.pid)  # now, while they are still its children
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # the interrupt (or kill) reached this process alone: pass it on
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        return 130
    finally:
        if server is not None:
            server.shutdown()
        # On a busy machine dagster dev may be killed before its webserver and daemon have ended;
        # they would live on, holding the port. End whichever of them is left.
        end_processes(services)


def headline_of(graph) -> str:
    """What the study's latest materialisations decided (``study_headline``), from the instance."""
    from dagster import DagsterInstance

    from benchmark_assets.defs.metadata import study_headline

    with DagsterInstance.get() as instance:
        return study_headline(instance, graph)


def cmd_report(args) -> int:
    from benchmark_assets.artifacts import latest_dir
    from benchmark_assets.studies import load_study

    ensure_dagster_home()
    study = load_study(args.study)
    report = latest_dir(study.name) / "report.md"
    if not report.exists():
        print(f"No report for {study.name} yet: run `{program()} run {study.name}` first.", file=sys.stderr)
        return 2
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
        hint = f"subjects with decisions: {', '.join(known)}" if known else f"run `{program()} run {study}` first"
        print(f"No decisions on {args.subject!r} in {study} yet; {hint}.", file=sys.stderr)
        return 2  # nothing to show for this input, as for `report` before a run
    print(f"Why {args.subject} in {study} has its value: every decision on it, newest first.\n")
    print(history_markdown(args.subject, history, run_link="{run_id}"))
    return 0


def cmd_regressions(args) -> int:
    """Regressions across commits in the levels a study's ledger tracks; exit 5 while a confirmed
    one is in force (for CI: fail a merge that made things worse)."""
    from benchmark_assets.defs.regression_watch import analyse
    from benchmark_assets.defs.resources import study_resources
    from benchmark_assets.graph import StudyGraph
    from benchmark_assets.regressions import regressions_markdown
    from benchmark_assets.studies import load_study

    study = load_study(args.study)
    ensure_dagster_home()
    ledger = study_resources()["ledger"].open().read(study=study.name)
    found, changes, series = analyse(StudyGraph.of(study), ledger, threshold=args.threshold)
    print(regressions_markdown(study.name, found, changes, series, threshold=args.threshold))
    return EXIT_REGRESSION if found["confirmed"].any() else 0


def cmd_prune(args) -> int:
    """What the retention policy lets go: listed with --dry-run, removed otherwise."""
    from dagster import DagsterInstance

    from benchmark_assets.defs.retention import DEFAULT_KEEP_RUNS, folder_size, keep_runs_setting, prune

    if args.keep is not None and args.keep < 1:
        print("error: --keep: keep at least 1 run per study", file=sys.stderr)
        return 2
    try:
        keep = args.keep or keep_runs_setting() or DEFAULT_KEEP_RUNS
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    home = ensure_dagster_home()
    before = folder_size(home)
    with DagsterInstance.get() as instance:
        prune(instance, keep, dry_run=args.dry_run)
    if not args.dry_run:
        print(f"{home}: {before / 2**20:.1f} MB before, {folder_size(home) / 2**20:.1f} MB after")
    return 0


def cmd_ingest(args) -> int:
    """Result files in the study's inbox become its trials (what the inbox sensor does, for scripts)."""
    from benchmark_assets.artifacts import latest_dir
    from benchmark_assets.defs.runner import ingest_study
    from benchmark_assets.graph import StudyGraph
    from benchmark_assets.inbox import inbox_folder
    from benchmark_assets.studies import StudyError

    graph = StudyGraph.load(args.study)
    study, kind = graph.study, graph.kind
    if not graph.inbox_files:
        raise StudyError(study.path, "kind", f"a {study.kind} study ingests no result files",
                         "ingest into a load_sweep (aiperf), acceptance (pytest-benchmark) or comparison (CSV) study")
    ensure_dagster_home()
    found, outcome = ingest_study(str(study.path), quiet=args.quiet)
    if not found.folder.is_dir():
        print(f"{inbox_folder(study)} does not exist yet; put {graph.inbox_help} there")
    for o in found.outcomes:
        print(o.line(), file=sys.stderr if o.status != "ingested" else sys.stdout)
    print(found.summary())
    from benchmark_assets.defs.resources import study_resources
    from benchmark_assets.inbox import still_rejected

    earlier = [o for o in still_rejected(study_resources()["warehouse"].open(), study)
               if o.path not in {seen.path for seen in found.outcomes}]
    for o in earlier:  # not read again until it or the study changes, but still not ingested
        print(f"{o.path}: still {o.status}: {o.reason}", file=sys.stderr)
    if outcome is not None:
        print(f"Stored {outcome.ingested} ingested trials and updated what follows them in {outcome.seconds:.1f} s "
              f"({len(outcome.stages)} Dagster runs).")
        print(f"Artifacts: {latest_dir(study.name)}  ({kind.artifact_files})")
        print(f"Warehouse: {warehouse_label()}")
    return EXIT_REJECTED if found.rejected or earlier else 0


def cmd_worker(args) -> int:
    """A celery worker of this deployment: takes trials steps from the broker that
    $BENCHMARK_ASSETS_CELERY_BROKER names, and runs them against the same instance and warehouse."""
    from benchmark_assets.defs import scale_out

    if not scale_out.broker():
        print(f"error: ${scale_out.BROKER_ENV} is not set; set it to the broker the runs use (e.g. "
              "redis://127.0.0.1:6379/0 or pyamqp://guest@127.0.0.1//) for this worker and for what launches runs",
              file=sys.stderr)
        return 2
    ensure_dagster_home()
    # One process per worker by default (the solo pool): a trials step is CPU-bound, so a machine
    # runs as many workers (or --concurrency) as it has cores.
    pool = (["--pool", "solo"] if args.concurrency == 1
            else ["--pool", "prefork", "--concurrency", str(args.concurrency)])
    command = [sys.executable, "-m", "celery", "-A", "benchmark_assets.defs.scale_out.celery_app", "worker", "-Q", "dagster",
               "--prefetch-multiplier", "1", "--loglevel", args.loglevel, *pool,
               *(["--hostname", args.name] if args.name else [])]
    from benchmark_assets.processes import limit_blas_threads

    limit_blas_threads("1")  # a worker per core: one BLAS thread each, unless set
    sys.stdout.flush()
    os.execv(sys.executable, command)  # the worker replaces this process: signals reach it directly
    return 0  # not reached


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


def run_options(parser) -> None:
    """What `run` takes; `check` takes the same and checks them."""
    parser.add_argument("study", help="study name (file in studies/) or path to a .yaml file")
    parser.add_argument("--tier", action="append", type=int, help="only constants of this tier (repeatable)")
    parser.add_argument("--constants", help="only these constants, comma separated")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--force", action="store_true", help="rerun every trial, also those a kind keeps as up to date")
    parser.add_argument("--fail-on", choices=["not_met", "inconclusive"],
                        help="acceptance suites: exit 4 if a criterion is not met (not_met), or not met or not yet "
                             "settled (inconclusive: also a criterion whose side crashed in every repeat); the report "
                             "is printed either way")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="benchmark-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="materialise a study through Dagster and print its report")
    run_options(run)
    run.set_defaults(handler=cmd_run)
    new = commands.add_parser("new", help="write a commented study of a kind that runs as written, to edit into "
                                          "your own")
    new.add_argument("kind", help="ratchet, comparison, load_sweep, acceptance or estimator_benchmark")
    new.add_argument("name", help="the study's name: studies/<name>.yaml")
    new.add_argument("--target", help="ratchet: your module:function instead of the built-in memory target")
    new.set_defaults(handler=cmd_new)
    check = commands.add_parser("check", help="validate a study, what can be checked of its target and run's "
                                              "options, running nothing")
    run_options(check)
    check.set_defaults(handler=cmd_check)
    ui = commands.add_parser("ui", help="start the Dagster UI (dagster dev, with its daemon) for the studies here")
    ui.add_argument("--port", type=int, default=3000, help="the webserver's port (default 3000)")
    ui.add_argument("--host", default="127.0.0.1", help="the address it listens on (default 127.0.0.1)")
    ui.add_argument("--artifacts-port", type=int, default=0,
                    help="the port of the artifacts server the UI's plot and file links open (default: --port + 1; "
                         "not started when $BENCHMARK_ASSETS_ARTIFACTS_URL names another)")
    ui.set_defaults(handler=cmd_ui)
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
    regressions = commands.add_parser("regressions", help="regressions across commits in the levels a study's "
                                                          "ledger tracks (exit 5 while a confirmed one is in force)")
    regressions.add_argument("study")
    regressions.add_argument("--threshold", type=float, default=0.05,
                             help="only steps larger than this share of the earlier level count (default 0.05, "
                                  "asv's)")
    regressions.set_defaults(handler=cmd_regressions)
    ingest = commands.add_parser("ingest", help="store the result files in a study's inbox folder as its trials "
                                                "(aiperf exports, pytest-benchmark JSON, curve CSVs), each once; "
                                                "exit 6 while a file in it is rejected")
    ingest.add_argument("study")
    ingest.add_argument("--quiet", action="store_true", help="no progress bars")
    ingest.set_defaults(handler=cmd_ingest)
    prune = commands.add_parser("prune", help="remove artifact folders, Dagster runs and stored states the retention "
                                              "policy lets go (--dry-run lists them)")
    prune.add_argument("--keep", type=int, help="runs to keep per study (default: $BENCHMARK_ASSETS_KEEP_RUNS, or 20); "
                                                "cited and still-current runs are kept whatever their age")
    prune.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    prune.set_defaults(handler=cmd_prune)
    worker = commands.add_parser("worker", help="run a celery worker that executes scaled-out trials steps "
                                                "($BENCHMARK_ASSETS_CELERY_BROKER)")
    worker.add_argument("--concurrency", type=int, default=1, help="steps at once (default 1: one process)")
    worker.add_argument("--name", help="worker name, e.g. w1@%%h (default: celery's)")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(handler=cmd_worker)
    args = parser.parse_args(argv)
    _quiet_dagster_warnings()
    from benchmark_assets.defs.runner import StudyInterrupted
    from benchmark_assets.extras import MissingExtraError
    from benchmark_assets.studies import StudyError

    try:
        return args.handler(args)
    except (StudyError, MissingExtraError) as error:  # a missing extra: one line that names it, as for a study
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (StudyInterrupted, KeyboardInterrupt) as error:
        print(f"\n{str(error) or 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        if (results := getattr(error, "results", None)) is not None:
            print_trial_errors(results)
        return 1


if __name__ == "__main__":
    sys.exit(main())
