"""What months of nightly runs leave in an instance: the memory ratchet run N times with --force
(as its nightly schedule runs it) in a fresh DAGSTER_HOME, the home's size by part after the runs,
then after `benchmark-assets prune --keep K` where this version has it.

    .venv/bin/python benchmarks/retention.py [--runs 50] [--keep 5] [--study memory_ratchet]

It also prints the largest event after the first run (the summary's, with its inline plots).

To measure an older version, run this file with PYTHONPATH pointing at that version's checkout.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    if not path.exists():
        return 0.0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def parts(home: Path) -> str:
    warehouse = sum(size_mb(p) for p in home.glob("benchmark.db*"))  # with its write-ahead log
    text = (f"event log {size_mb(home / 'history'):.1f} MB, artifacts {size_mb(home / 'artifacts'):.1f} MB, "
            f"warehouse {warehouse:.1f} MB")
    return f"{size_mb(home):.1f} MB ({text})"


def largest_event(home: Path) -> str:
    """The largest event in the event log's index and its asset (the ratchet's summary, with its plots)."""
    import sqlite3

    index = home / "history" / "runs" / "index.db"
    with sqlite3.connect(index) as conn:
        size, kind, asset = conn.execute("SELECT length(event), dagster_event_type, asset_key FROM event_logs "
                                         "ORDER BY length(event) DESC LIMIT 1").fetchone()
    return f"{size:,} characters ({kind} of {asset})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keep", type=int, default=5)
    parser.add_argument("--study", default="memory_ratchet")
    args = parser.parse_args()
    code = os.environ.get("PYTHONPATH", str(ROOT)).split(os.pathsep)[0]
    home = Path(tempfile.mkdtemp(prefix="retention_home_"))
    shutil.copy(Path(code) / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": code}
    for name in ("BENCHMARK_ASSETS_POSTGRES_URL", "BENCHMARK_ASSETS_WAREHOUSE_URL", "BENCHMARK_ASSETS_CELERY_BROKER"):
        env.pop(name, None)
    command = [sys.executable, "-m", "benchmark_assets.cli"]
    started = time.perf_counter()
    for number in range(1, args.runs + 1):
        subprocess.run([*command, "run", args.study, "--force", "--quiet"], env=env, cwd=code, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if number == 1:
            print(f"largest event after one run: {largest_event(home)}", flush=True)
        if number in (1, 10) or number % 25 == 0:
            print(f"after {number} runs ({time.perf_counter() - started:.0f} s): {parts(home)}", flush=True)
    pruned = subprocess.run([*command, "prune", "--keep", str(args.keep)], env=env, cwd=code, text=True,
                            capture_output=True)
    if pruned.returncode == 0:
        print(pruned.stdout.strip().splitlines()[-2])
        print(f"after prune --keep {args.keep}: {parts(home)}")
    else:
        print(f"this version has no prune: {pruned.stderr.strip().splitlines()[-1]}")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
