"""How many trials a load-sweep point gets: which stored trials belong to the current round,
intervals that hold when looked at after every trial, and why each point stopped; no Dagster.

A point is looked at after each of its trials from ``min_trials`` on. Were every look's interval
taken at the study's full level, a point would stop the first time chance made its trials agree,
and the intervals it stopped with would cover less often than they say (aiperf's convergence rule
does this). Here look ``n`` takes its share ``alpha_n`` of the error budget
(``stats.sequential.look_alpha``); the shares add up to ``alpha``, so whichever look a point stops
at, its interval misses with chance at most ``alpha``."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark_assets.kinds.base import is_ingested
from benchmark_assets.kinds.load_sweep.analysis import on_log_scale
from benchmark_assets.stats.intervals import positive_mean_interval, t_interval, t_quantile
from benchmark_assets.stats.sequential import look_alpha

__all__ = ["Stop", "current_round", "metric_interval", "point_stop", "relative_half_width"]


def current_round(trials: pd.DataFrame, first: int, since: float | None = None) -> pd.DataFrame:
    """The measured trials of each point's latest round, with every ingested one. Every run
    measures a point's first ``first`` trials again; the trials numbered from ``first`` on that
    started before the earliest of those came from an earlier run, and are left out (``since``:
    leave out every measured trial that started before it, e.g. an earlier capacity search's)."""
    if trials.empty or "started_at" not in trials:
        return trials
    measured = ~is_ingested(trials)
    started = pd.to_numeric(trials["started_at"], errors="coerce")
    opening = measured & (trials["trial"].astype(int) < first)
    epoch = started[opening].groupby(trials.loc[opening, "sweep_point"]).min()
    start = trials["sweep_point"].map(epoch).astype(float)
    if since is not None:
        start = start.fillna(since).clip(lower=since)
    stale = measured & start.notna() & (started < start)
    return trials[~stale]


def metric_interval(values, metric: str, alpha: float) -> tuple[float, float]:
    """The two-sided ``1 - alpha`` interval of a metric's mean over trials: on the log scale for
    latencies and rates (it stays above 0), Student-t for shares and counts; NaN below two trials."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return math.nan, math.nan
    if on_log_scale(metric) and (x > 0).all():
        return positive_mean_interval(x, confidence_level=1.0 - alpha)
    low, high = t_interval(x.mean(), x.std(ddof=1), x.size, confidence_level=1.0 - alpha)
    return float(low), float(high)


def relative_half_width(values, metric: str, alpha: float) -> float:
    """The interval's half-width over the mean (0 for trials that all agree on 0; inf without
    an interval)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    low, high = metric_interval(x, metric, alpha)
    if low != low:
        return math.inf
    mean = float(x.mean())
    if mean == 0:
        return 0.0 if high == low else math.inf
    return (high - low) / 2.0 / abs(mean)


@dataclass(frozen=True)
class Stop:
    """Where a point stands: its trials this round (``failed`` of them without statistics),
    whether it has enough, and why; ``widths``: each decision metric's relative half-width."""

    point: str
    trials: int
    failed: int
    done: bool
    reason: str
    widths: dict


def point_stop(point: str, ok: pd.DataFrame, failed: int, metrics: list[str], *, first: int, last: int,
               precision: float, alpha: float, spending: str) -> Stop:
    """Whether ``point`` has trials enough: every metric's interval at this look's level within
    ``precision`` of its mean, or ``last`` trials measured (failed ones count, so a point whose
    trials fail stops too)."""
    n = len(ok)
    count = n + failed
    if count < first:
        return Stop(point, count, failed, False, f"{count} of its first {first} trials measured", {})
    level = look_alpha(count, first, last, alpha, spending)  # looks come after every trial, failed ones too
    widths = {m: relative_half_width(ok[m], m, level) if m in ok else math.inf for m in metrics}
    worst = max(widths, key=widths.get) if widths else ""
    shown = f"{worst} +-{widths[worst]:.1%}" if worst and math.isfinite(widths[worst]) else f"{worst} has no interval"
    failures = f"; {failed} failed" if failed else ""
    if widths and all(w <= precision for w in widths.values()):
        return Stop(point, count, failed, True, f"precise after {count} trials: every decision metric within "
                    f"+-{precision:.0%} of its mean (widest: {shown}){failures}", widths)
    if count >= last:
        return Stop(point, count, failed, True, f"max_trials {last} reached, not yet precise: {shown} (asked "
                    f"+-{precision:.0%}){failures}", widths)
    return Stop(point, count, failed, False, f"not yet precise after {count} trials: {shown}", widths)


def stopped_interval(values, metric: str, *, first: int, last: int, precision: float, alpha: float = 0.05,
                     spending: str = "pocock", plain: bool = False) -> tuple[float, float, int]:
    """Replay the stopping rule on one point's trials in order: (low, high, trials) where it
    stops. ``plain``: aiperf's rule instead, a Student-t ``1 - alpha`` interval at every look,
    for comparison (``benchmarks/convergence.py``)."""
    x = np.asarray(values, dtype=float)
    for n in range(first, min(last, x.size) + 1):
        if plain:
            half = t_quantile(1 - alpha / 2, n - 1) * x[:n].std(ddof=1) / math.sqrt(n)
            low, high = x[:n].mean() - half, x[:n].mean() + half
        else:
            low, high = metric_interval(x[:n], metric, look_alpha(n, first, last, alpha, spending))
        if (high - low) / 2 / abs(x[:n].mean()) <= precision or n == last:
            return low, high, n
    raise ValueError(f"{x.size} trials given, and the rule may need up to {last}")
