"""Statistics that hold up: intervals, bootstrap, multiple-testing control. No Dagster here."""
from benchmark_assets.stats.intervals import (
    BootstrapResult,
    Description,
    bootstrap_mean,
    describe,
    t_interval,
)
from benchmark_assets.stats.multiple import CORRECTIONS, adjust_p_values, corrected_confidence_levels

__all__ = [
    "CORRECTIONS",
    "BootstrapResult",
    "Description",
    "adjust_p_values",
    "bootstrap_mean",
    "corrected_confidence_levels",
    "describe",
    "t_interval",
]
