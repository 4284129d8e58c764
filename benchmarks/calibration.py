"""The test suite's calibration checks at full size, beside the rule each check must catch.

    .venv/bin/python benchmarks/calibration.py [--scale 1.0]

The suite runs each check small enough to stay fast (the CI size) and shows, at that size, that
the binomial test rejects a rule known to break the promise. This script runs the same
simulations at the sizes the checks were designed with (``--scale`` multiplies them) and prints
each rate with its 95 % Clopper-Pearson interval, for the rule in force and for the wrong one:

1. the ratchet with no real effect (20 null constants, thresholds at 0): the share of studies
   that accept any change; the wrong rule picks each constant's best value on the validation
   scenarios and tests it there, uncorrected (kinds/ratchet/simulate.py: lucky_pick_accepts);
2. the estimator benchmark with exchangeable estimators (four, six pairs): the share of
   benchmarks with any verdict; the wrong rule judges each pair at 5 % without Holm.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from benchmark_assets.kinds.estimator_benchmark.simulate import null_claims
from benchmark_assets.kinds.ratchet.rules import DecisionRules
from benchmark_assets.kinds.ratchet.simulate import lucky_pick_accepts, simulate_study, simulate_trials


def rate(hits: int, runs: int) -> str:
    low, high = stats.binomtest(hits, runs).proportion_ci(0.95, method="exact")
    return f"{100 * hits / runs:.1f} % [{100 * low:.1f}, {100 * high:.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every size (0.1 for a quick look)")
    args = parser.parse_args()
    studies, benchmarks = max(1, round(400 * args.scale)), max(1, round(2000 * args.scale))
    print("| check | runs | CI size | rule in force | wrong rule | seconds |")
    print("|---|---:|---:|---|---|---:|")

    started = time.perf_counter()
    rules = DecisionRules(improvement_threshold=0.0, sensitivity_threshold=0.0)
    rng = np.random.default_rng(0)
    held = sum(bool((simulate_study(rng, rules=rules)["decision"] == "accept").any()) for _ in range(studies))
    rng = np.random.default_rng(0)
    lucky = sum(lucky_pick_accepts(*simulate_trials(rng)) for _ in range(studies))
    print(f"| ratchet, no real effect (20 constants) | {studies} | 60 | {rate(held, studies)} | "
          f"{rate(lucky, studies)} (best value picked and tested on validation) | {time.perf_counter() - started:.0f} |")

    started = time.perf_counter()
    held = null_claims(np.random.default_rng(1), benchmarks)
    loose = null_claims(np.random.default_rng(1), benchmarks, correction="none")
    print(f"| estimator benchmark, no real difference (6 pairs) | {benchmarks} | 400 | {rate(held, benchmarks)} | "
          f"{rate(loose, benchmarks)} (no Holm) | {time.perf_counter() - started:.0f} |")


if __name__ == "__main__":
    main()
