"""How fast result files become trials: a comparison study's inbox filled with curve CSVs and a
load sweep's with aiperf exports, read by ``inbox.scan`` and stored by ``benchmark-assets ingest``'s
runs (real Dagster runs on the embedded SQLite instance), then a second look with nothing new.

    .venv/bin/python benchmarks/inbox.py [--seeds 100] [--steps 200] [--exports 200]

Prints a Markdown table: files, rows, seconds and files per second for each step.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COMPARISON = """\
kind: comparison
target:
  command: ["{python}", "-m", "benchmark_assets_tests.toy_command", "--seed", "{seed}", "--shift", "{shift}",
            "--out", "{output}"]
arms:
  control:   {shift: 0.0}
  candidate: {shift: -0.05}
seeds: [1, 2]
metric: loss
summary: {type: auc, window: 0.25}
direction: minimize
decision: {bootstrap_resamples: 2000}
"""
LOAD_SWEEP = """\
kind: load_sweep
target:
  http_load: {url: "http://127.0.0.1:9", model: mock, streaming: true, input_tokens: 128, output_tokens: 16,
              concurrency: [1, 4, 16, 64], requests: 10}
trials: 2
"""


def fill(folder: Path, seeds: int, steps: int, exports: int) -> None:
    rng = np.random.default_rng(0)
    for arm, shift in (("control", 0.0), ("candidate", -0.05)):
        (folder / "cmp" / arm).mkdir(parents=True)
        for seed in range(seeds):
            step = np.arange(steps)
            loss = 1.0 / (1 + step / 10) + shift + 0.01 * rng.standard_normal(steps)
            rows = "\n".join(f"{s},{v:.6f}" for s, v in zip(step, loss))
            (folder / "cmp" / arm / f"seed_{seed}.csv").write_text("step,loss\n" + rows + "\n")
    template = json.loads((ROOT / "benchmark_assets_tests/data/aiperf/flat_concurrency4.json").read_text())
    for i in range(exports):
        template["input_config"]["loadgen"]["concurrency"] = [1, 4, 16, 64][i % 4]
        template["request_throughput"]["avg"] = 40.0 + rng.normal()
        run = folder / "sweep" / f"run{i:04d}"
        run.mkdir(parents=True)
        (run / "profile_export_aiperf.json").write_text(json.dumps(template))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="curve files per arm")
    parser.add_argument("--steps", type=int, default=200, help="steps per curve")
    parser.add_argument("--exports", type=int, default=200, help="aiperf exports")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="inbox_benchmark_"))
    (work / "studies").mkdir()
    (work / "studies" / "cmp.yaml").write_text(COMPARISON)
    (work / "studies" / "sweep.yaml").write_text(LOAD_SWEEP)
    os.environ.update(DAGSTER_HOME=str(work / "home"), BENCHMARK_ASSETS_STUDIES=str(work / "studies"),
                      BENCHMARK_ASSETS_INBOX=str(work / "inbox"))
    sys.path.insert(0, str(ROOT))
    from benchmark_assets import inbox
    from benchmark_assets.cli import ensure_dagster_home
    from benchmark_assets.defs.runner import ingest_study
    from benchmark_assets.graph import StudyGraph
    from benchmark_assets.studies import load_study
    from benchmark_assets.warehouse import Warehouse

    ensure_dagster_home()
    fill(work / "inbox", args.seeds, args.steps, args.exports)
    lines = ["| study | step | files | trials | seconds | files/s |", "|---|---|---:|---:|---:|---:|"]
    for name in ("cmp", "sweep"):
        study = load_study(name)
        started = time.perf_counter()
        found = inbox.scan(StudyGraph.of(study), Warehouse())
        scanned = time.perf_counter() - started
        started = time.perf_counter()
        _, outcome = ingest_study(name, quiet=True)
        stored = time.perf_counter() - started
        started = time.perf_counter()
        again = inbox.scan(StudyGraph.of(study), Warehouse())
        looked = time.perf_counter() - started
        files, trials = len(found.ingested), len(found.trial_keys)
        assert not found.rejected and again.unchanged == files, (found.rejected[:2], again.summary())
        lines += [f"| {name} | scan: read, check, keep | {files} | {trials} | {scanned:.2f} | {files / scanned:.0f} |",
                  f"| {name} | store as partitions + analysis ({len(outcome.stages)} runs) | {files} | {trials} | "
                  f"{stored:.2f} | {files / stored:.0f} |",
                  f"| {name} | second look, nothing new | {files} | 0 | {looked:.2f} | {files / looked:.0f} |"]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
