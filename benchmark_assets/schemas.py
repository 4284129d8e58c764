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


def _rule(check) -> str:
    """One pandera check in words: 'x >= 0', '0 <= x <= 1', 'one of ok, failed', or its name."""
    stats, name = check.statistics or {}, check.name
    if name == "greater_than_or_equal_to":
        return f">= {stats['min_value']:g}" if isinstance(stats["min_value"], (int, float)) else f">= {stats['min_value']}"
    if name == "greater_than":
        return f"> {stats['min_value']:g}"
    if name == "less_than_or_equal_to":
        return f"<= {stats['max_value']:g}"
    if name == "less_than":
        return f"< {stats['max_value']:g}"
    if name == "in_range":
        low = "<=" if stats.get("include_min", True) else "<"
        high = "<=" if stats.get("include_max", True) else "<"
        return f"{stats['min_value']:g} {low} x {high} {stats['max_value']:g}"
    if name == "isin":
        return "one of " + ", ".join(str(v) for v in stats["allowed_values"])
    if name == "str_length" and stats.get("min_value") == 1 and stats.get("max_value") is None:
        return "not empty"
    if name == "str_matches":
        return f"matches {stats['pattern']}"
    return (check.error or name or "a custom check").replace("_", " ")


def _type(dtype) -> str:
    text = str(dtype)
    return {"string[python]": "text", "int64": "integer", "float64": "number", "bool": "true/false"}.get(text, text)


def describe_schema(schema) -> str:
    """A pandera DataFrameSchema as the rules a person checks a failure against, in one paragraph:
    'columns: seed_id (integer, >= 0), ndcg_5 (number, 0 <= x <= 1, may be empty), ...; each
    (sweep_point, seed_id) once; rows: a failed trial must record its error, ...'."""
    columns = []
    for name, column in schema.columns.items():
        parts = [_type(column.dtype), *(_rule(c) for c in column.checks)]
        if column.nullable:
            parts.append("may be empty")
        if column.unique:
            parts.append("unique")
        if not column.required:
            parts.append("optional")
        columns.append(f"{name} ({', '.join(parts)})")
    text = "columns: " + ", ".join(columns)
    unique = schema.unique if isinstance(schema.unique, list) else [schema.unique] if schema.unique else []
    if unique:
        text += f"; each ({', '.join(unique)}) once"
    if schema.checks:
        text += "; rows: " + "; ".join(_rule(c) for c in schema.checks)
    if schema.strict:
        text += "; no other columns"
    return text
