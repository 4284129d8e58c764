"""pandera schemas of the load sweep's tables: trials and per-point aggregates."""
from __future__ import annotations

import pandera.pandas as pa

from benchmark_assets.schemas import STATUSES, aggregate_schema, error_exactly_when_failed, provenance_columns


def load_trials_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "sweep_point": pa.Column(str),
            "trial": pa.Column(int, pa.Check.ge(0)),
            **provenance_columns(),
            "parameters": pa.Column(str, pa.Check.str_startswith("{")),
            "trial_seed": pa.Column(int, pa.Check.ge(0)),
            "status": pa.Column(str, pa.Check.isin(STATUSES)),
            "error": pa.Column(str),
            "wall_seconds": pa.Column(float, pa.Check.ge(0)),
            "generator_cpu_seconds": pa.Column(float, pa.Check.ge(0)),
            "error_rate": pa.Column(float, pa.Check.in_range(0.0, 1.0), nullable=True),
        },
        checks=[error_exactly_when_failed()],
        unique=["sweep_point", "trial"],
        strict=False,  # every metric statistic is a column too
    )


def load_aggregates_schema() -> pa.DataFrameSchema:
    schema = aggregate_schema(
        {"sweep_point": pa.Column(str)}, unique=["sweep_point", "metric"],
        extra_checks=[pa.Check(lambda df: ~df["single_run"] | df["t_low"].isna(), name="single_run_has_no_interval")],
    )
    return schema.add_columns({"single_run": pa.Column(bool)})
