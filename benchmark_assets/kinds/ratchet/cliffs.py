"""Cliffs on a sweep curve: a fall between neighbouring values larger than a set drop."""
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
    values, means, *, drop_threshold: float, steepness: float = 3.0, maximize: bool = True
) -> list[Cliff]:
    """Adjacent swept values where the score gets worse by at least ``drop_threshold`` AND the
    fall is at least ``steepness`` times steeper (per unit of the constant) than the curve's
    median slope. The second test keeps an ordinary trend, such as the very improvement being
    proposed, from counting as a cliff; with only two values there is no cliff to tell apart."""
    order = np.argsort(np.asarray(values, float))
    xs = np.asarray(values, float)[order]
    ys = np.asarray(means, float)[order]
    if not maximize:
        ys = -ys
    steps = np.diff(ys)
    slopes = np.abs(steps) / np.diff(xs)
    finite = slopes[np.isfinite(slopes)]
    if finite.size < 2:
        return []
    typical = float(np.median(finite))
    cliffs = []
    for i, step in enumerate(steps):
        if not np.isfinite(step) or abs(step) < drop_threshold or slopes[i] < steepness * typical:
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
