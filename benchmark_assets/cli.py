"""The benchmark-assets command: the same Dagster materialisations as the UI, for scripts and CI."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

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
        if project_yaml.exists():
            shutil.copy(project_yaml, config)
        else:
            config.write_text(DEFAULT_DAGSTER_YAML)
    return home


def _contiguous_blocks(selected: list[str], order: list[str]) -> list[list[str]]:
    """Split ``selected`` into runs of neighbours in ``order``: a ranged run covers one block."""
    position = {key: i for i, key in enumerate(order)}
    blocks: list[list[str]] = []
    for key in sorted(selected, key=position.__getitem__):
        if blocks and position[key] == position[blocks[-1][-1]] + 1:
            blocks[-1].append(key)
        else:
            blocks.append([key])
    return blocks


def register_sweep_points(instance, study) -> list[str]:
    """Add the study's sweep points that the instance does not know yet; returns them."""
    from benchmark_assets.defs.study_assets import register_keys, study_partitions

    return register_keys(instance, study_partitions(study).sweep_points, [p.key for p in study.sweep_points()])


def run_study(study_name: str, *, tiers=None, constants=None, quiet: bool = False, instance=None, force: bool = False) -> dict:
    """Materialise a study's graph through Dagster: catalog, trials, aggregates, verdicts, summary."""
    from dagster import AssetKey, DagsterInstance, MultiPartitionKey

    from benchmark_assets.defs.study_assets import build_study_assets, study_partitions
    from benchmark_assets.studies import StudyError, load_study

    study = load_study(study_name)
    instance = instance or DagsterInstance.get()
    if study.kind == "comparison":
        return run_comparison(study, quiet=quiet, instance=instance, force=force)
    if study.kind == "load_sweep":
        return run_load_sweep(study, quiet=quiet, instance=instance)
    if constants:
        unknown = sorted(set(constants) - set(study.spec.constants))
        if unknown:
            raise StudyError(study.path, "--constants", f"unknown constants {unknown}",
                             f"choose from {sorted(study.spec.constants)}")
    assets = build_study_assets(study)
    parts = study_partitions(study)
    register_sweep_points(instance, study)
    order = list(instance.get_dynamic_partitions(parts.sweep_points.name))
    selected = [p.key for p in study.sweep_points(tiers=tiers, names=constants)]
    if not study.constant_sweeps(tiers=tiers, names=constants):
        raise StudyError(study.path, "--tier", f"no constants in tiers {tiers}", "pick a tier the study declares")
    seeds = study.seed_keys
    key = lambda name: AssetKey([study.name, name])  # noqa: E731
    stages = [("scenario catalog", [key("scenario_catalog")], seeds[0], seeds[-1], {})]
    for block in _contiguous_blocks(selected, order):
        stages.append(("trials", [key("trials")],
                       str(MultiPartitionKey({"sweep_point": block[0], "seed_id": seeds[0]})),
                       str(MultiPartitionKey({"sweep_point": block[-1], "seed_id": seeds[-1]})), {}))
    for block in _contiguous_blocks(selected, order):
        stages.append(("aggregates", [key("aggregates")], block[0], block[-1], {}))
    selection_config = {"constants": list(constants or []), "tiers": list(tiers or [])}
    stages.append(("verdicts and summary", [key("verdicts"), key("ratchet_summary")], None, None,
                   {"ops": {f"{study.name}__verdicts": {"config": selection_config}}}))
    started = time.perf_counter()
    timings = _materialise_stages(study.name, assets, stages, instance=instance, quiet=quiet)
    return {"study": study, "seconds": time.perf_counter() - started, "stages": timings,
            "trials": len(selected) * len(seeds) * study.spec.trials_per_scenario, "sweep_points": len(selected)}


def _materialise_stages(label: str, assets, stages, *, instance, quiet: bool) -> list[tuple[str, float, str]]:
    """One in-process Dagster run per stage (label, asset keys, range start, range end, run config),
    with a progress bar; stops at the first failed run with the user's own error."""
    from dagster import materialize
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
    from tqdm import tqdm

    from benchmark_assets.defs.io_manager import study_resources

    quiet_logs = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    os.environ["BENCHMARK_ASSETS_PROGRESS_BAR"] = "0" if quiet else "1"
    timings = []
    bar = tqdm(stages, desc=label, unit="stage", disable=quiet, file=sys.stderr)
    for name, selection, start, end, run_config in bar:
        bar.set_postfix_str(name)
        tags = {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end} if start else {}
        stage_started = time.perf_counter()
        result = materialize(assets, instance=instance, resources=study_resources(), selection=selection, tags=tags,
                             run_config={**quiet_logs, **run_config}, raise_on_error=False)
        timings.append((name, time.perf_counter() - stage_started, result.run_id))
        if not result.success:
            raise RuntimeError(f"{name} failed in run {result.run_id}: {_failure_message(result)}")
    return timings


def comparison_trials_to_run(study, *, force: bool = False) -> dict[str, list[str]]:
    """Seeds each arm still needs: not run yet, failed, or run with a different command or arm.
    Adding seeds to a study therefore runs only the new ones."""
    from dagster import AssetKey

    from benchmark_assets.defs.io_manager import table_name
    from benchmark_assets.studies.comparison import ARMS
    from benchmark_assets.warehouse import Warehouse

    done: set[tuple[str, str]] = set()
    if not force:
        trials = Warehouse().read(table_name(AssetKey([study.name, "trials"])))
        if len(trials):
            for row in trials.itertuples(index=False):
                if row.status == "ok" and row.arm_fingerprint == study.arm_fingerprint(row.arm):
                    done.add((row.arm, str(row.seed)))
    return {arm: [s for s in study.seed_keys if (arm, s) not in done] for arm in ARMS}


def run_comparison(study, *, quiet: bool = False, instance=None, force: bool = False) -> dict:
    """Materialise a comparison study: the trials it still needs (as ranged runs over arm x seed
    rectangles), then summaries, aggregates, comparison, variance analysis and report in one run."""
    from dagster import AssetKey, MultiPartitionKey

    from benchmark_assets.defs.comparison_assets import ANALYSIS_ASSETS, build_comparison_assets, seed_partitions
    from benchmark_assets.defs.study_assets import register_keys

    assets = build_comparison_assets(study)
    key = lambda name: AssetKey([study.name, name])  # noqa: E731
    register_keys(instance, seed_partitions(study), study.seed_keys)
    order = list(instance.get_dynamic_partitions(seed_partitions(study).name))
    needed = comparison_trials_to_run(study, force=force)
    stages = []
    arm_blocks = {arm: _contiguous_blocks(seeds, order) for arm, seeds in needed.items()}
    shared = arm_blocks["control"] == arm_blocks["candidate"]
    for arms in ([("control", "candidate")] if shared else [("control",), ("candidate",)]):
        for block in arm_blocks[arms[0]]:
            stages.append(("trials", [key("trials")], str(MultiPartitionKey({"arm": arms[0], "seed": block[0]})),
                           str(MultiPartitionKey({"arm": arms[-1], "seed": block[-1]})), {}))
    stages.append(("comparison and report", [key(name) for name in ANALYSIS_ASSETS], None, None, {}))
    started = time.perf_counter()
    timings = _materialise_stages(study.name, assets, stages, instance=instance, quiet=quiet)
    ran = sum(len(seeds) for seeds in needed.values())
    return {"study": study, "seconds": time.perf_counter() - started, "stages": timings, "trials": ran,
            "sweep_points": 2}


def run_load_sweep(study, *, quiet: bool = False, instance=None) -> dict:
    """Materialise a load sweep: every (point, trial) in ranged runs over contiguous points (one
    trial at a time on the endpoint, through its concurrency pool), their aggregates, the summary."""
    from dagster import AssetKey, MultiPartitionKey

    from benchmark_assets.defs.load_sweep_assets import build_load_sweep_assets, point_partitions, trial_partitions
    from benchmark_assets.defs.study_assets import register_keys

    assets = build_load_sweep_assets(study)
    key = lambda name: AssetKey([study.name, name])  # noqa: E731
    register_keys(instance, point_partitions(study), study.point_keys)
    register_keys(instance, trial_partitions(study), study.trial_keys)
    ensure_pool_limit(instance, study.endpoint_pool)
    order = list(instance.get_dynamic_partitions(point_partitions(study).name))
    blocks = _contiguous_blocks(study.point_keys, order)
    first, last = study.trial_keys[0], study.trial_keys[-1]
    stages = [("load trials", [key("trials")], str(MultiPartitionKey({"sweep_point": b[0], "trial": first})),
               str(MultiPartitionKey({"sweep_point": b[-1], "trial": last})), {}) for b in blocks]
    stages += [("aggregates", [key("aggregates")], b[0], b[-1], {}) for b in blocks]
    stages.append(("sweep summary", [key("sweep_summary")], None, None, {}))
    started = time.perf_counter()
    timings = _materialise_stages(study.name, assets, stages, instance=instance, quiet=quiet)
    return {"study": study, "seconds": time.perf_counter() - started, "stages": timings,
            "trials": len(study.points) * study.spec.trials, "sweep_points": len(study.points)}


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
    from benchmark_assets.artifacts import artifacts_dir

    ensure_dagster_home()
    tiers = [int(t) for t in args.tier] if args.tier else None
    constants = [c.strip() for c in args.constants.split(",") if c.strip()] if args.constants else None
    outcome = run_study(args.study, tiers=tiers, constants=constants, quiet=args.quiet, force=args.force)
    study = outcome["study"]
    folder = artifacts_dir(study.name)
    print((folder / "report.md").read_text())
    if study.kind == "load_sweep":
        print(f"Ran {outcome['trials']} load trials over {outcome['sweep_points']} sweep points in "
              f"{outcome['seconds']:.1f} s ({len(outcome['stages'])} Dagster runs).")
        print(f"Artifacts: {folder}  (report.md, sweep_aggregate.json/csv, per_value/, plots/pareto.png)")
    elif study.kind == "comparison":
        print(f"Ran {outcome['trials']} new trials (others were already up to date) in {outcome['seconds']:.1f} s "
              f"({len(outcome['stages'])} Dagster runs).")
        print(f"Artifacts: {folder}  (report.md, comparison.csv/json, aggregates.csv, summaries.csv, variance.csv, "
              "plots/comparison.png, plots/variance.png)")
    else:
        print(f"Ran {outcome['trials']} trials over {outcome['sweep_points']} sweep points in {outcome['seconds']:.1f} s "
              f"({len(outcome['stages'])} Dagster runs).")
        print(f"Artifacts: {folder}  (report.md, proposed.patch, verdicts.csv/json, aggregates.csv, sensitivity.csv, "
              "plots/)")
    print(f"Warehouse: {os.environ.get('BENCHMARK_ASSETS_WAREHOUSE_URL') or Path(os.environ['DAGSTER_HOME']) / 'benchmark.db'}")
    return 0


def cmd_report(args) -> int:
    from benchmark_assets.artifacts import artifacts_dir
    from benchmark_assets.studies import load_study

    ensure_dagster_home()
    study = load_study(args.study)
    report = artifacts_dir(study.name) / "report.md"
    if not report.exists():
        print(f"No report for {study.name} yet: run `benchmark-assets run {study.name}` first.", file=sys.stderr)
        return 1
    print(report.read_text())
    return 0


def cmd_ledger(args) -> int:
    import pandas as pd

    from benchmark_assets.defs.study_assets import LEDGER_TABLE
    from benchmark_assets.warehouse import Warehouse

    ensure_dagster_home()
    where = {}
    if args.constant:
        where["constant"] = [args.constant]
    if args.study:
        where["study"] = [args.study]
    ledger = Warehouse().read(LEDGER_TABLE, where)
    if ledger.empty:
        print("The ledger is empty: no verdicts recorded yet (or none match).", file=sys.stderr)
        return 1
    ledger = ledger.sort_values("decided_at").tail(args.limit)
    columns = ["decided_at", "study", "constant", "current", "proposed", "decision", "validation_delta",
               "corrected_ci_low", "git_commit", "study_hash", "run_id"]
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 40):
        print(ledger[columns].to_string(index=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmark-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="materialise a study through Dagster and print its report")
    run.add_argument("study", help="study name (file in studies/) or path to a .yaml file")
    run.add_argument("--tier", action="append", help="only constants of this tier (repeatable)")
    run.add_argument("--constants", help="only these constants, comma separated")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--force", action="store_true", help="comparison studies: rerun every trial, not only new ones")
    run.set_defaults(handler=cmd_run)
    report = commands.add_parser("report", help="print the latest ratchet report of a study")
    report.add_argument("study")
    report.set_defaults(handler=cmd_report)
    ledger = commands.add_parser("ledger", help="print the verdict ledger with provenance")
    ledger.add_argument("--constant")
    ledger.add_argument("--study")
    ledger.add_argument("--limit", type=int, default=50)
    ledger.set_defaults(handler=cmd_ledger)
    args = parser.parse_args(argv)
    from benchmark_assets.studies import StudyError

    try:
        return args.handler(args)
    except StudyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
