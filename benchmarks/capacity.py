"""The capacity search on the shipped mock server, through Dagster: the capacity it finds under
the SLA against the one the server's configuration implies, and the trials it used against a full
grid at the same precision (every load from low to high, each with at least min_trials).

    .venv/bin/python benchmarks/capacity.py

Each case runs `run_study` in a subprocess with a fresh DAGSTER_HOME, warehouse and artifacts
folder. Implied capacities leave HTTP overhead out (``MockLLMConfig.expected``), so a measured
TTFT is a little slower and the found capacity may sit a little below a smooth bound.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark_assets.servers.mock_llm import MockLLMConfig  # noqa: E402

STUDY = """\
kind: load_sweep
description: capacity search on the mock server
target:
  http_load:
    url: http://127.0.0.1:{port}
    output_tokens: 8
    input_tokens: 16
    requests: 64{rate_extra}
    warmup_requests: 4
    request_timeout_seconds: 30
mock_server: {{ttft_ms: 20, itl_ms: 5, capacity: {slots}, batch_cost: {batch_cost}}}
slos:
  - {{metric: time_to_first_token, stat: {stat}, below: {bound}}}
  - {{metric: error_rate, below: 0.05}}
stopping: {{min_trials: 3, max_trials: 8}}
capacity: {{search: {search}, low: {low}, high: {high}{precision}}}
"""

# (what it shows, mock slots, batch cost, SLO statistic, bound in ms, searched, high, implied capacity)
CASES = [
    ("queueing knee: 12 slots, TTFT p99 <= 45 ms", 12, 0.0, "p99", 45, "concurrency", 64, 12),
    ("queueing knee: 24 slots, TTFT p99 <= 45 ms", 24, 0.0, "p99", 45, "concurrency", 64, 24),
    ("smooth slow-down: 32 slots getting 2x slower as they fill, TTFT avg <= 30 ms", 32, 1.0, "avg", 30,
     "concurrency", 64, None),
    ("Poisson arrivals at a request rate: 8 slots, TTFT p99 <= 45 ms (requests/s, to within 2)", 8, 0.0, "p99", 45,
     "request_rate", 160, None),
]
SERVICE_MS, FIRST_MS = 20 + 7 * 5, 20  # a request of 8 tokens on the mock server: 55 ms, its first token at 20


def implied_rate(slots: int, bound: float, requests: int = 64, trials: int = 4000) -> float:
    """The highest request rate (to 1 request/s) at which the mean over trials of a trial's TTFT
    p99 stays within ``bound``, by simulating the mock server as a queue: Poisson arrivals,
    ``slots`` servers, each request 55 ms, its first token 20 ms after it gets a slot (HTTP
    overhead left out)."""
    rng = np.random.default_rng(0)

    def mean_p99(rate: float) -> float:
        gaps = rng.exponential(1000 / rate, size=(trials, requests + 4))  # 4 warm-up requests first
        arrivals = np.cumsum(gaps, axis=1)
        free = np.zeros((trials, slots))
        ttft = np.empty((trials, requests + 4))
        for i in range(requests + 4):
            slot = free.argmin(axis=1)
            start = np.maximum(arrivals[:, i], free[np.arange(trials), slot])
            ttft[:, i] = start - arrivals[:, i] + FIRST_MS
            free[np.arange(trials), slot] = start + SERVICE_MS
        return float(np.percentile(ttft[:, 4:], 99, axis=1).mean())

    return float(max(r for r in range(1, int(1000 * slots / SERVICE_MS)) if mean_p99(r) <= bound))


def implied(slots: int, batch_cost: float, bound: float) -> int:
    """The highest concurrency whose mean TTFT the configuration puts within ``bound``."""
    config = MockLLMConfig(ttft_ms=20, itl_ms=5, capacity=slots, batch_cost=batch_cost)
    return max(c for c in range(1, 257) if config.expected(c, 8)["time_to_first_token_ms"] <= bound)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_case(slots: int, batch_cost: float, stat: str, bound: float, search: str, high: int) -> tuple[dict, float]:
    folder = Path(tempfile.mkdtemp(prefix="capacity_bench_"))
    (folder / "studies").mkdir()
    (folder / "home").mkdir()
    shutil.copy(ROOT / "dagster.yaml", folder / "home" / "dagster.yaml")
    (folder / "studies" / "capacity.yaml").write_text(textwrap.dedent(STUDY.format(
        port=free_port(), slots=slots, batch_cost=batch_cost, stat=stat, bound=bound, high=high, search=search,
        low=20 if search == "request_rate" else 1, precision=", precision: 2" if search == "request_rate" else "",
        rate_extra="\n    arrival: poisson" if search == "request_rate" else "")))
    env = {**os.environ, "DAGSTER_HOME": str(folder / "home"), "BENCHMARK_ASSETS_STUDIES": str(folder / "studies"),
           "BENCHMARK_ASSETS_ARTIFACTS": str(folder / "artifacts"), "PYTHONPATH": str(ROOT)}
    code = ("from dagster import DagsterInstance\nfrom benchmark_assets.defs.runner import run_study\n"
            "with DagsterInstance.get() as instance:\n    run_study('capacity', quiet=True, instance=instance)\n")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)
    seconds = time.perf_counter() - started
    summary = json.loads((folder / "artifacts" / "capacity" / "latest" / "sweep_aggregate.json").read_text())
    shutil.rmtree(folder, ignore_errors=True)
    return summary["capacity"], seconds


def main() -> None:
    print("| case | implied | found | 95 % interval | loads probed | trials | full grid at the same precision "
          "| wall |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for label, slots, batch_cost, stat, bound, search, high, knee in CASES:
        expected = knee if knee is not None else implied_rate(slots, bound) if search == "request_rate" else implied(
            slots, batch_cost, bound)
        capacity, seconds = run_case(slots, batch_cost, stat, bound, search, high)
        lower = "?" if capacity["lower"] is None else f"{capacity['lower']:g}"
        upper = "?" if capacity["upper"] is None else f"{capacity['upper']:g}"
        low, precision = (20, 2) if search == "request_rate" else (1, 1)
        grid = (int((high - low) / precision) + 1) * 3
        print(f"| {label} | {expected:g} | {capacity['estimate']:g} | [{lower}, {upper}) | {len(capacity['probes'])} "
              f"| {capacity['trials']} | at least {grid} | {seconds:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
