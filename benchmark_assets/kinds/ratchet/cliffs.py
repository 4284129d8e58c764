"""Cliffs on a sweep curve: a fall between neighbouring values larger than a set drop that lands
below where the current value stands (or is steep and lands below it at all)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Cliff:
    """The curve falls by ``drop`` from ``edge`` (last good value) to ``beyond``.

    Where between the two the fall starts is unknown, so the edge itself is the boundary: a
    value at the edge may already sit on the brink."""

    edge: float
    beyond: float
    drop: float


def find_cliffs(
    values, means, *, drop_threshold: float, steepness: float = 3.0, maximize: bool = True,
    today: float | None = None, tolerance: float = 0.0,
) -> list[Cliff]:
    """Adjacent swept values where the score gets worse by at least ``drop_threshold``.

    Without ``today`` (the current value's score): the fall must also be at least ``steepness``
    times steeper (per unit of the constant) than the curve's median slope, so that an ordinary
    trend, such as the very improvement being proposed, does not count; two values show no cliff.

    With ``today``: a fall is a cliff when it lands at least ``drop_threshold`` below today's
    score (stepping past it loses more than the change could win), or when it is that steep and
    lands below today's score by more than ``tolerance`` at all. A fall that only returns to
    today's score (within ``tolerance``) is no cliff: it is the edge of the improvement, not a
    danger beyond what we have now."""
    order = np.argsort(np.asarray(values, float))
    xs = np.asarray(values, float)[order]
    ys = np.asarray(means, float)[order]
    if not maximize:
        ys = -ys
        today = None if today is None else -today
    steps = np.diff(ys)
    slopes = np.abs(steps) / np.diff(xs)
    finite = slopes[np.isfinite(slopes)]
    typical = float(np.median(finite)) if finite.size >= 2 else np.inf
    if today is None and finite.size < 2:
        return []
    cliffs = []
    for i, step in enumerate(steps):
        if not np.isfinite(step) or abs(step) < drop_threshold:
            continue
        steep = slopes[i] >= steepness * typical
        if today is None:
            if not steep:
                continue
        else:
            below = today - min(ys[i], ys[i + 1])  # how far under today's score the fall lands
            if not (below >= drop_threshold or (steep and below > tolerance)):
                continue
        if step < 0:
            cliffs.append(Cliff(edge=float(xs[i]), beyond=float(xs[i + 1]), drop=float(-step)))
        else:
            cliffs.append(Cliff(edge=float(xs[i + 1]), beyond=float(xs[i]), drop=float(step)))
    return cliffs


def nearest_cliff(value: float, cliffs: list[Cliff]) -> tuple[Cliff | None, float]:
    """The cliff whose edge is closest to ``value`` and that distance (inf without cliffs)."""
    if not cliffs:
        return None, float("inf")
    distances = [abs(value - cliff.edge) for cliff in cliffs]
    best = int(np.argmin(distances))
    return cliffs[best], float(distances[best])
