"""Schema pieces every kind shares: the statistics columns of aggregate tables and trial status checks."""
from __future__ import annotations

import pandera.pandas as pa

SPLITS = ["train", "validation"]
STATUSES = ["ok", "failed"]


def error_exactly_when_failed() -> pa.Check:
    return pa.Check(lambda df: (df["status"] == "ok") == (df["error"] == ""), name="error_exactly_when_failed",
                    error="a failed trial must record its error, a successful one none")


def provenance_columns() -> dict[str, pa.Column]:
    """What every stored trial carries (``kinds.base``): the fingerprint of what it was measured
    with, and its source, ``measured`` or ``inbox:<file>``. The machinery fills in both where a
    kind leaves them out; rows read from a result file are checked before they have a source."""
    return {"fingerprint": pa.Column(str, pa.Check.str_length(min_value=1)),
            "source": pa.Column(str, pa.Check.str_matches(r"^(measured|inbox:.+)$"), required=False)}


def number(*checks) -> pa.Column:
    return pa.Column(float, list(checks), nullable=True)


def aggregate_schema(keys: dict, unique: list[str], extra_checks=()) -> pa.DataFrameSchema:
    """The columns and checks every aggregate table shares (stats.aggregate_metrics), after ``keys``."""
    return pa.DataFrameSchema(
        {
            **keys,
            "metric": pa.Column(str),
            "n": pa.Column(int, pa.Check.ge(0)),
            "n_failed": pa.Column(int, pa.Check.ge(0)),
            "mean": number(), "std": number(pa.Check.ge(0)), "min": number(), "max": number(), "cv": number(),
            "se": number(pa.Check.ge(0)), "t_low": number(), "t_high": number(),
            "bootstrap_low": number(), "bootstrap_high": number(),
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
