"""Wall time of the full shipped memory ratchet: compute alone, through Dagster, and the
bookkeeping Dagster adds per partition (with our pooled event log and, optionally, the stock one).

    .venv/bin/python benchmarks/ratchet.py [--study memory_ratchet] [--compare-stock] [--events]

--events also times serialising the trials run's events as the event log does (Dagster's
serialize_value), as stored and without the run totals every partition carries.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STOCK_YAML = "telemetry:\n  enabled: false\n"


def target_per_point(study_name: str, repeats: int = 20) -> float:
    """Milliseconds for one sweep point over all the study's scenarios (the vectorised target)."""
    from benchmark_assets.kinds.ratchet.trials import trial_seed
    from benchmark_assets.scenarios import build_scenario
    from benchmark_assets.studies import load_study

    study = load_study(study_name)
    target = study.target
    scenarios = [build_scenario(s) for s in study.scenario_seeds]
    batch = target.prepare_batch(scenarios, [trial_seed(s.seed_id, 0) for s in study.scenario_seeds])
    params = study.current_params
    target.evaluate_prepared(batch, params)  # warm up
    started = time.perf_counter()
    for _ in range(repeats):
        target.evaluate_prepared(batch, params)
    return 1000 * (time.perf_counter() - started) / repeats


def compute_alone(study_name: str) -> tuple[float, int]:
    from benchmark_assets.kinds.ratchet.analysis import aggregate_trials, decide_ratchet
    from benchmark_assets.kinds.ratchet.trials import run_trials
    from benchmark_assets.studies import load_study

    study = load_study(study_name)
    started = time.perf_counter()
    points = study.sweep_points()
    trials = run_trials(study, points, study.scenario_seeds)
    aggregate_trials(study, trials, [p.key for p in points])
    decide_ratchet(trials, study.constant_sweeps(), study.rules, metric=study.spec.metric, maximize=study.maximize,
                   train_ids=study.split[0], validation_ids=study.split[1])
    return time.perf_counter() - started, len(trials)


EVENTS = (
    "import time\n"
    "from dagster import DagsterEventType\n"
    "from dagster_shared.serdes import serialize_value\n"
    "with DagsterInstance.get() as instance:\n"
    "    logs = instance.all_logs([s.run_id for s in outcome.stages if s.label == 'trials'][0])\n"
    "def timed(entries):\n"
    "    started = time.perf_counter(); texts = [serialize_value(e) for e in entries]\n"
    "    return time.perf_counter() - started, sum(map(len, texts)) / len(texts)\n"
    "def without_run_totals(e):\n"
    "    d = e.dagster_event\n"
    "    if not d or d.event_type != DagsterEventType.ASSET_MATERIALIZATION:\n"
    "        return e\n"
    "    m = d.event_specific_data.materialization\n"
    "    m = m._replace(metadata={k: v for k, v in m.metadata.items() if not k.startswith('run_')})\n"
    "    return e._replace(dagster_event=d._replace(event_specific_data=d.event_specific_data._replace(materialization=m)))\n"
    "extra = {'events': len(logs), 'serialise': timed(logs), 'serialise_without_run_totals': "
    "timed([without_run_totals(e) for e in logs])}\n"
)


def through_dagster(study_name: str, dagster_yaml: str | None, *, events: bool = False) -> dict:
    """One full `run_study` in a fresh DAGSTER_HOME, in a subprocess so nothing is shared."""
    import json
    import subprocess

    home = Path(tempfile.mkdtemp(prefix="bench_home_"))
    if dagster_yaml is None:
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text(dagster_yaml)
    code = (
        "import json, time\n"
        "from benchmark_assets.defs.runner import run_study\n"
        "from dagster import DagsterInstance\n"
        "with DagsterInstance.get() as instance:\n"
        f"    outcome = run_study({study_name!r}, quiet=True, instance=instance)\n"
        "extra = {}\n"
        + (EVENTS if events else "")
        + "print(json.dumps({'seconds': outcome.seconds, 'trials': outcome.measured,"
        " 'stages': [(s.label, s.seconds) for s in outcome.stages],"
        " 'storage': type(instance.event_log_storage).__name__, **extra}))\n"
    )
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    shutil.rmtree(home, ignore_errors=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="memory_ratchet")
    parser.add_argument("--compare-stock", action="store_true", help="also run with Dagster's stock SQLite event log")
    parser.add_argument("--events", action="store_true", help="also time serialising the trials run's events")
    args = parser.parse_args()
    os.chdir(ROOT)

    print(f"target: one sweep point over all scenarios: {target_per_point(args.study):.1f} ms")
    compute, n_trials = compute_alone(args.study)
    print(f"compute alone (trials + aggregates + verdicts, no Dagster): {compute:.2f} s for {n_trials} trials")
    variants = [("pooled event log (shipped dagster.yaml)", None)]
    if args.compare_stock:
        variants.append(("stock SQLite event log", STOCK_YAML))
    for label, yaml_text in variants:
        outcome = through_dagster(args.study, yaml_text, events=args.events)
        stage_text = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in outcome["stages"])
        from benchmark_assets.studies import load_study

        study = load_study(args.study)
        partitions = outcome["trials"] // study.spec.trials_per_scenario + len(study.seed_keys) + len(study.sweep_points())
        overhead = outcome["seconds"] - compute
        print(f"through Dagster, {label} [{outcome['storage']}]: {outcome['seconds']:.1f} s ({stage_text})")
        print(f"  bookkeeping: {overhead:.1f} s over {partitions} partitions = {1000 * overhead / partitions:.1f} ms/partition")
        if "events" in outcome:
            (full, size), (slim, slim_size) = outcome["serialise"], outcome["serialise_without_run_totals"]
            print(f"  serialising the trials run's {outcome['events']} events: {full:.2f} s "
                  f"({1000 * full / outcome['events']:.2f} ms each, {size:.0f} characters on average); "
                  f"without the run totals on each partition: {slim:.2f} s ({slim_size:.0f} characters)")


if __name__ == "__main__":
    main()
