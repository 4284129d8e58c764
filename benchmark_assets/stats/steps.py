"""Steps in a noisy history: a robust piecewise-constant fit and the regressions it shows. No Dagster.

The whole reference (what it measures, every option, how it fails): docs/reference/steps.md.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_STEPS = 40  # more levels than this in one history is noise, not steps


@dataclass(frozen=True)
class Segment:
    """Positions ``start`` (inclusive) to ``end`` (exclusive) of the history at one level."""

    start: int
    end: int
    level: float  # the weighted median of its values
    spread: float  # mean absolute deviation from the level: the segment's own noise


@dataclass(frozen=True)
class Step:
    """A change of level between ``before`` (the last position of one segment) and ``after``
    (the first of the next): somewhere in between, something changed."""

    before: int
    after: int
    level_before: float
    level_after: float
    noise: float  # the history's noise (``noise_scale``), as a standard deviation
    regression: bool

    @property
    def size(self) -> float:
        return self.level_after - self.level_before

    @property
    def relative(self) -> float:
        return self.size / abs(self.level_before) if self.level_before else math.nan


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value below and above which half the weight lies (the mean of the two middle values at
    an exact half, as for the plain median)."""
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    cumulative = np.cumsum(weights)
    half = cumulative[-1] / 2
    above = int(np.searchsorted(cumulative, half, side="left"))
    if math.isclose(cumulative[above], half, rel_tol=1e-12) and above + 1 < len(values):
        return float((values[above] + values[above + 1]) / 2)
    return float(values[above])


def _distances(y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every segment [l, r]: its weighted median and weighted L1 distance to it."""
    n = len(y)
    medians = np.full((n, n), np.nan)
    distances = np.full((n, n), np.inf)
    for left in range(n):
        for right in range(left, n):
            values, weights = y[left:right + 1], w[left:right + 1]
            level = weighted_median(values, weights)
            medians[left, right] = level
            distances[left, right] = float(np.sum(weights * np.abs(values - level)))
    return medians, distances


def _best_partitions(distances: np.ndarray, max_segments: int) -> list[tuple[float, list[int]]]:
    """For k = 1..max_segments: the least total distance of a split into k segments, and the
    segments' exclusive right ends. Exact dynamic programming."""
    n = distances.shape[0]
    cost = np.full((max_segments + 1, n + 1), np.inf)
    back = np.zeros((max_segments + 1, n + 1), dtype=int)
    cost[0, 0] = 0.0
    for k in range(1, max_segments + 1):
        for end in range(k, n + 1):  # segment k covers [start, end)
            starts = np.arange(k - 1, end)
            totals = cost[k - 1, starts] + distances[starts, end - 1]
            best = int(np.argmin(totals))
            cost[k, end], back[k, end] = totals[best], starts[best]
    out = []
    for k in range(1, max_segments + 1):
        ends, end = [], n
        for level in range(k, 0, -1):
            ends.append(end)
            end = back[level, end]
        out.append((float(cost[k, n]), ends[::-1]))
    return out


def fit_levels(values: Sequence[float], weights: Sequence[float] | None = None, *,
               max_steps: int = MAX_STEPS) -> list[Segment]:
    """The piecewise-constant fit with the number of levels the information criterion picks.
    ``values`` must be finite; ``weights`` (relative, positive) default to equal."""
    y = np.asarray(values, dtype=float)
    if y.size == 0:
        return []
    if not np.all(np.isfinite(y)):
        raise ValueError("values must be finite: drop missing runs before fitting")
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != y.shape or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("weights must be positive and finite, one per value")
    w = w / np.median(w)
    n = len(y)
    medians, distances = _distances(y, w)
    beta = 4 * math.log(n) / n if n > 1 else 0.0
    floor = noise_floor(y)
    best, chosen, last_cost = math.inf, None, math.inf
    for cost, ends in _best_partitions(distances, min(max_steps + 1, n)):
        if cost >= last_cost - 1e-12 * max(1.0, last_cost):
            continue  # another level that fits no better (an exact fit split again) is no level
        last_cost = cost
        starts = [0, *ends[:-1]]
        levels = [medians[s, e - 1] for s, e in zip(starts, ends)]
        criterion = beta * len(ends) + math.log(floor + cost)
        if criterion < best - 1e-12:
            best, chosen = criterion, (starts, ends, levels)
    starts, ends, levels = chosen
    return [Segment(int(s), int(e), float(level), float(np.sum(w[s:e] * np.abs(y[s:e] - level)) / np.sum(w[s:e])))
            for s, e, level in zip(starts, ends, levels)]


def noise_floor(y: np.ndarray) -> float:
    """The least distance a fit is credited with: a tenth of the noise per run, the noise taken
    from successive differences (1.4826 MAD / sqrt 2: a level shift moves one difference, not
    the median), else a thousandth of the typical value when the runs repeat exactly. asv uses a
    tenth of the fit's smallest jump instead; solved exactly for every number of levels, that
    rewards splitting off a tiny jump (the floor shrinks with it) and overfits."""
    n = len(y)
    differences = np.abs(np.diff(y))
    noise = 1.4826 * float(np.median(differences)) / math.sqrt(2) if n > 1 else 0.0
    scale = noise if noise > 0 else 0.01 * float(np.median(np.abs(y)))
    return max(0.1 * scale * n, 1e-300)


def noise_scale(segments: Sequence[Segment]) -> float:
    """The noise of the whole history (asv's model: one amplitude throughout): the runs' mean
    absolute deviation from their levels, pooled over segments, as a standard deviation
    (x 1.2533, exact for Gaussian noise)."""
    runs = sum(s.end - s.start for s in segments)
    return 1.2533 * sum(s.spread * (s.end - s.start) for s in segments) / runs if runs else 0.0


def _without_wild_levels(segments: Sequence[Segment], noise: float, min_size: int) -> list[Segment]:
    """``segments`` with each level held by fewer than ``min_size`` runs between two at the same
    level (within the noise) merged into its neighbours: a wild run, not two steps (asv's rule)."""
    kept = list(segments)
    index = 1
    while index < len(kept) - 1:
        middle = kept[index]
        if middle.end - middle.start < min_size and abs(kept[index + 1].level - kept[index - 1].level) <= noise:
            before, after = kept[index - 1], kept[index + 1]
            merged = Segment(before.start, after.end, before.level, max(before.spread, after.spread))
            kept[index - 1:index + 2] = [merged]
            index = max(1, index - 1)
        else:
            index += 1
    return kept


def find_steps(segments: Sequence[Segment], *, higher_is_better: bool, threshold: float = 0.0,
               min_size: int = 2) -> list[Step]:
    """Every change of level larger than the history's noise (``noise_scale``) and than
    ``threshold`` times the earlier level, each marked a regression when it goes the worse way.
    Wild levels are no steps (``_without_wild_levels``); a short level at the end still counts,
    since the next run has not said yet whether it lasts."""
    noise = noise_scale(segments)
    kept = _without_wild_levels(segments, noise, min_size)
    steps = []
    for first, second in itertools.pairwise(kept):
        floor = max(noise, threshold * abs(first.level))
        if abs(second.level - first.level) <= floor:
            continue  # a level the fit needed, but no step worth reporting
        worse = (first.level - second.level) if higher_is_better else (second.level - first.level)
        steps.append(Step(first.end - 1, second.start, first.level, second.level, noise, regression=worse > floor))
    return steps


@dataclass(frozen=True)
class Regression:
    """A worsening still in force: the history was at ``level_before`` up to position ``before``,
    is at ``level_now`` now, and the change began between ``before`` and ``after``.
    ``confirmed``: the newest level is held by at least ``min_size`` runs (a single newest run
    may be a wild one)."""

    before: int
    after: int
    level_before: float
    level_now: float
    noise: float
    confirmed: bool

    @property
    def size(self) -> float:
        return self.level_now - self.level_before

    @property
    def relative(self) -> float:
        return self.size / abs(self.level_before) if self.level_before else math.nan


def regressions_in_force(segments: Sequence[Segment], *, higher_is_better: bool, threshold: float = 0.0,
                         min_size: int = 2) -> list[Regression]:
    """asv's rule for what is a regression *now*: walk back from the newest level, keeping a
    reference (first the newest level); an earlier level better than the reference by more than
    the noise and ``threshold`` times itself is a regression that began after it, and becomes the
    reference. So a decline in steps each below the threshold is found once it adds up, a full
    recovery leaves nothing, and a partial one leaves the original drop."""
    noise = noise_scale(segments)
    kept = _without_wild_levels(segments, noise, min_size)
    if len(kept) < 2:
        return []
    sign = 1.0 if higher_is_better else -1.0
    newest = kept[-1]
    confirmed = newest.end - newest.start >= min_size
    reference, found = newest.level, []
    for index in range(len(kept) - 2, -1, -1):
        earlier = kept[index]
        floor = max(noise, threshold * abs(earlier.level), 1e-12 * max(abs(earlier.level), abs(reference)))
        if sign * (earlier.level - reference) > floor:
            found.append(Regression(earlier.end - 1, kept[index + 1].start, earlier.level, newest.level, noise,
                                    confirmed))
            reference = earlier.level
    return found[::-1]


def wild_runs(segments: Sequence[Segment], *, min_size: int = 2) -> list[int]:
    """Positions of the runs in levels shorter than ``min_size`` that the history leaves again
    for the level it had before them (within the noise)."""
    noise = noise_scale(segments)
    return [position for before, middle, after in zip(segments, segments[1:], segments[2:])
            if middle.end - middle.start < min_size and abs(after.level - before.level) <= noise
            for position in range(middle.start, middle.end)]


def detect_steps(values: Sequence[float], weights: Sequence[float] | None = None, *, higher_is_better: bool,
                 threshold: float = 0.0, max_steps: int = MAX_STEPS, min_size: int = 2
                 ) -> tuple[list[Segment], list[Step]]:
    """The levels of a history and the steps between them. Wild runs (``wild_runs``) and a short
    level at the very end are fitted again with almost no weight: one run on a busy machine also
    distorts the criterion for the rest (its huge distance makes every small split look worth a
    level). The short level at the end is then kept as a level of its own: nobody knows yet
    whether it lasts, so it is reported at once."""
    segments = fit_levels(values, weights, max_steps=max_steps)
    wild = wild_runs(segments, min_size=min_size)
    latest = segments[-1] if len(segments) > 1 and segments[-1].end - segments[-1].start < min_size else None
    if wild or latest is not None:
        w = np.ones(len(values)) if weights is None else np.array(weights, dtype=float)
        w[wild] *= 1e-6
        if latest is not None:
            w[latest.start:latest.end] *= 1e-6
        segments = fit_levels(values, w, max_steps=max_steps)
        if latest is not None:
            y = np.asarray(values, dtype=float)
            kept = [s for s in segments if s.start < latest.start]
            last = kept[-1]
            span = slice(last.start, latest.start)
            spread = float(np.sum(w[span] * np.abs(y[span] - last.level)) / np.sum(w[span]))
            segments = [*kept[:-1], Segment(last.start, latest.start, last.level, spread), latest]
    return segments, find_steps(segments, higher_is_better=higher_is_better, threshold=threshold, min_size=min_size)
