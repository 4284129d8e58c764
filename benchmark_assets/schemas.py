"""pandera schemas of every table the study assets produce."""
from __future__ import annotations

import pandera.pandas as pa

from benchmark_assets.studies.spec import Study

_SPLITS = ["train", "validation"]


def scenario_catalog_schema() -> pa.DataFrameSchema:
    from benchmark_assets.scenarios.parametric import ACCESS_PATTERNS, IMPORTANCE_SHAPES

    return pa.DataFrameSchema(
        {
            "seed_id": pa.Column(int, pa.Check.ge(0)),
            "name": pa.Column(str),
            "split": pa.Column(str, pa.Check.isin(_SPLITS)),
            "record_count": pa.Column(int, pa.Check.in_range(5, 100)),
            "importance_shape": pa.Column(str, pa.Check.isin(list(IMPORTANCE_SHAPES))),
            "access_pattern": pa.Column(str, pa.Check.isin(list(ACCESS_PATTERNS))),
            "outcome_frequency": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
            "noise_ratio": pa.Column(float, pa.Check.in_range(0.0, 0.5)),
            "link_density": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
            "age_spread_days": pa.Column(int, pa.Check.in_range(1, 365)),
            "relevant_count": pa.Column(int, pa.Check.ge(3)),
        },
        unique=["seed_id"],
        strict=True,
    )


def trials_schema(study: Study) -> pa.DataFrameSchema:
    metrics = study.target.metrics or (study.spec.metric,)
    metric_columns = {
        metric: pa.Column(
            float,
            pa.Check.in_range(*study.target.metric_bounds[metric]) if metric in study.target.metric_bounds else [],
            nullable=True,
        )
        for metric in metrics
    }
    return pa.DataFrameSchema(
        {
            "sweep_point": pa.Column(str),
            "seed_id": pa.Column(int, pa.Check.ge(0)),
            "trial_index": pa.Column(int, pa.Check.ge(0)),
            "split": pa.Column(str, pa.Check.isin(_SPLITS)),
            "constant": pa.Column(str),
            "value": pa.Column(float, nullable=True),
            "trial_seed": pa.Column(int),
            "status": pa.Column(str, pa.Check.isin(["ok", "failed"])),
            "error": pa.Column(str),
            "duration_seconds": pa.Column(float, pa.Check.ge(0)),
            **metric_columns,
        },
        checks=[
            pa.Check(
                lambda df: (df["status"] != "ok") | df[study.spec.metric].notna(),
                name=f"ok_trials_have_{study.spec.metric}",
                error=f"a successful trial must report {study.spec.metric}",
            ),
            pa.Check(
                lambda df: (df["status"] != "failed") | (df["error"].str.len() > 0),
                name="failed_trials_have_error",
                error="a failed trial must record its error",
            ),
        ],
        unique=["sweep_point", "seed_id", "trial_index"],
        strict=False,  # a user's target may report extra metrics
    )


def _number(*checks) -> pa.Column:
    return pa.Column(float, list(checks), nullable=True)


def _aggregate_schema(keys: dict, unique: list[str], extra_checks=()) -> pa.DataFrameSchema:
    """The columns and checks every aggregate table shares (stats.aggregate_metrics), after ``keys``."""
    return pa.DataFrameSchema(
        {
            **keys,
            "metric": pa.Column(str),
            "n": pa.Column(int, pa.Check.ge(0)),
            "n_failed": pa.Column(int, pa.Check.ge(0)),
            "mean": _number(), "std": _number(pa.Check.ge(0)), "min": _number(), "max": _number(), "cv": _number(),
            "se": _number(pa.Check.ge(0)), "t_low": _number(), "t_high": _number(),
            "bootstrap_low": _number(), "bootstrap_high": _number(),
        },
        checks=[
            pa.Check(lambda df: (df["min"] <= df["mean"] + 1e-12) | df["mean"].isna(), name="min_le_mean"),
            pa.Check(lambda df: (df["mean"] <= df["max"] + 1e-12) | df["mean"].isna(), name="mean_le_max"),
            pa.Check(lambda df: (df["t_low"] <= df["t_high"]) | df["t_low"].isna(), name="t_interval_ordered"),
            *extra_checks,
        ],
        unique=unique,
        strict=True,
    )


def aggregates_schema() -> pa.DataFrameSchema:
    return _aggregate_schema(
        {"sweep_point": pa.Column(str), "constant": pa.Column(str), "value": _number(),
         "split": pa.Column(str, pa.Check.isin(["train", "validation", "all"]))},
        unique=["sweep_point", "split", "metric"],
    )


def verdicts_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "constant": pa.Column(str),
            "tier": pa.Column(int, pa.Check.ge(1)),
            "current": pa.Column(float),
            "proposed": pa.Column(float),
            "decision": pa.Column(str, pa.Check.isin(["accept", "reject", "no_sensitivity"])),
            "reason": pa.Column(str, pa.Check.str_length(min_value=1)),
            "cliff_warning": pa.Column(str),
            "p_value": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
            "p_adjusted": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
            "train_delta": pa.Column(float, nullable=True),
            "validation_delta": pa.Column(float, nullable=True),
            "n_validation": pa.Column(int, pa.Check.ge(0)),
        },
        checks=[
            pa.Check(
                lambda df: (df["decision"] != "accept") | (df["corrected_ci_low"] > 0),
                name="accepted_change_has_corrected_interval_above_zero",
            )
        ],
        unique=["constant"],
        strict=False,
    )


def comparison_trials_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "arm": pa.Column(str, pa.Check.isin(["control", "candidate"])),
            "seed": pa.Column(int, pa.Check.ge(0)),
            "trial_seed": pa.Column(int, pa.Check.ge(0)),
            "status": pa.Column(str, pa.Check.isin(["ok", "failed"])),
            "error": pa.Column(str),
            "exit_code": pa.Column(int),
            "duration_seconds": pa.Column(float, pa.Check.ge(0)),
            "command": pa.Column(str, pa.Check.str_startswith("[")),
            "git_commit": pa.Column(str, pa.Check.str_length(min_value=1)),
            "arm_fingerprint": pa.Column(str, pa.Check.str_length(16, 16)),
            "curves_json": pa.Column(str),
        },
        checks=[pa.Check(lambda df: (df["status"] == "ok") == (df["error"] == ""), name="error_exactly_when_failed",
                         error="a failed trial must record its error, a successful one none")],
        unique=["arm", "seed"],
        strict=False,  # every scalar metric the command reports is a column too
    )


def arm_aggregates_schema() -> pa.DataFrameSchema:
    return _aggregate_schema({"arm": pa.Column(str, pa.Check.isin(["control", "candidate"]))}, unique=["arm", "metric"])


def comparison_schema() -> pa.DataFrameSchema:
    from benchmark_assets.decisions.comparison import BETTER, HIGHER, INCONCLUSIVE, LOWER, WORSE

    return pa.DataFrameSchema(
        {
            "metric": pa.Column(str),
            "is_decision_metric": pa.Column(bool),
            "n_control": pa.Column(int, pa.Check.ge(0)),
            "n_candidate": pa.Column(int, pa.Check.ge(0)),
            "ci_low": pa.Column(float, nullable=True),
            "ci_high": pa.Column(float, nullable=True),
            "p_bootstrap": pa.Column(float, pa.Check.in_range(0.0, 1.0), nullable=True),
            "p_t": pa.Column(float, pa.Check.in_range(0.0, 1.0), nullable=True),
            "achieved_power": pa.Column(float, pa.Check.in_range(0.0, 1.0), nullable=True),
            "verdict": pa.Column(str, pa.Check.isin([BETTER, WORSE, INCONCLUSIVE, HIGHER, LOWER])),
            "reason": pa.Column(str, pa.Check.str_length(min_value=1)),
        },
        checks=[
            pa.Check(lambda df: df["is_decision_metric"].sum() == 1, name="exactly_one_decision_metric"),
            pa.Check(lambda df: (df["ci_low"] <= df["ci_high"]) | df["ci_low"].isna(), name="interval_ordered"),
            pa.Check(lambda df: ~df["verdict"].isin([BETTER, WORSE, HIGHER, LOWER])
                     | (df["ci_low"] > 0) | (df["ci_high"] < 0), name="decided_only_when_interval_excludes_zero"),
        ],
        unique=["metric"],
        strict=False,
    )


def variance_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "arm": pa.Column(str, pa.Check.isin(["control", "candidate"])),
            "n": pa.Column(int, pa.Check.ge(2)),
            "cv": pa.Column(float, pa.Check.ge(0), nullable=True),
            "cv_low": pa.Column(float, nullable=True),
            "cv_high": pa.Column(float, nullable=True),
            "stable_n": pa.Column(int),  # -1: not stable at any measured n
        },
        unique=["arm", "n"],
        strict=True,
    )


def load_trials_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "sweep_point": pa.Column(str),
            "trial": pa.Column(int, pa.Check.ge(0)),
            "parameters": pa.Column(str, pa.Check.str_startswith("{")),
            "trial_seed": pa.Column(int, pa.Check.ge(0)),
            "status": pa.Column(str, pa.Check.isin(["ok", "failed"])),
            "error": pa.Column(str),
            "wall_seconds": pa.Column(float, pa.Check.ge(0)),
            "generator_cpu_seconds": pa.Column(float, pa.Check.ge(0)),
            "error_rate": pa.Column(float, pa.Check.in_range(0.0, 1.0), nullable=True),
        },
        checks=[pa.Check(lambda df: (df["status"] == "ok") == (df["error"] == ""), name="error_exactly_when_failed",
                         error="a failed trial must record its error, a successful one none")],
        unique=["sweep_point", "trial"],
        strict=False,  # every metric statistic is a column too
    )


def load_aggregates_schema() -> pa.DataFrameSchema:
    schema = _aggregate_schema(
        {"sweep_point": pa.Column(str)}, unique=["sweep_point", "metric"],
        extra_checks=[pa.Check(lambda df: ~df["single_run"] | df["t_low"].isna(), name="single_run_has_no_interval")],
    )
    return schema.add_columns({"single_run": pa.Column(bool)})
