"""The ratchet's decision rules: plain numbers, shared by the study format (its defaults) and the decisions."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecisionRules:
    improvement_threshold: float = 0.01
    sensitivity_threshold: float = 0.005
    cliff_safety_margin: float = 0.10  # fraction of the swept range
    cliff_drop: float = 0.02  # a cliff falls at least this much between neighbouring values ...
    cliff_steepness: float = 3.0  # ... and at least this many times the curve's median slope
    confidence_level: float = 0.95
    correction: str = "max_t"  # or holm, bonferroni, bh, none
    # max-T only: each tested change's bar on validation is lowered by this times its evidence on
    # train (kinds/ratchet/family.py); 0 weighs every change alike.
    train_weight: float = 0.25
    bootstrap_resamples: int = 10_000
    rng_seed: int = 0
