"""Verdicts and ratchet decisions: pure functions on DataFrames, no Dagster."""
from benchmark_assets.decisions.cliffs import Cliff, find_cliffs
from benchmark_assets.decisions.ratchet import (
    DecisionRules,
    decide_ratchet,
    format_ratchet_report,
    metric_table,
    proposed_study_patch,
    summarise_verdicts,
)
from benchmark_assets.decisions.sensitivity import paired_gain_curves

__all__ = [
    "Cliff",
    "DecisionRules",
    "decide_ratchet",
    "find_cliffs",
    "format_ratchet_report",
    "metric_table",
    "paired_gain_curves",
    "proposed_study_patch",
    "summarise_verdicts",
]
