"""Alpha spending for decisions taken at several looks (Lan and DeMets, 1983).

A verdict that is inconclusive gets more data and is looked at again. Testing each look at the
full level would let a null change through more often than promised, since every look is another
chance. A spending function ``f(t)`` says how much of the error budget may be used up by the time
a fraction ``t`` of the largest possible sample has been seen (``f(0) = 0``, ``f(1) = alpha``);
look ``k`` is tested at ``f(t_k) - f(t_{k-1})``. The looks' levels add up to at most ``alpha``, so
by the union bound the chance of any false claim over all looks is at most ``alpha`` whatever
test each look uses and however the looks' data overlap. (Group-sequential boundaries spend the
same budget less conservatively, but they assume normal increments; the union bound holds for the
exact sign-flip test the ratchet uses at any sample size.)

- ``pocock``: ``alpha ln(1 + (e - 1) t)``; spends early, so a first look keeps much of its power.
- ``obrien_fleming``: ``2 - 2 Phi(z_{1 - alpha/2} / sqrt(t))``; keeps almost everything for the
  last look, so early looks only decide overwhelming cases.
"""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from benchmark_assets.stats.lazy import scipy_stats

SPENDING = ("pocock", "obrien_fleming")


def spent(t: float, alpha: float, spending: str = "pocock") -> float:
    """The error budget used up once a fraction ``t`` (0..1) of the largest sample is seen."""
    if spending not in SPENDING:
        raise ValueError(f"spending {spending!r}: use one of {SPENDING}")
    t = min(max(float(t), 0.0), 1.0)
    if t == 0.0:
        return 0.0
    if t == 1.0:  # exactly the budget, whatever the rounding of the formulas below
        return float(alpha)
    if spending == "pocock":
        return alpha * math.log(1.0 + (math.e - 1.0) * t)
    return float(2.0 - 2.0 * scipy_stats().norm.cdf(scipy_stats().norm.ppf(1.0 - alpha / 2.0) / math.sqrt(t)))


def look_levels(sizes, budget: int, alpha: float, spending: str = "pocock") -> np.ndarray:
    """Each look's level, for looks at the cumulative sample ``sizes`` (increasing) out of at
    most ``budget``; they add up to ``spent(sizes[-1] / budget)``, which is ``alpha`` at the budget."""
    sizes = [int(n) for n in sizes]
    if any(b <= a for a, b in itertools.pairwise(sizes)) or not sizes or sizes[0] < 1 or sizes[-1] > budget:
        raise ValueError(f"look sizes {sizes} must increase from 1 up to the budget {budget}")
    cumulative = [spent(n / budget, alpha, spending) for n in sizes]
    return np.diff([0.0, *cumulative])


@functools.lru_cache(maxsize=4096)
def look_alpha(n: int, first: int, last: int, alpha: float, spending: str = "pocock") -> float:
    """The level of the look after ``n`` trials when a sample is looked at after every trial from
    ``first`` to ``last`` (``look_levels`` over those sizes): an interval at ``1 - look_alpha``
    at whichever look stops holds its ``alpha`` over all of them. A count outside the looks takes
    the nearest one's level (a point with more trials than ``last``, ingested ones say)."""
    first, last = int(first), int(last)
    if not 1 <= first <= last:
        raise ValueError(f"looks from {first} to {last} trials: they must run from 1 up")
    levels = look_levels(range(first, last + 1), last, alpha, spending)
    return float(levels[min(max(int(n), first), last) - first])
