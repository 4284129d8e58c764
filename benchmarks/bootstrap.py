"""Speed and agreement of the bootstrap engine against scipy.stats.bootstrap called once per metric:
10,000 resamples of 1,000 metrics x 30 paired seeds (candidate - control), percentile and BCa.

    .venv/bin/python benchmarks/bootstrap.py [--metrics 1000] [--seeds 30] [--resamples 10000] [--scipy-metrics 1000]

With ``--scipy-metrics`` below ``--metrics`` scipy is timed on that many metrics and its time is
extrapolated linearly (said so in the output). Intervals are compared two ways: at the same seed
(scipy then draws the very resamples we draw, so only rounding differs) and at independent seeds
(the Monte Carlo error of 10,000 resamples).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy import stats as scipy_stats

from benchmark_assets.stats import bootstrap_difference


def _difference(candidate, control, axis=-1):
    return np.mean(candidate, axis=axis) - np.mean(control, axis=axis)


def _scipy_intervals(candidate, control, *, method: str, n_resamples: int, seed: int):
    low, high, se = [], [], []
    for metric in range(candidate.shape[0]):
        result = scipy_stats.bootstrap((candidate[metric], control[metric]), _difference, paired=True,
                                       method=method, n_resamples=n_resamples, rng=seed)
        low.append(result.confidence_interval.low)
        high.append(result.confidence_interval.high)
        se.append(result.standard_error)
    return np.array(low), np.array(high), np.array(se)


def _gaps(ours, low, high, se) -> np.ndarray:
    """Per metric, the larger difference of the two bounds in units of scipy's bootstrap standard error."""
    count = low.size
    return np.maximum(np.abs(ours.low[:count] - low), np.abs(ours.high[:count] - high)) / se


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--scipy-metrics", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    # scipy allocates a fresh (resamples, seeds) array per call; until glibc's malloc has freed one large
    # block it serves those from mmap, with page faults that make scipy up to twice as slow. Free one
    # 16 MB block first so scipy is timed at its best whatever ran before.
    released_block = np.ones(2_000_000)
    del released_block

    rng = np.random.default_rng(0)
    control = rng.normal(10.0, 2.0, size=(args.metrics, args.seeds))
    # Skewed paired effects, so that BCa has a skew to correct.
    candidate = control + rng.lognormal(-1.0, 1.0, size=(args.metrics, args.seeds)) - 0.2
    subset = min(args.scipy_metrics, args.metrics)
    shared_seed, independent_seed = 2, 3

    rows = []
    for method in ("percentile", "bca"):
        options = {"paired": True, "method": method, "n_resamples": args.resamples}
        same_seed = bootstrap_difference(candidate, control, rng=shared_seed, **options)  # also warms up
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            ours = bootstrap_difference(candidate, control, rng=independent_seed, **options)
            times.append(time.perf_counter() - started)
        ours_seconds = statistics.median(times)

        # Best of two passes, so the speed-up is measured against scipy at its best.
        scipy_times = []
        for _ in range(2):
            started = time.perf_counter()
            low, high, se = _scipy_intervals(candidate[:subset], control[:subset], method=method,
                                             n_resamples=args.resamples, seed=shared_seed)
            scipy_times.append(time.perf_counter() - started)
        scipy_seconds = min(scipy_times) * args.metrics / subset
        rows.append((method, ours_seconds, scipy_seconds, _gaps(same_seed, low, high, se), _gaps(ours, low, high, se)))

    print(f"Paired bootstrap of the mean difference: {args.metrics:,} metrics x {args.seeds} seeds, "
          f"{args.resamples:,} resamples; ours: median of {args.repeats} runs, all metrics in one call; "
          f"scipy.stats.bootstrap(paired=True) once per metric, best of 2 passes"
          + (f", timed on {subset:,} metrics and extrapolated x{args.metrics / subset:g}." if subset < args.metrics
             else ", all metrics."))
    print()
    print("| method | ours (s) | scipy per metric (s) | speed-up | bound gap / SE, same seed (max) "
          "| bound gap / SE, independent seeds (median / max) |")
    print("|---|---:|---:|---:|---:|---:|")
    for method, ours_seconds, scipy_seconds, same, independent in rows:
        print(f"| {method} | {ours_seconds:.3f} | {scipy_seconds:.2f} | {scipy_seconds / ours_seconds:.0f}x "
              f"| {same.max():.1e} | {np.median(independent):.3f} / {independent.max():.3f} |")
    print()
    print("Same seed: scipy draws the same resamples, so the intervals agree to rounding. Independent seeds: "
          "the Monte Carlo error of the resampling; BCa's is larger where a large acceleration pushes a bound "
          "into the last few resamples.")


if __name__ == "__main__":
    main()
