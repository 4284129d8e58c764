"""pandera schemas of the acceptance suite's tables: trials and verdicts."""
from __future__ import annotations

import pandera.pandas as pa

from benchmark_assets.kinds.acceptance.spec import MEASURED, ROUNDS, SIDES, SUMMARY
from benchmark_assets.schemas import STATUSES, error_exactly_when_failed, provenance_columns
from benchmark_assets.stats.acceptance import VERDICTS


def trials_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "benchmark": pa.Column(str),
            "repeat": pa.Column(int, pa.Check.ge(0)),
            "side": pa.Column(str, pa.Check.isin(list(SIDES))),
            "round": pa.Column(int, pa.Check.ge(0)),
            "form": pa.Column(str, pa.Check.isin([MEASURED, ROUNDS, SUMMARY])),
            "position": pa.Column(int, pa.Check.isin([-1, 0, 1])),  # -1: read from pytest-benchmark
            "calls": pa.Column(int, pa.Check.ge(1)),
            "trial_seed": pa.Column(int, pa.Check.ge(0)),
            "status": pa.Column(str, pa.Check.isin(STATUSES)),
            "error": pa.Column(str),
            **provenance_columns(),
            "wall_time": pa.Column(float, pa.Check.ge(0), nullable=True),
            "wall_time_p50": pa.Column(float, pa.Check.ge(0), nullable=True),
            "wall_time_p95": pa.Column(float, pa.Check.ge(0), nullable=True),
            "peak_memory": pa.Column(float, pa.Check.ge(0), nullable=True),
        },
        checks=[
            error_exactly_when_failed(),
            pa.Check(lambda df: df["wall_time"].notna() == (df["status"] == "ok"), name="timed_exactly_when_ok"),
            # Each repeat's two sides are measured back to back, one first and one second.
            pa.Check(lambda df: (df["position"] < 0)
                     | (df.groupby(["benchmark", "repeat"])["position"].transform("nunique")
                        == df.groupby(["benchmark", "repeat"])["position"].transform("size")),
                     name="sides_take_turns"),
        ],
        unique=["benchmark", "repeat", "side", "round"],
        strict=False,  # every metric the sides return is a column too
    )


def verdicts_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "benchmark": pa.Column(str),
            "criterion": pa.Column(str),
            "subject": pa.Column(str),
            "n_pairs": pa.Column(int, pa.Check.ge(0)),
            "ci_low": pa.Column(float, nullable=True),
            "ci_high": pa.Column(float, nullable=True),
            "p_value": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
            "p_adjusted": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
            "verdict": pa.Column(str, pa.Check.isin(list(VERDICTS))),
            "reason": pa.Column(str, pa.Check.str_length(min_value=1)),
            "sides_ran": pa.Column(bool),
        },
        checks=[
            pa.Check(lambda df: (df["ci_low"] <= df["ci_high"]) | df["ci_low"].isna(), name="interval_ordered"),
            pa.Check(lambda df: df["sides_ran"] | (df["verdict"] == "inconclusive"),
                     name="decided_only_when_every_side_ran"),
            # met: the whole interval inside the region; not_met: wholly outside it.
            pa.Check(lambda df: (df["verdict"] != "met")
                     | ((df["ci_low"] >= df["region_low"]) & (df["ci_high"] <= df["region_high"])),
                     name="met_only_when_the_interval_is_inside"),
            pa.Check(lambda df: (df["verdict"] != "not_met")
                     | (df["ci_low"] > df["region_high"]) | (df["ci_high"] < df["region_low"]),
                     name="not_met_only_when_the_interval_is_outside"),
        ],
        unique=["subject"],
        strict=False,
    )
