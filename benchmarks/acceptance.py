"""How often the acceptance kind says met / not met / inconclusive when the true effect is known.

    .venv/bin/python benchmarks/acceptance.py [--simulations 4000] [--seed 0]

Each simulated suite measures a baseline and an optimised side on paired repeats: the baseline
is lognormal around 10 with a per-repeat machine effect shared by both sides, the optimised
side is the baseline times the true ratio times its own lognormal noise (CV as given). The band
is a 45-55 % reduction (optimised / baseline in [0.45, 0.55]); the true ratio sits inside it, on
its edge or outside. Table 1: one criterion at a time. Table 2: suites of five criteria judged
together, with Holm and without correction: how often at least one false 'met' comes out.

'met' for a true ratio on the edge or outside the band is the error the study promises to hold
at 1 - confidence_level (5 %): the script prints the rate with its 95 % Clopper-Pearson interval
and flags any cell whose interval lies above 5 %.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_assets.stats.acceptance import Criterion, judge

BAND = Criterion("reduction 45-55 %", "ratio", 0.45, 0.55)
RATIOS = [(0.50, "inside, centre"), (0.47, "inside, near edge"), (0.45, "on the edge"), (0.43, "outside, near"),
          (0.40, "outside"), (0.60, "outside, above")]


def samples(rng: np.random.Generator, ratio: float, repeats: int, cv: float) -> tuple[np.ndarray, np.ndarray]:
    sigma = math.sqrt(math.log(1 + cv**2))
    machine = rng.normal(0, 0.1, repeats)  # drift both sides of a repeat share (the pairing removes it)
    baseline = 10 * np.exp(machine + rng.normal(0, sigma, repeats))
    optimised = baseline * ratio * np.exp(rng.normal(0, sigma, repeats))
    return baseline, optimised


def rate(hits: int, n: int) -> str:
    ci = binomtest(hits, n).proportion_ci(0.95, method="exact")
    return f"{hits / n:.1%} [{ci.low:.1%}, {ci.high:.1%}]"


def single(simulations: int, seed: int) -> list[str]:
    lines = ["| true ratio | where | repeats | CV | met | not met | inconclusive |", "|---|---|---|---|---|---|---|"]
    flagged = []
    for n in (5, 10, 20):
        for cv in (0.05, 0.10):
            for ratio, where in RATIOS:
                rng = np.random.default_rng([seed, n, int(cv * 100), int(ratio * 100)])
                counts = {"met": 0, "not_met": 0, "inconclusive": 0}
                for _ in range(simulations):
                    counts[judge([BAND], [samples(rng, ratio, n, cv)])[0].verdict] += 1
                met = rate(counts["met"], simulations)
                if not where.startswith("inside"):
                    ci = binomtest(counts["met"], simulations).proportion_ci(0.95, method="exact")
                    if ci.low > 0.05:
                        flagged.append(f"ratio {ratio}, n {n}, CV {cv:.0%}: met {met}")
                lines.append(f"| {ratio:.2f} | {where} | {n} | {cv:.0%} | {met} | "
                             f"{counts['not_met'] / simulations:.1%} | {counts['inconclusive'] / simulations:.1%} |")
    lines.append("")
    lines.append("Cells where false 'met' is above 5 % (interval wholly above): " + ("; ".join(flagged) or "none"))
    return lines


def suites(simulations: int, seed: int) -> list[str]:
    """Five criteria per suite, every true ratio on the band's edge (each 'met' is false)."""
    lines = ["| criteria on the edge | repeats | CV | correction | suites with any false met |", "|---|---|---|---|---|"]
    criteria = [Criterion(f"c{i}", "ratio", 0.45, 0.55) for i in range(5)]
    for n in (10, 20):
        for correction in ("holm", "none"):
            rng = np.random.default_rng([seed, n, 7])
            hits = 0
            for _ in range(simulations):
                data = [samples(rng, 0.45 if i % 2 else 0.55, n, 0.05) for i in range(5)]
                hits += any(j.verdict == "met" for j in judge(criteria, data, correction=correction))
            lines.append(f"| 5 | {n} | 5% | {correction} | {rate(hits, simulations)} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"One criterion ({BAND.name}), {args.simulations} simulated suites per row; confidence level 95 %:\n")
    print("\n".join(single(args.simulations, args.seed)))
    print(f"\nSuites of five criteria, {args.simulations} per row (true ratios alternately on the low and the high "
          "edge):\n")
    print("\n".join(suites(args.simulations, args.seed)))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
