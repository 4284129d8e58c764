"""A CPU-bound ratchet target for scale-out: every call does a fixed amount of pure-Python work
(no sleeping, no I/O, the GIL held throughout), so one process keeps one core busy and only more
processes (celery workers) make a sweep faster. Its score behaves like the toy target's: the best
``alpha`` is 0.7, scenarios differ by a per-scenario offset (paired), repeats by a little noise.

``BENCHMARK_ASSETS_CPU_WORK`` sets the work per call (loop iterations, default 20,000: a few
milliseconds); workers must see the same value as the process that launches the run."""
from __future__ import annotations

import os

import numpy as np

constants = frozenset({"alpha"})
metrics = ("score", "work")


def spin(iterations: int) -> int:
    """A fixed amount of CPU work with a result that depends on all of it."""
    accumulator = 0
    for index in range(iterations):
        accumulator = (accumulator * 31 + index) % 1_000_003
    return accumulator


def evaluate(scenario, params, seed):
    iterations = int(os.environ.get("BENCHMARK_ASSETS_CPU_WORK", "20000"))
    checksum = spin(iterations)
    offset = np.random.default_rng(scenario.seed.seed_id).normal(0.0, 0.05)
    noise = np.random.default_rng(seed).normal(0.0, 0.002)
    return {"score": float(1.0 - (params["alpha"] - 0.7) ** 2 + offset + noise), "work": float(iterations),
            "checksum": float(checksum)}


evaluate.constants = constants
evaluate.metrics = metrics
