"""Numbers as a person reads them in the UI, a report or a history table."""
from __future__ import annotations

NOISE = 1e-9  # below this, a difference of floats is rounding, not a measured effect


def display_number(value: float, *, signed: bool = False) -> str:
    """4 significant digits, float noise (|x| < 1e-9) as 0; ``signed``: '+' before a positive."""
    if abs(value) < NOISE:
        return "0"
    return f"{value:+.4g}" if signed else f"{value:.4g}"
