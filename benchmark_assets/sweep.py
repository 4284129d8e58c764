"""Sweep points: the named settings under test (a constant's value, a load, an arm), shared by every kind."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar

CURRENT_POINT = "current"


def format_value(value) -> str:
    """Shortest exact text of a value (``0.3``, ``5``) for keys, labels and reports."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    as_float = float(value)
    return str(int(as_float)) if as_float.is_integer() and abs(as_float) < 1e15 else repr(as_float)


def point_key(constant: str, value) -> str:
    return f"{constant}={format_value(value)}"


@dataclass(frozen=True)
class ConstantSweep:
    """One constant under test: its current value and every value swept (current included, sorted)."""

    name: str
    tier: int
    current: float
    values: tuple[float, ...]
    # Whether the values form a curve a cliff can lie on (a search's proposal against today's
    # values is two settings of several constants, not a curve).
    curve: ClassVar[bool] = True

    def key_for(self, value) -> str:
        return CURRENT_POINT if value == self.current else point_key(self.name, value)

    @property
    def swept_range(self) -> float:
        return float(max(self.values) - min(self.values))


@dataclass(frozen=True)
class SweepPoint:
    """One setting under test: its partition key (``decay_rate=0.1``, ``concurrency=8``, ``control``)
    and the parameters a trial runs with. A ratchet point also names the one constant it moves
    (``constant``, ``value``); its ``current`` point moves none."""

    key: str
    params: dict
    constant: str | None = None
    value: float | None = None


def sweep_grid(swept: dict[str, list]) -> list[SweepPoint]:
    """Every combination of the swept lists, in the order the lists give; keys name each value
    (``concurrency=8,output_tokens=64``), or ``fixed`` when nothing is swept."""
    names = list(swept)
    combos = list(itertools.product(*(swept[n] for n in names))) if names else [()]
    return [SweepPoint(key=",".join(point_key(n, v) for n, v in zip(names, combo)) or "fixed", params=dict(zip(names, combo)))
            for combo in combos]
