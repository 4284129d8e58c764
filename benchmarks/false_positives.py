"""How often the comparison names a winner when the arms do not differ, by number of seeds.

    .venv/bin/python benchmarks/false_positives.py [--experiments 400]

Each experiment: paired seeds, control ~ N(0, 1) per seed, candidate = control + N(0, 0.5), so
the true effect is 0 and any verdict other than inconclusive is a false positive. Reported for
the BCa bootstrap interval alone, the paired t-test alone, and the rule the study uses (both).
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from benchmark_assets.kinds.comparison.analysis import INCONCLUSIVE, ComparisonRules, compare_arms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=400)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rules = ComparisonRules(method="bca", bootstrap_resamples=2000)
    lines = ["| seeds | bootstrap interval alone | t-test alone | both (the study's rule) |", "|---:|---:|---:|---:|"]
    for n in (2, 3, 6, 10, 20):
        bootstrap = ttest = both = 0
        for _ in range(args.experiments):
            control = rng.normal(0.0, 1.0, n)
            candidate = control + rng.normal(0.0, 0.5, n)
            rows = [{"arm": arm, "seed": s, "status": "ok", "m": v}
                    for arm, values in (("control", control), ("candidate", candidate)) for s, v in enumerate(values)]
            row = compare_arms(pd.DataFrame(rows), ["m"], decision_metric="m", maximize=True, paired=True,
                               rules=rules).iloc[0]
            bootstrap += row["ci_low"] > 0 or row["ci_high"] < 0
            ttest += row["p_t"] < 0.05
            both += row["verdict"] != INCONCLUSIVE
        rate = lambda count: f"{count / args.experiments:.1%}"  # noqa: E731
        lines.append(f"| {n} | {rate(bootstrap)} | {rate(ttest)} | {rate(both)} |")
    print(f"False positives at a nominal 5 % ({args.experiments} null experiments per row, seed 0):\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
