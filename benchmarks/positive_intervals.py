"""Coverage of the load sweep's interval for positive metrics (Cox's method on the log scale,
``stats.intervals.positive_mean_interval``) against the Student-t interval of the mean, over
simulated points of n trials with a log-normal spread; and how often the t-interval reaches below 0.

    .venv/bin/python benchmarks/positive_intervals.py [--runs 20000]
"""
from __future__ import annotations

import argparse

import numpy as np

from benchmark_assets.stats.intervals import positive_mean_interval, t_interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000, help="simulated points per cell")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    print(f"95 % intervals of the mean, {args.runs:,} simulated points per row")
    print("| sigma (log) | trials | positive (Cox) covers | t covers | t reaches below 0 |")
    print("|---:|---:|---:|---:|---:|")
    for sigma in (0.05, 0.3, 0.8):
        for n in (2, 3, 5, 10):
            true_mean = np.exp(np.log(50) + sigma**2 / 2)
            samples = rng.lognormal(np.log(50), sigma, size=(args.runs, n))
            cox = np.array([positive_mean_interval(s) for s in samples])
            low, high = t_interval(samples.mean(axis=1), samples.std(axis=1, ddof=1), n)
            covered = np.mean((cox[:, 0] <= true_mean) & (true_mean <= cox[:, 1]))
            t_covered = np.mean((low <= true_mean) & (true_mean <= high))
            print(f"| {sigma} | {n} | {covered:.3f} | {t_covered:.3f} | {np.mean(low < 0):.3f} |")


if __name__ == "__main__":
    main()
