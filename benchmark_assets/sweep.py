"""Sweep points: the named settings under test, shared by the spec, the assets and the decisions."""
from __future__ import annotations

from dataclasses import dataclass

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

    def key_for(self, value) -> str:
        return CURRENT_POINT if value == self.current else point_key(self.name, value)

    @property
    def swept_range(self) -> float:
        return float(max(self.values) - min(self.values))


@dataclass(frozen=True)
class SweepPoint:
    """One setting under test: ``current`` (every constant at its current value) or one override."""

    key: str
    constant: str | None
    value: float | None
    params: dict
