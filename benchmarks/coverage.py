"""Coverage of the true mean by 95 % bootstrap (percentile, basic, BCa) and Student-t intervals, by
simulation: prints the markdown table for docs/figures.md (the same numbers the coverage test checks).

    .venv/bin/python benchmarks/coverage.py [--experiments 10000] [--resamples 2000] [--seed 0]
"""
from __future__ import annotations

import argparse
import time

from benchmark_assets.stats import coverage_markdown, interval_coverage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    frame = interval_coverage(experiments=args.experiments, n_resamples=args.resamples, rng=args.seed)
    elapsed = time.perf_counter() - started
    worst_se = frame["coverage_se"].max()
    print(f"Coverage of the true mean by nominal 95 % intervals: {args.experiments:,} experiments per row, "
          f"{args.resamples:,} resamples each, seed {args.seed} (binomial SE <= {worst_se:.3f}; {elapsed:.1f} s).")
    print()
    print(coverage_markdown(frame))


if __name__ == "__main__":
    main()
