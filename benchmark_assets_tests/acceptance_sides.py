"""Sides of the acceptance tests' suites: deterministic metrics from the seed, real allocations,
a side that raises, and a log of the order in which sides were called."""
import os

import numpy as np

MIB = 2**20


def _log(side: str, seed: int) -> None:
    path = os.environ.get("ACCEPTANCE_CALL_LOG")
    if path:
        with open(path, "a") as log:
            log.write(f"{side} {seed}\n")


def _score(seed: int, shift: float) -> float:
    return float(1.0 + shift + np.random.default_rng(seed).normal(0, 0.01))


def baseline(seed: int) -> dict:
    _log("baseline", seed)
    block = np.ones(4 * MIB, dtype=np.uint8)  # 4 MiB at its peak
    return {"score": _score(seed, 0.0), "checksum": float(block[0])}


def optimised(seed: int) -> dict:
    _log("optimised", seed)
    block = np.ones(MIB, dtype=np.uint8)  # 1 MiB: a 75 % reduction
    # The same noise on both sides of a repeat (shared seed) plus a repeat-specific wobble.
    return {"score": _score(seed, -0.05) + float(np.random.default_rng(seed + 10**6).normal(0, 0.002)),
            "checksum": float(block[0])}


def crashes(seed: int) -> dict:
    _log("crashes", seed)
    raise RuntimeError(f"optimised side exploded on seed {seed}")


def forgets_score(seed: int) -> dict:
    return {"checksum": 1.0}


def returns_a_list(seed: int):
    return [1, 2, 3]


def flaky(seed: int) -> dict:
    """Fails on every third seed, otherwise the optimised side."""
    if seed % 3 == 0:
        raise ValueError(f"flaky on seed {seed}")
    return optimised(seed)


def zero_score(seed: int) -> dict:
    return {"score": 0.0}


def slow(seed: int) -> dict:
    """Logs '<pid> <seed>' and takes 0.3 s: slow enough to kill a run between repeats."""
    import time

    path = os.environ.get("ACCEPTANCE_CALL_LOG")
    if path:
        with open(path, "a") as log:
            log.write(f"{os.getpid()} {seed}\n")
    time.sleep(0.3)
    return {"score": _score(seed, 0.0)}
