"""The comparison's decision rules and verdict names: plain values shared by its decisions and its schemas."""
from __future__ import annotations

from dataclasses import dataclass

BETTER, WORSE, INCONCLUSIVE = "candidate_better", "candidate_worse", "inconclusive"
HIGHER, LOWER = "higher", "lower"


@dataclass(frozen=True)
class ComparisonRules:
    confidence_level: float = 0.95
    method: str = "bca"
    bootstrap_resamples: int = 10_000
    rng_seed: int = 0
    power: float = 0.8
    target_effect: float | None = None  # metric units; None: plan power for the observed effect
