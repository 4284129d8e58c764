"""The ledger: one append-only table of every decision any study made, one typed record for all kinds.

Rows are never rewritten, and only runs that completed write them: a step's decisions wait in
``ledger_pending`` until its run succeeds (then ``settle`` moves them into the ledger in one
transaction), or is re-executed to success, or is dropped (``discard``) when it failed and stayed
failed: no row points at a run that was killed or failed after deciding.

A ledger written by an earlier version (ratchet-shaped columns:
constant, current, proposed, validation_delta, ...) is migrated in place the first time it is
opened: its table is renamed ``ledger_v1`` (kept, nothing dropped) and its rows are copied into
the new shape.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import sqlalchemy as sa

from benchmark_assets.warehouse import Warehouse

LEDGER_TABLE = "ledger"
LEGACY_TABLE = "ledger_v1"
PENDING_TABLE = "ledger_pending"  # decisions of runs that have not completed yet
_LOCK_KEY = 8_214_711_003  # PostgreSQL advisory lock of the ledger migration


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


def _plain(value):
    """JSON-able and strict: numpy scalars as Python numbers, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json(value) -> str:
    """Strict JSON (no NaN: PostgreSQL's json type and other readers refuse it); '' for nothing."""
    if value is None:
        return ""
    return json.dumps(_plain(value), sort_keys=True, default=str, allow_nan=False)


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
            "details": _json(entry.details or {}),
            **{k: getattr(provenance, k) for k in ("git_commit", "study_hash", "run_id", "decided_at")},
        })
    frame = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))
    for column in _FLOATS:
        frame[column] = frame[column].astype(float)
    return ledger_schema().validate(frame)


def _from_legacy(old: pd.DataFrame) -> pd.DataFrame:
    """Rows of the ratchet-shaped ledger in the new shape. Comparison rows (they carry
    control_params) become kind comparison with the arms' parameters as baseline and proposal.
    Text the new schema requires and an old row lacks is filled in, never dropped."""
    def col(name):
        return old[name] if name in old.columns else pd.Series([None] * len(old), index=old.index, dtype=object)

    def text(name, missing):
        values = col(name).astype(object).where(col(name).notna(), None)
        return values.map(lambda v: missing if v is None or str(v) == "" else str(v))

    def number(name):
        return pd.to_numeric(col(name), errors="coerce").astype(float)

    comparison = col("control_params").notna() & (col("control_params").astype(str) != "")
    current, proposed = number("current"), number("proposed")
    details = []
    for is_comparison, tier, train_delta, warning in zip(comparison, number("tier"), number("train_delta"),
                                                         col("cliff_warning")):
        detail = {"migrated_from": LEGACY_TABLE}
        if not is_comparison:  # what a ratchet entry's details hold today
            detail.update(tier=None if tier != tier else int(tier), train_delta=train_delta,
                          cliff_warning=warning if isinstance(warning, str) else "")
        details.append(_json(detail))
    frame = pd.DataFrame({
        "study": text("study", "unknown"), "kind": np.where(comparison, "comparison", "ratchet"),
        "subject": text("constant", "(unknown)"),
        "baseline": np.where(comparison, col("control_params").astype(str), current.map(_json)),
        "proposal": np.where(comparison, col("candidate_params").astype(str), proposed.map(_json)),
        "decision": text("decision", "unknown"), "reason": text("reason", "(no reason recorded)"),
        "metric": text("metric", ""),
        "baseline_value": np.where(comparison, np.nan, current), "proposal_value": np.where(comparison, np.nan, proposed),
        "effect": number("validation_delta"), "ci_low": number("ci_low"), "ci_high": number("ci_high"),
        # The old ledger kept only the lower corrected bound; a comparison's equalled its plain interval.
        "adjusted_ci_low": number("corrected_ci_low"),
        "adjusted_ci_high": np.where(comparison, number("ci_high"), np.nan),
        "confidence_level": np.nan, "p_value": np.where(comparison, number("p_adjusted"), np.nan),
        "p_adjusted": number("p_adjusted"), "details": details,
        **{k: text(k, "unknown") for k in ("git_commit", "study_hash", "run_id", "decided_at")},
    }, index=old.index)
    frame["baseline"] = frame["baseline"].replace("", None).fillna("")
    return frame.reset_index(drop=True)[list(LEDGER_COLUMNS)]


class Ledger:
    """Appends decisions and reads them back, in the warehouse's database."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    def migrate(self) -> int:
        """Bring an old-shaped ledger into the current shape; returns the rows migrated (0 if none).
        One transaction: the old table is renamed ``ledger_v1`` and its rows copied, or nothing
        changes. Safe when several processes open the ledger at once: one migrates, the others
        find it done."""
        for attempt in range(3):
            try:
                return self._migrate_once()
            except sa.exc.DBAPIError:
                if attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))  # another process was migrating: look again
        return 0

    def _migrate_once(self) -> int:
        with self.warehouse.writing() as conn:
            if conn.dialect.name == "postgresql":  # one migrator at a time; the others wait, then find it done
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            inspector = sa.inspect(conn)
            has_ledger, has_legacy = inspector.has_table(LEDGER_TABLE), inspector.has_table(LEGACY_TABLE)
            if has_ledger and "kind" in {c["name"] for c in inspector.get_columns(LEDGER_TABLE)}:
                return 0
            if has_ledger and has_legacy:
                raise RuntimeError(f"both an old-shaped {LEDGER_TABLE!r} and {LEGACY_TABLE!r} exist in "
                                   f"{self.warehouse.url}; rename one of them before migrating")
            if not (has_ledger or has_legacy):
                return 0
            # An old ledger, or (after a migration an earlier version left half done) only its copy.
            source = LEDGER_TABLE if has_ledger else LEGACY_TABLE
            migrated = ledger_schema().validate(_from_legacy(pd.read_sql(sa.text(f'SELECT * FROM "{source}"'), conn)))
            if has_ledger:
                conn.execute(sa.text(f'ALTER TABLE "{LEDGER_TABLE}" RENAME TO "{LEGACY_TABLE}"'))
            self.warehouse.append(LEDGER_TABLE, migrated, conn=conn)
        return len(migrated)

    def append(self, entries, provenance: Provenance) -> int:
        """Write decisions straight into the ledger (for a decision made outside a Dagster run)."""
        rows = ledger_rows(entries, provenance)
        if rows.empty:
            return 0
        self.migrate()
        return self.warehouse.append(LEDGER_TABLE, rows)

    def stage(self, entries, provenance: Provenance) -> int:
        """Hold the decisions of a run until it completes (``settle``) or fails (``discard``)."""
        rows = ledger_rows(entries, provenance)
        return self.warehouse.append(PENDING_TABLE, rows) if len(rows) else 0

    def pending_runs(self) -> list[str]:
        """Runs whose decisions wait for the run to end."""
        if not self.warehouse.has_table(PENDING_TABLE):
            return []
        with self.warehouse.engine.connect() as conn:
            return [r for (r,) in conn.execute(sa.text(f'SELECT DISTINCT run_id FROM "{PENDING_TABLE}"'))]

    def _take_pending(self, conn, run_id: str) -> pd.DataFrame:
        """Delete a run's pending rows and return them. DELETE ... RETURNING: two processes settling
        the same run at once cannot both get its rows (the second finds them gone)."""
        if not sa.inspect(conn).has_table(PENDING_TABLE):
            return pd.DataFrame(columns=list(LEDGER_COLUMNS))
        table = sa.Table(PENDING_TABLE, sa.MetaData(), autoload_with=conn)
        taken = conn.execute(table.delete().where(table.c.run_id == run_id).returning(*table.c)).mappings().all()
        frame = pd.DataFrame([dict(row) for row in taken], columns=list(LEDGER_COLUMNS))
        for column in _FLOATS:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        return frame

    def settle(self, run_id: str) -> int:
        """The run completed: its pending decisions join the ledger (one transaction). Returns how many."""
        self.migrate()
        with self.warehouse.writing() as conn:
            rows = self._take_pending(conn, run_id)
            if len(rows):
                self.warehouse.append(LEDGER_TABLE, ledger_schema().validate(rows), conn=conn)
        return len(rows)

    def discard(self, run_id: str) -> int:
        """The run failed or was stopped: its decisions never happened. Returns how many were dropped."""
        with self.warehouse.writing() as conn:
            return len(self._take_pending(conn, run_id))

    def read(self, **equal_to) -> pd.DataFrame:
        """Every row (oldest first), or those whose columns equal the given values (``subject=...``)."""
        self.migrate()
        frame = self.warehouse.read(LEDGER_TABLE, {k: [v] for k, v in equal_to.items() if v is not None})
        return frame.sort_values("decided_at", kind="stable").reset_index(drop=True) if len(frame) else frame
