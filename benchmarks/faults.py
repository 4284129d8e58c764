"""Kill -9 each shipped study mid-run, run it again, and print what was lost and how long recovery took.

    .venv/bin/python benchmarks/faults.py [--kill-after 12]

Each study runs in a fresh DAGSTER_HOME through the CLI (a real subprocess). After --kill-after
seconds (a comparison: once 5 trials have finished; a load sweep: once 4 have) the CLI gets SIGKILL (no cleanup runs); then
the same command runs again. Printed per
study: the rerun's exit code and wall time, the trials it ran against the study's total, runs
left STARTED afterwards, and trial or server processes left behind.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDIES = {"memory_ratchet": 3600, "sgd_comparison": 20, "llm_load_sweep": 12}
WAIT_FOR = {"sgd_comparison": 5, "llm_load_sweep": 4}  # trials finished before the kill


def leftovers(marker: str) -> int:
    """Processes still running whose command line mentions ``marker``."""
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    return len([pid for pid in found if int(pid) != os.getpid()])


def checkpointed(home: Path, study: str) -> int:
    """Trials a run has checkpointed so far (0 before its warehouse exists)."""
    import sqlite3

    try:
        with sqlite3.connect(home / "benchmark.db", timeout=1) as db:
            return db.execute(f'SELECT count(*) FROM "{study}__trials__checkpoint"').fetchone()[0]
    except sqlite3.Error:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kill-after", type=float, default=12.0, help="seconds (a comparison: once 5 trials are done)")
    args = parser.parse_args()
    print("| study | killed after | rerun exit | rerun wall time | trials rerun / total | runs left STARTED | "
          "processes left |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for study, total in STUDIES.items():
        home = Path(tempfile.mkdtemp(prefix="faults_home_"))
        env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "benchmark_assets.cli", "run", study, "--quiet"]
        first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.perf_counter()
        if study in WAIT_FOR:  # kill it once a few trials have finished (checkpointed)
            while checkpointed(home, study) < WAIT_FOR[study] and time.perf_counter() - started < 120:
                time.sleep(0.05)
        else:
            time.sleep(args.kill_after)
        killed_at = time.perf_counter() - started
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        time.sleep(1.0)  # let the kernel deliver the parent-death signals
        left = leftovers("benchmark_assets.servers.mock_llm") + leftovers("benchmark_assets.examples.train_sgd")
        started = time.perf_counter()
        rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        seconds = time.perf_counter() - started
        ran = re.search(r"Ran (\d+)", rerun.stdout)
        code = ("import json\nfrom dagster import DagsterInstance, DagsterRunStatus\n"
                "with DagsterInstance.get() as i:\n"
                "    print(sum(r.status == DagsterRunStatus.STARTED for r in i.get_runs()))\n")
        stuck = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip()
        print(f"| {study} | {killed_at:.1f} s | {rerun.returncode} | {seconds:.1f} s | "
              f"{ran.group(1) if ran else '?'} / {total} | {stuck} | {left} |")


if __name__ == "__main__":
    main()
