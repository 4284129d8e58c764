"""Coverage of the intervals a point stops with when trials are added until the interval is
narrow enough, checked after every trial: aiperf's rule (a plain 95 % Student-t interval,
stop once its half-width is within the precision of the mean) against the load sweep's
(``stopping``: Cox's log-scale interval at each look's share of the error budget; both replayed
by ``kinds.load_sweep.stopping.stopped_interval``), over simulated points whose trials scatter
log-normally around a known mean.

    .venv/bin/python benchmarks/convergence.py [--points 4000]
"""
from __future__ import annotations

import argparse

import numpy as np

from benchmark_assets.kinds.load_sweep.stopping import stopped_interval

METRIC = "time_to_first_token_p99"


def compare(rng: np.random.Generator, points: int, sigma: float, first: int, last: int, precision: float) -> dict:
    true_mean = 50.0
    out = {}
    samples = rng.lognormal(np.log(true_mean) - sigma**2 / 2, sigma, size=(points, last))
    for name, plain in (("naive", True), ("ours", False)):
        stopped = np.array([stopped_interval(s, METRIC, first=first, last=last, precision=precision, plain=plain)
                            for s in samples])
        covered = (stopped[:, 0] <= true_mean) & (true_mean <= stopped[:, 1])
        out[name] = (float(covered.mean()), float(stopped[:, 2].mean()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=4000, help="simulated points per row")
    args = parser.parse_args()
    rng = np.random.default_rng(11)
    print(f"95 % intervals of a point's mean, {args.points:,} simulated points per row")
    print("| trial spread (log sd) | trials | precision | aiperf's rule covers | its mean trials "
          "| ours covers | our mean trials |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for sigma, first, last, precision in ((0.05, 3, 10, 0.05), (0.1, 3, 20, 0.05), (0.1, 3, 10, 0.1),
                                          (0.2, 3, 20, 0.1), (0.3, 3, 20, 0.2), (0.3, 5, 20, 0.2)):
        row = compare(rng, args.points, sigma, first, last, precision)
        print(f"| {sigma} | {first}-{last} | +-{precision:.0%} | {row['naive'][0]:.3f} | {row['naive'][1]:.1f} "
              f"| {row['ours'][0]:.3f} | {row['ours'][1]:.1f} |")


if __name__ == "__main__":
    main()
