"""The ledger: one append-only table of every decision any study made, one typed record for all kinds.

Rows are never rewritten. A ledger written by an earlier version (ratchet-shaped columns:
constant, current, proposed, validation_delta, ...) is migrated in place the first time it is
opened: its table is renamed ``ledger_v1`` (kept, nothing dropped) and its rows are copied into
the new shape.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import sqlalchemy as sa

from benchmark_assets.warehouse import Warehouse

LEDGER_TABLE = "ledger"
LEGACY_TABLE = "ledger_v1"


@dataclass(frozen=True)
class LedgerEntry:
    """One decision, in words every kind shares. ``subject`` is what was decided about (a
    constant, the changed arm parameters, a sweep point, a criterion); ``baseline`` and
    ``proposal`` are JSON-able (a number or a mapping of parameters). The interval is at
    ``confidence_level``; the adjusted one is corrected for the decisions made together (equal
    to it when one decision is made). ``details`` holds what only this kind knows."""

    subject: str
    decision: str
    reason: str
    metric: str
    baseline: Any = None
    proposal: Any = None
    effect: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    adjusted_ci_low: float = math.nan
    adjusted_ci_high: float = math.nan
    confidence_level: float = math.nan
    p_value: float = math.nan
    p_adjusted: float = math.nan
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Provenance:
    """Where a decision came from: the study, its kind, the code and file it ran with, the run."""

    study: str
    kind: str
    git_commit: str
    study_hash: str
    run_id: str
    decided_at: str


_FLOATS = ("baseline_value", "proposal_value", "effect", "ci_low", "ci_high", "adjusted_ci_low", "adjusted_ci_high",
           "confidence_level", "p_value", "p_adjusted")
LEDGER_COLUMNS = ("study", "kind", "subject", "baseline", "proposal", "decision", "reason", "metric", *_FLOATS,
                  "details", "git_commit", "study_hash", "run_id", "decided_at")


def ledger_schema() -> pa.DataFrameSchema:
    probability = pa.Column(float, pa.Check.in_range(0.0, 1.0), nullable=True)
    return pa.DataFrameSchema(
        {
            **{name: pa.Column(str, pa.Check.str_length(min_value=1))
               for name in ("study", "kind", "subject", "decision", "reason", "git_commit", "study_hash", "run_id",
                            "decided_at")},
            "baseline": pa.Column(str), "proposal": pa.Column(str), "metric": pa.Column(str),
            **{name: pa.Column(float, nullable=True) for name in _FLOATS},
            "confidence_level": pa.Column(float, pa.Check.in_range(0.0, 1.0, include_min=False), nullable=True),
            "p_value": probability, "p_adjusted": probability,
            "details": pa.Column(str, pa.Check.str_startswith("{")),
        },
        checks=[pa.Check(lambda df: (df["ci_low"] <= df["ci_high"]) | df["ci_low"].isna() | df["ci_high"].isna(),
                         name="interval_ordered")],
        strict=True,
    )


def _json(value) -> str:
    if value is None:
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    return json.dumps(value, sort_keys=True, default=str)


def _number(value) -> float:
    """A baseline or proposal as one number, when it is one (NaN for parameter mappings)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return math.nan
    return float(value)


def ledger_rows(entries, provenance: Provenance) -> pd.DataFrame:
    """The ledger rows of ``entries`` with their provenance, checked against the ledger schema."""
    rows = []
    for entry in entries:
        values = asdict(entry)
        rows.append({
            **{k: getattr(provenance, k) for k in ("study", "kind")},
            "subject": entry.subject, "baseline": _json(entry.baseline), "proposal": _json(entry.proposal),
            "decision": entry.decision, "reason": entry.reason, "metric": entry.metric,
            "baseline_value": _number(entry.baseline), "proposal_value": _number(entry.proposal),
            **{k: float(values[k]) for k in _FLOATS if k in values},
            "details": json.dumps(entry.details, sort_keys=True, default=str),
            **{k: getattr(provenance, k) for k in ("git_commit", "study_hash", "run_id", "decided_at")},
        })
    frame = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))
    for column in _FLOATS:
        frame[column] = frame[column].astype(float)
    return ledger_schema().validate(frame)


def _from_legacy(old: pd.DataFrame) -> pd.DataFrame:
    """Rows of the ratchet-shaped ledger in the new shape. Comparison rows (they carry
    control_params) become kind comparison with the arms' parameters as baseline and proposal."""
    def col(name):
        return old[name] if name in old.columns else pd.Series([None] * len(old), index=old.index, dtype=object)

    comparison = col("control_params").notna() & (col("control_params").astype(str) != "")
    numbers = {name: pd.to_numeric(col(name), errors="coerce").astype(float)
               for name in ("current", "proposed", "validation_delta", "ci_low", "ci_high", "corrected_ci_low",
                            "p_adjusted", "train_delta", "tier")}
    frame = pd.DataFrame({
        "study": col("study").astype(str), "kind": np.where(comparison, "comparison", "ratchet"),
        "subject": col("constant").fillna("").astype(str),
        "baseline": np.where(comparison, col("control_params").astype(str), numbers["current"].map(_json_number)),
        "proposal": np.where(comparison, col("candidate_params").astype(str), numbers["proposed"].map(_json_number)),
        "decision": col("decision").astype(str), "reason": col("reason").fillna("").astype(str),
        "metric": col("metric").fillna("").astype(str),
        "baseline_value": np.where(comparison, np.nan, numbers["current"]),
        "proposal_value": np.where(comparison, np.nan, numbers["proposed"]),
        "effect": numbers["validation_delta"], "ci_low": numbers["ci_low"], "ci_high": numbers["ci_high"],
        # The old ledger kept only the lower corrected bound; a comparison's equalled its plain interval.
        "adjusted_ci_low": numbers["corrected_ci_low"],
        "adjusted_ci_high": np.where(comparison, numbers["ci_high"], np.nan),
        "confidence_level": np.nan, "p_value": np.where(comparison, numbers["p_adjusted"], np.nan),
        "p_adjusted": numbers["p_adjusted"],
        "details": [json.dumps({k: v for k, v in detail.items() if v is not None and v == v}, sort_keys=True)
                    for detail in pd.DataFrame({"tier": numbers["tier"], "train_delta": numbers["train_delta"],
                                                "cliff_warning": col("cliff_warning"), "migrated_from": LEGACY_TABLE},
                                               index=old.index).to_dict("records")],
        **{k: col(k).fillna("unknown").astype(str) for k in ("git_commit", "study_hash", "run_id", "decided_at")},
    }, index=old.index)
    return frame.reset_index(drop=True)[list(LEDGER_COLUMNS)]


def _json_number(value: float) -> str:
    return "" if value != value else json.dumps(int(value) if float(value).is_integer() else float(value))


class Ledger:
    """Appends decisions and reads them back, in the warehouse's database."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    def migrate(self) -> int:
        """Bring an old-shaped ledger into the current shape; returns the rows migrated (0 if none).
        One transaction: the old table is renamed ``ledger_v1`` and its rows copied, or nothing changes."""
        engine = self.warehouse.engine
        with engine.begin() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(LEDGER_TABLE):
                return 0
            columns = {c["name"] for c in inspector.get_columns(LEDGER_TABLE)}
            if "kind" in columns:
                return 0
            if inspector.has_table(LEGACY_TABLE):
                raise RuntimeError(f"both an old-shaped {LEDGER_TABLE!r} and {LEGACY_TABLE!r} exist in "
                                   f"{self.warehouse.url}; rename one of them before migrating")
            old = pd.read_sql(sa.text(f'SELECT * FROM "{LEDGER_TABLE}"'), conn)
            conn.execute(sa.text(f'ALTER TABLE "{LEDGER_TABLE}" RENAME TO "{LEGACY_TABLE}"'))
            migrated = _from_legacy(old)
            self.warehouse.append(LEDGER_TABLE, ledger_schema().validate(migrated), conn=conn)
        return len(migrated)

    def append(self, entries, provenance: Provenance) -> int:
        rows = ledger_rows(entries, provenance)
        if rows.empty:
            return 0
        self.migrate()
        return self.warehouse.append(LEDGER_TABLE, rows)

    def read(self, **equal_to) -> pd.DataFrame:
        """Every row (oldest first), or those whose columns equal the given values (``subject=...``)."""
        self.migrate()
        frame = self.warehouse.read(LEDGER_TABLE, {k: [v] for k, v in equal_to.items() if v is not None})
        return frame.sort_values("decided_at", kind="stable").reset_index(drop=True) if len(frame) else frame
