"""How often 95 % intervals cover the true mean, by simulation: the figures behind docs/figures.md."""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark_assets.stats.bootstrap import METHODS, bootstrap_ci
from benchmark_assets.stats.intervals import describe

# name -> (draw (experiments, n) samples, true mean)
DISTRIBUTIONS = {
    "normal": (lambda rng, shape: rng.normal(0.0, 1.0, shape), 0.0),
    "exponential": (lambda rng, shape: rng.exponential(1.0, shape), 1.0),
    "lognormal": (lambda rng, shape: rng.lognormal(0.0, 1.0, shape), float(np.exp(0.5))),
    "student_t3": (lambda rng, shape: rng.standard_t(3, shape), 0.0),
}
INTERVALS = (*METHODS, "t")
_CHUNK_ROWS = 2500


def interval_coverage(
    *,
    distributions=tuple(DISTRIBUTIONS),
    sizes=(10, 30),
    experiments: int = 10_000,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    rng: int = 0,
) -> pd.DataFrame:
    """Coverage of the true mean by the percentile, basic, BCa and Student-t intervals: one row per
    (distribution, n, interval) with ``coverage``, its binomial standard error and the mean width.

    Experiments are the rows of one array, so each case is one bootstrap call; the experiments
    share resampling weights, which correlates their Monte Carlo error a little but leaves each
    interval, and so the coverage estimate, unbiased."""
    rows = []
    for case, (name, size) in enumerate((d, n) for d in distributions for n in sizes):
        draw, true_mean = DISTRIBUTIONS[name]
        data = draw(np.random.default_rng([rng, case]), (experiments, size))
        intervals = {}
        for method in METHODS:
            # Rows share resamples, so chunks drawn with one seed equal a single call, in bounded memory.
            chunks = [
                bootstrap_ci(data[start:start + _CHUNK_ROWS], method=method, confidence_level=confidence_level,
                             n_resamples=n_resamples, rng=[rng, case, 1])
                for start in range(0, experiments, _CHUNK_ROWS)
            ]
            intervals[method] = (np.concatenate([c.low for c in chunks]), np.concatenate([c.high for c in chunks]))
        summary = describe(data, confidence_level=confidence_level)
        intervals["t"] = (summary.t_low, summary.t_high)
        for interval, (low, high) in intervals.items():
            covered = np.mean((low <= true_mean) & (true_mean <= high))
            rows.append({
                "distribution": name,
                "n": size,
                "interval": interval,
                "coverage": float(covered),
                "coverage_se": float(np.sqrt(covered * (1.0 - covered) / experiments)),
                "mean_width": float(np.mean(high - low)),
            })
    return pd.DataFrame(rows)


def coverage_markdown(frame: pd.DataFrame) -> str:
    """The coverage table as markdown: one row per (distribution, n), one column per interval."""
    table = frame.pivot_table(index=["distribution", "n"], columns="interval", values="coverage", sort=False)
    columns = [c for c in INTERVALS if c in table.columns]
    lines = ["| distribution | n | " + " | ".join(columns) + " |", "|---|---:|" + "---:|" * len(columns)]
    for (name, size), row in table[columns].iterrows():
        lines.append(f"| {name} | {size} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")
    return "\n".join(lines)
