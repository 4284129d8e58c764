"""Throughput of one CPU-bound sweep on 1 and on 2 celery workers: real worker processes
(`benchmark-assets worker`) on this machine, a Redis broker on 127.0.0.1, the instance and the
warehouse in SQLite (or PostgreSQL with --postgres). Prints trials per second and the ratio.

    .venv/bin/python benchmarks/scale_out.py [--points 10] [--scenarios 30] [--repeats 4]
                                             [--work 400000] [--chunks 8] [--postgres URL]

For each worker count it starts the workers, runs the sweep once to warm them (a worker's first
step builds the study's definitions), then runs it again with --force and times it: the trials
stage (what the workers do) and the whole run. The same sweep in one process without celery is
the baseline. The target is benchmark_assets.examples.cpu_bound (pure Python, holds the GIL).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STUDY = """\
kind: ratchet
description: a CPU-bound sweep for the scale-out benchmark
target: benchmark_assets.examples.cpu_bound:evaluate
metric: score
scenarios: {{count: {scenarios}, train_fraction: 0.3}}
trials_per_scenario: {repeats}
constants:
  alpha: {{tier: 1, current: 0.3, candidates: [{candidates}]}}
decision: {{bootstrap_resamples: 500, correction: holm}}
"""


def timed_run(study: str) -> tuple[float, float, int]:
    """(trials stage seconds, whole run seconds, trials) of one forced run in this process."""
    from benchmark_assets.defs.runner import run_study

    started = time.perf_counter()
    outcome = run_study(study, quiet=True, force=True)
    total = time.perf_counter() - started
    trials_stage = sum(stage.seconds for stage in outcome.stages if stage.label == "trials")
    return trials_stage, total, outcome.measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10)
    parser.add_argument("--scenarios", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--work", type=int, default=400_000, help="loop iterations per trial (~30 ms at 400,000)")
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--postgres", default="", help="instance and warehouse on this PostgreSQL URL")
    args = parser.parse_args()

    import redis

    database = random.randint(1, 15)
    redis.Redis(host="127.0.0.1", port=6379, db=database).flushdb()
    folder = Path(tempfile.mkdtemp(prefix="scale_out_"))
    studies = folder / "studies"
    studies.mkdir()
    candidates = ", ".join(f"{0.1 * (i + 1):.2f}" for i in range(args.points))
    (studies / "cpu.yaml").write_text(STUDY.format(scenarios=args.scenarios, repeats=args.repeats,
                                                   candidates=candidates))
    os.environ.update({"DAGSTER_HOME": str(folder / "home"), "BENCHMARK_ASSETS_STUDIES": str(studies),
                       "BENCHMARK_ASSETS_CPU_WORK": str(args.work), "BENCHMARK_ASSETS_TRIAL_CHUNKS": str(args.chunks),
                       "BENCHMARK_ASSETS_POSTGRES_URL": args.postgres, "PYTHONPATH": str(ROOT)})
    os.environ.pop("BENCHMARK_ASSETS_WAREHOUSE_URL", None)
    (folder / "home").mkdir()
    (folder / "home" / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())

    from benchmark_assets.defs import scale_out

    rows = []
    os.environ[scale_out.BROKER_ENV] = ""
    timed_run("cpu")  # warm this process (imports, databases)
    stage, total, trials = timed_run("cpu")
    rows.append(("one process, no celery", stage, total, trials))
    broker = f"redis://127.0.0.1:6379/{database}"
    for count in (1, 2):
        os.environ[scale_out.BROKER_ENV] = broker
        with scale_out.local_workers(count, dict(os.environ), folder / f"logs_{count}"):
            timed_run("cpu")  # warm the workers
            stage, total, trials = timed_run("cpu")
        rows.append((f"{count} celery worker{'s' if count > 1 else ''}", stage, total, trials))

    print(f"{trials} trials ({args.points} points x {args.scenarios} scenarios x {args.repeats} repeats, "
          f"{args.work:,} iterations each), {args.chunks} chunks, on {os.cpu_count()} cores; "
          f"instance: {'PostgreSQL' if args.postgres else 'SQLite'}")
    print(f"{'':<24} {'trials stage':>13} {'trials/s':>9} {'whole run':>10}")
    for label, stage, total, count in rows:
        print(f"{label:<24} {stage:>11.1f} s {count / stage:>9.1f} {total:>8.1f} s")
    (_, one, one_total, _), (_, two, two_total, _) = rows[1], rows[2]
    print(f"2 workers / 1 worker throughput: trials stage {one / two:.2f}x, whole run {one_total / two_total:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
