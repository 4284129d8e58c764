"""The acceptance kind on real pytest-benchmark runs: identical code on both sides, and a real 2x
difference, judged by `benchmark-assets run` on the files, with one run and with several runs per
side.

    .venv/bin/python benchmarks/acceptance_runs.py [--runs 3] [--rounds 30]

Each run is a real `pytest --benchmark-json` process over one benchmark: a loop of Python work of
a fixed size (`WORK`), or twice that (the baseline of the 2x case). Criteria: "within 2 %" and
"no more than 5 % slower" (equivalence and a cap; identical code must never come out "not met"),
and "speed-up at least 1.5x" (the 2x case must be met once there are runs enough to know how runs
vary). Every suite goes through the CLI on a fresh Dagster home, as a user runs it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_assets.stats.acceptance import Criterion, Unpaired
from benchmark_assets.stats.acceptance import judge as judge_criteria

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "benchmark_assets.cli"]

BENCH = textwrap.dedent("""\
    import os

    WORK = int(os.environ["WORK"])


    def spin(n):
        total = 0
        for i in range(n):
            total += i * i % 7
        return total


    def test_work(benchmark):
        benchmark(spin, WORK)
""")

SUITE = """\
kind: acceptance
description: {what}
benchmarks:
  test_work:
    baseline: {{pytest_benchmark: "{baseline}"}}
    optimised: {{pytest_benchmark: "{optimised}"}}
    criteria:
      - {{name: within 2 %, measure: wall_time, equivalent_within: 0.02}}
      - {{name: at most 5 % slower, measure: wall_time, max_increase: 0.05}}
      - {{name: speed-up 1.5x, measure: wall_time, speedup_at_least: 1.5}}
"""


def pytest_run(folder: Path, work: int, out: Path, rounds: int) -> None:
    """One real pytest-benchmark run of the benchmark at this work size, its rounds kept."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "bench_work.py", "-c",
                           "/dev/null", "--rootdir", str(folder), f"--benchmark-min-rounds={rounds}",
                           "--benchmark-max-time=0.2", "--benchmark-warmup=on", f"--benchmark-json={out}"],
                          cwd=folder, env={**env, "WORK": str(work)}, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stdout + done.stderr)


def judge(home: Path, studies: Path, name: str) -> list[dict]:
    """The suite's verdicts from `benchmark-assets run --fail-on not_met` (with its exit code), and
    beside each what the former rule said: every round of every run an independent sample (Welch
    on the logs of the pooled rounds, Holm across the suite's criteria)."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(studies)}
    done = subprocess.run([*CLI, "run", name, "--quiet", "--fail-on", "not_met"], env=env, capture_output=True,
                          text=True, cwd=home.parent)
    latest = home / "artifacts" / name / "latest"
    verdicts = json.loads((latest / "verdicts.json").read_text())
    trials = pd.read_csv(latest / "trials.csv")
    rounds = Unpaired(*(trials.loc[trials["side"] == side, "wall_time"].to_numpy(float)
                        for side in ("baseline", "optimised")))
    criteria = [Criterion(row["criterion"], row["effect"], row["region_low"], row["region_high"]) for row in verdicts]
    former = judge_criteria(criteria, [rounds] * len(criteria), correction="holm")
    for row, old in zip(verdicts, former):
        row["exit"], row["former"] = done.returncode, old.verdict
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per side in the several-runs suites")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--work", type=int, default=20_000)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "bench_work.py").write_text(BENCH)
        runs = folder / "runs"
        runs.mkdir()
        # interleaved, as runs on one machine over a day would be
        for i in range(args.runs):
            for side, work in (("same_a", args.work), ("same_b", args.work), ("double", 2 * args.work)):
                pytest_run(folder, work, runs / f"{side}_{i}.json", args.rounds)
        studies = folder / "studies"
        studies.mkdir()
        cases = [("identical_1", "identical code, 1 run per side", "same_a_0.json", "same_b_0.json"),
                 ("identical_n", f"identical code, {args.runs} runs per side", "same_a_*.json", "same_b_*.json"),
                 ("twice_1", "2x less work, 1 run per side", "double_0.json", "same_a_0.json"),
                 ("twice_n", f"2x less work, {args.runs} runs per side", "double_*.json", "same_a_*.json")]
        print(f"{'suite':34s} {'criterion':20s} {'estimate':>18s} {'interval':>22s} {'verdict':>13s} "
              f"{'to settle':>9s} {'exit':>4s}  rounds as samples (former rule)")
        for name, what, baseline, optimised in cases:
            (studies / f"{name}.yaml").write_text(SUITE.format(what=what, baseline=runs / baseline,
                                                               optimised=runs / optimised))
            for row in judge(folder / f"home_{name}", studies, name):
                needed = f"{row['repeats_needed']}" if row["repeats_needed"] > 0 else ""
                print(f"{what:34s} {row['criterion']:20s} {row['scale'] + ' ' + row['shown_estimate']:>18s} "
                      f"{row['shown_interval']:>22s} {row['verdict']:>13s} {needed:>9s} {row['exit']:>4d}  "
                      f"{row['former']}")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
