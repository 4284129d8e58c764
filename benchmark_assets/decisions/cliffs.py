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


def find_cliffs(values, means, *, drop_threshold: float, maximize: bool = True) -> list[Cliff]:
    """Every adjacent pair of swept values whose score gets worse by at least ``drop_threshold``."""
    order = np.argsort(np.asarray(values, float))
    xs = np.asarray(values, float)[order]
    ys = np.asarray(means, float)[order]
    if not maximize:
        ys = -ys
    cliffs = []
    for i in range(len(xs) - 1):
        step = ys[i + 1] - ys[i]
        if np.isnan(step):
            continue
        if -step >= drop_threshold:
            cliffs.append(Cliff(edge=float(xs[i]), beyond=float(xs[i + 1]), drop=float(-step)))
        elif step >= drop_threshold:
            cliffs.append(Cliff(edge=float(xs[i + 1]), beyond=float(xs[i]), drop=float(step)))
    return cliffs


def nearest_cliff(value: float, cliffs: list[Cliff]) -> tuple[Cliff | None, float]:
    """The cliff whose edge is closest to ``value`` and that distance (inf without cliffs)."""
    if not cliffs:
        return None, float("inf")
    distances = [abs(value - cliff.edge) for cliff in cliffs]
    best = int(np.argmin(distances))
    return cliffs[best], float(distances[best])
