"""pandera schemas of the ratchet's tables: scenario catalog, trials, aggregates, verdicts."""
from __future__ import annotations

import pandera.pandas as pa

from benchmark_assets.scenarios.parametric import ACCESS_PATTERNS, IMPORTANCE_SHAPES
from benchmark_assets.schemas import SPLITS, STATUSES, aggregate_schema, number, provenance_columns


def scenario_catalog_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "seed_id": pa.Column(int, pa.Check.ge(0)),
            "name": pa.Column(str),
            "split": pa.Column(str, pa.Check.isin(SPLITS)),
            "round": pa.Column(int, pa.Check.ge(0)),
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


def trials_schema(study) -> pa.DataFrameSchema:
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
            "split": pa.Column(str, pa.Check.isin(SPLITS)),
            "constant": pa.Column(str),
            "value": pa.Column(float, nullable=True),
            "trial_seed": pa.Column(int),
            "status": pa.Column(str, pa.Check.isin(STATUSES)),
            "error": pa.Column(str),
            "duration_seconds": pa.Column(float, pa.Check.ge(0)),
            **provenance_columns(),
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


def aggregates_schema() -> pa.DataFrameSchema:
    return aggregate_schema(
        {"sweep_point": pa.Column(str), "constant": pa.Column(str), "value": number(),
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
            "decision": pa.Column(str, pa.Check.isin(["accept", "reject", "no_sensitivity", "inconclusive"])),
            "reason": pa.Column(str, pa.Check.str_length(min_value=1)),
            "cliff_warning": pa.Column(str),
            "p_value": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
            "p_adjusted": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
            "train_delta": pa.Column(float, nullable=True),
            "validation_delta": pa.Column(float, nullable=True),
            "n_validation": pa.Column(int, pa.Check.ge(0)),
            "tested": pa.Column(bool),
            "family_size": pa.Column(int, pa.Check.ge(0)),
        },
        checks=[
            pa.Check(
                lambda df: (df["decision"] != "accept") | (df["corrected_ci_low"] > 0),
                name="accepted_change_has_corrected_interval_above_zero",
            ),
            pa.Check(
                lambda df: (df["decision"] != "accept") | df["tested"].astype(bool),
                name="accepted_change_was_tested_on_validation",
            ),
        ],
        unique=["constant"],
        strict=False,
    )


def interactions_schema() -> pa.DataFrameSchema:
    probability = pa.Column(float, pa.Check.in_range(0.0, 1.0))
    return pa.DataFrameSchema(
        {
            "pair": pa.Column(str),
            "first": pa.Column(str),
            "second": pa.Column(str),
            "first_value": pa.Column(float),
            "second_value": pa.Column(float),
            "decision": pa.Column(str, pa.Check.isin(["accept", "reject", "no_interaction"])),
            "reason": pa.Column(str, pa.Check.str_length(min_value=1)),
            "p_value": probability,
            "p_adjusted": probability,
            "n_validation": pa.Column(int, pa.Check.ge(0)),
        },
        checks=[
            pa.Check(lambda df: (df["decision"] != "accept") | ((df["first_ci_low"] > 0) & (df["second_ci_low"] > 0)
                                                               & (df["current_ci_low"] > 0)),
                     name="accepted_pair_beats_both_single_changes_and_today"),
        ],
        unique=["pair"],
        strict=False,
    )


def cumulative_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "step": pa.Column(int, pa.Check.ge(1)),
            "change": pa.Column(str),
            "decision": pa.Column(str, pa.Check.isin(["keep", "drop", "superseded", "pending"])),
            "combination": pa.Column(str),
            "marginal_delta": pa.Column(float, nullable=True),
            "reason": pa.Column(str, pa.Check.str_length(min_value=1)),
        },
        checks=[pa.Check(lambda df: (df["decision"] == "pending").sum() <= 1, name="at_most_one_pending_step")],
        unique=["step"],
        strict=False,
    )


def search_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "number": pa.Column(int, pa.Check.ge(0)),
            "state": pa.Column(str, pa.Check.isin(["running", "complete", "failed", "waiting", "pruned"])),
            "sweep_point": pa.Column(str),
            "best": pa.Column(bool),
            "validated": pa.Column(bool),
        },
        checks=[pa.Check(lambda df: df["best"].sum() <= 1 or df.loc[df["best"], "sweep_point"].nunique() == 1,
                         name="one_best_proposal")],
        strict=False,
    )
