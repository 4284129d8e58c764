"""pandera schemas of the comparison's tables: trials, per-arm aggregates, comparison, variance analysis."""
from __future__ import annotations

import pandera.pandas as pa

from benchmark_assets.kinds.comparison.rules import BETTER, HIGHER, INCONCLUSIVE, LOWER, WORSE
from benchmark_assets.schemas import STATUSES, aggregate_schema, error_exactly_when_failed, provenance_columns


def comparison_trials_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "arm": pa.Column(str, pa.Check.isin(["control", "candidate"])),
            "seed": pa.Column(int, pa.Check.ge(0)),
            "trial_seed": pa.Column(int, pa.Check.ge(0)),
            "status": pa.Column(str, pa.Check.isin(STATUSES)),
            "error": pa.Column(str),
            "exit_code": pa.Column(int),
            "duration_seconds": pa.Column(float, pa.Check.ge(0)),
            "command": pa.Column(str, pa.Check.str_startswith("[")),
            "git_commit": pa.Column(str, pa.Check.str_length(min_value=1)),
            **provenance_columns(),
            "curves_json": pa.Column(str),
        },
        checks=[error_exactly_when_failed()],
        unique=["arm", "seed"],
        strict=False,  # every scalar metric the command reports is a column too
    )


def arm_aggregates_schema() -> pa.DataFrameSchema:
    return aggregate_schema({"arm": pa.Column(str, pa.Check.isin(["control", "candidate"]))}, unique=["arm", "metric"])


def comparison_schema() -> pa.DataFrameSchema:
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
