"""Scenario factories: each turns a seed id into a deterministic test case."""
from benchmark_assets.scenarios.parametric import (
    ACCESS_PATTERNS,
    IMPORTANCE_SHAPES,
    AxisRanges,
    Scenario,
    ScenarioSeed,
    build_scenario,
    default_seeds,
    split_seed_ids,
)

__all__ = [
    "ACCESS_PATTERNS",
    "IMPORTANCE_SHAPES",
    "AxisRanges",
    "Scenario",
    "ScenarioSeed",
    "build_scenario",
    "default_seeds",
    "split_seed_ids",
]
