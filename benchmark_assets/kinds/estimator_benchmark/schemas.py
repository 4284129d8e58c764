"""pandera schemas of the estimator benchmark's tables: catalog, trials, aggregates, leaderboard, pairs."""
from __future__ import annotations

import pandera.pandas as pa

from benchmark_assets.kinds.estimator_benchmark.spec import AGGREGATED, VERDICTS
from benchmark_assets.scenarios.templates import METRICS, TEMPLATES
from benchmark_assets.schemas import STATUSES, aggregate_schema, error_exactly_when_failed, number, provenance_columns


def catalog_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "dataset": pa.Column(str),
            "entry_id": pa.Column(str),
            "seed": pa.Column(int, pa.Check.ge(0)),
            "template": pa.Column(str, pa.Check.isin(list(TEMPLATES))),
            "metric_id": pa.Column(str, pa.Check.isin(list(METRICS))),
            "family": pa.Column(str, pa.Check.isin(sorted(set(METRICS.values())))),
            "axis": pa.Column(str),
            "axis_value": pa.Column(str),
            "centre": pa.Column(bool),
            "n_rows": pa.Column(int, pa.Check.ge(1)),
            "treated_share": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
            "true_ate": pa.Column(float),
            "rms_effect": pa.Column(float, pa.Check.ge(0)),
        },
        unique=["dataset"],
        strict=False,  # knobs, drivers and the outcome's summary ride along
    )


def trials_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "estimator": pa.Column(str),
            "dataset": pa.Column(str),
            "entry_id": pa.Column(str),
            **provenance_columns(),
            "seed": pa.Column(int, pa.Check.ge(0)),
            "template": pa.Column(str, pa.Check.isin(list(TEMPLATES))),
            "status": pa.Column(str, pa.Check.isin(STATUSES)),
            "error": pa.Column(str),
            "fit_seconds": number(pa.Check.ge(0)),
            "pehe": number(pa.Check.ge(0)),
            "pehe_normalised": number(pa.Check.ge(0)),
            "sign_accuracy": number(pa.Check.in_range(0.0, 1.0)),
            "coverage": number(pa.Check.in_range(0.0, 1.0)),
            "ate_covered": number(pa.Check.isin([0.0, 1.0])),
        },
        checks=[
            error_exactly_when_failed(),
            # Every successful trial has an average effect; a failed one has no metric at all.
            pa.Check(lambda df: df["ate_estimate"].notna() == (df["status"] == "ok"), name="scored_exactly_when_ok"),
        ],
        unique=["estimator", "dataset"],
        strict=False,
    )


def aggregates_schema() -> pa.DataFrameSchema:
    keys = {"estimator": pa.Column(str), "template": pa.Column(str), "metric_id": pa.Column(str),
            "knob": pa.Column(str), "knob_value": pa.Column(str)}
    schema = aggregate_schema(keys, unique=["estimator", "template", "metric_id", "knob", "knob_value", "metric"])
    return schema.update_column("metric", checks=[pa.Check.isin(list(AGGREGATED))])


def leaderboard_schema() -> pa.DataFrameSchema:
    interval = {}
    for metric in ("pehe_normalised", "ate_error_normalised", "qini"):
        interval |= {f"{metric}_iqm": number(), f"{metric}_low": number(), f"{metric}_high": number(),
                     f"{metric}_entries": pa.Column(int, pa.Check.ge(0))}
    return pa.DataFrameSchema(
        {"rank": pa.Column("Int64", pa.Check.ge(1), nullable=True), "estimator": pa.Column(str),
         "trials": pa.Column(int, pa.Check.ge(0)), "failed": pa.Column(int, pa.Check.ge(0)), **interval},
        checks=[pa.Check(lambda df, m=m: (df[f"{m}_low"] <= df[f"{m}_iqm"] + 1e-12) | df[f"{m}_low"].isna(),
                         name=f"{m}_interval_holds_its_estimate") for m in ("pehe_normalised", "ate_error_normalised")],
        unique=["estimator"],
        strict=False,
    )


def pairs_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "subject": pa.Column(str),
            "verdict": pa.Column(str, pa.Check.isin(list(VERDICTS))),
            "probability_better": number(pa.Check.in_range(0.0, 1.0)),
            "low": number(pa.Check.in_range(0.0, 1.0)),
            "high": number(pa.Check.in_range(0.0, 1.0)),
            "p_value": number(pa.Check.in_range(0.0, 1.0)),
            "reason": pa.Column(str, pa.Check.str_length(min_value=1)),
        },
        checks=[
            # A verdict always agrees with the interval shown beside it.
            pa.Check(lambda df: (df["verdict"] != "better") | (df["low"] > 0.5), name="better_only_above_one_half"),
            pa.Check(lambda df: (df["verdict"] != "worse") | (df["high"] < 0.5), name="worse_only_below_one_half"),
        ],
        unique=["subject"],
        strict=False,
    )
