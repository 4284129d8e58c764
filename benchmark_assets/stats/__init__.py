"""Statistics that hold up: bootstrap, t-tests, power, variance curves, curve summaries. No Dagster here."""
from benchmark_assets.stats.across_tasks import (
    AGGREGATES,
    iqm,
    mean_score,
    optimality_gap,
    probability_of_improvement,
    stratified_bootstrap_ci,
)
from benchmark_assets.stats.bootstrap import (
    ALTERNATIVES,
    METHODS,
    BootstrapResult,
    Interval,
    bootstrap_ci,
    bootstrap_difference,
    resampled_statistic,
    result_from_distribution,
    sorted_quantiles,
)
from benchmark_assets.stats.coverage import coverage_markdown, interval_coverage
from benchmark_assets.stats.curves import CurveError, CurveSpec, auc, last_n_mean, slope, summarise_curve, window_start
from benchmark_assets.stats.intervals import Description, describe, t_interval
from benchmark_assets.stats.multiple import CORRECTIONS, adjust_p_values, corrected_confidence_levels
from benchmark_assets.stats.power import achieved_power, required_n, standardised_effect
from benchmark_assets.stats.steps import Segment, Step, detect_steps, fit_levels
from benchmark_assets.stats.ttests import AssumptionCheck, TTestResult, paired_ttest, welch_ttest
from benchmark_assets.stats.variance import VarianceCurve, smallest_stable_n, variance_curve

__all__ = [
    "AGGREGATES",
    "ALTERNATIVES",
    "CORRECTIONS",
    "METHODS",
    "AssumptionCheck",
    "BootstrapResult",
    "CurveError",
    "CurveSpec",
    "Description",
    "Interval",
    "Segment",
    "Step",
    "TTestResult",
    "VarianceCurve",
    "achieved_power",
    "adjust_p_values",
    "auc",
    "bootstrap_ci",
    "bootstrap_difference",
    "corrected_confidence_levels",
    "coverage_markdown",
    "describe",
    "detect_steps",
    "fit_levels",
    "interval_coverage",
    "iqm",
    "last_n_mean",
    "mean_score",
    "optimality_gap",
    "paired_ttest",
    "probability_of_improvement",
    "required_n",
    "resampled_statistic",
    "result_from_distribution",
    "slope",
    "smallest_stable_n",
    "sorted_quantiles",
    "standardised_effect",
    "stratified_bootstrap_ci",
    "summarise_curve",
    "t_interval",
    "variance_curve",
    "welch_ttest",
    "window_start",
]
