"""Why a subject has its value: every decision on it, newest first, with what changed in the study
file between one decision and the next. No Dagster.

The ledger names the study file a decision was made with by its hash; ``StudyVersions`` keeps the
text behind each hash (table ``study_versions``) so two decisions can be compared setting by
setting: ``decision.improvement_threshold: 0.01 -> 0.05``.
"""
from __future__ import annotations

import json
import math

import pandas as pd
import sqlalchemy as sa
import yaml

from benchmark_assets.display import display_number
from benchmark_assets.warehouse import Warehouse

VERSIONS_TABLE = "study_versions"
NOT_RECORDED = "(the earlier study file was not recorded)"


class StudyVersions:
    """The text of every study file a decision was made with, by study and hash."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    def remember(self, study: str, study_hash: str, text: str, seen_at: str) -> None:
        with self.warehouse.writing() as conn:
            if sa.inspect(conn).has_table(VERSIONS_TABLE):
                known = conn.execute(sa.text(f'SELECT 1 FROM "{VERSIONS_TABLE}" WHERE study = :s AND study_hash = :h'),
                                     {"s": study, "h": study_hash}).first()
                if known:
                    return
            self.warehouse.append(VERSIONS_TABLE, pd.DataFrame([{"study": study, "study_hash": study_hash,
                                                                  "text": text, "first_seen": seen_at}]), conn=conn)

    def texts(self, study: str) -> dict[str, str]:
        frame = self.warehouse.read(VERSIONS_TABLE, {"study": [study]})
        return dict(zip(frame["study_hash"], frame["text"])) if len(frame) else {}


def _flatten(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _shown(value) -> str:
    text = "(absent)" if value is _ABSENT else yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return text if len(text) <= 80 else text[:77] + "..."


_ABSENT = object()


def spec_changes(old_text: str, new_text: str) -> list[str]:
    """Each setting that differs between two study files, ``name: old -> new`` (names dotted)."""
    try:
        old, new = _flatten(yaml.safe_load(old_text) or {}), _flatten(yaml.safe_load(new_text) or {})
    except yaml.YAMLError:
        return ["(a study file could not be parsed to compare)"]
    lines = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name, _ABSENT), new.get(name, _ABSENT)
        if before != after:
            lines.append(f"{name}: {_shown(before)} -> {_shown(after)}")
    return lines


def changes_between(texts: dict[str, str], older_hash: str | None, newer_hash: str) -> str:
    """What changed in the study file from one decision to the next, in one line."""
    if older_hash is None:
        return "(first decision)"
    if older_hash == newer_hash:
        return "(same study file)"
    if older_hash not in texts or newer_hash not in texts:
        return NOT_RECORDED
    return "; ".join(spec_changes(texts[older_hash], texts[newer_hash])) or "(comments or layout only)"


def _interval(low: float, high: float) -> str:
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (low, high)):
        return ""
    return f"[{display_number(low, signed=True)}, {display_number(high, signed=True)}]"


def subject_history(decided: pd.DataFrame, texts: dict[str, str], subject: str, limit: int = 20) -> pd.DataFrame:
    """Every decision on ``subject`` among a study's ledger rows ``decided`` (with the running run's
    pending rows, if any), newest first: what was decided and why, the evidence, the study changes
    since the decision before it (``texts``: ``StudyVersions.texts``), and its provenance."""
    rows = decided[decided["subject"] == subject] if len(decided) else decided
    columns = ["decided_at", "decision", "baseline", "proposal", "effect", "interval", "reason", "study_changes",
               "git_commit", "study_hash", "run_id"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows = rows.sort_values("decided_at", kind="stable").reset_index(drop=True)
    previous = [None, *rows["study_hash"].iloc[:-1]]
    frame = pd.DataFrame({
        "decided_at": rows["decided_at"], "decision": rows["decision"], "baseline": rows["baseline"],
        "proposal": rows["proposal"], "effect": rows["effect"],
        "interval": [_interval(lo, hi) for lo, hi in zip(rows["adjusted_ci_low"], rows["adjusted_ci_high"])],
        "reason": rows["reason"],
        "study_changes": [changes_between(texts, old, new) for old, new in zip(previous, rows["study_hash"])],
        "git_commit": rows["git_commit"], "study_hash": rows["study_hash"], "run_id": rows["run_id"],
    })
    return frame.iloc[::-1].head(limit).reset_index(drop=True)[columns]


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else display_number(value, signed=True)
    return str(value).replace("|", "/").replace("\n", " ")


def _setting(value) -> str:
    """A stored baseline or proposal as a person reads it: settings as ``name=value``, not JSON."""
    text = _cell(value)
    if text.startswith("{"):
        try:
            settings = json.loads(str(value))
        except ValueError:
            return text
        if isinstance(settings, dict):
            return ", ".join(f"{name}={display_number(v) if isinstance(v, float) else v}" for name, v in settings.items())
    return text


def _change(baseline, proposal) -> str:
    """'0.3 -> 0.7'; a proposal alone when nothing was replaced (a best point, a frontier)."""
    before, after = _setting(baseline), _setting(proposal)
    return f"{before} -> {after}" if before else after


def history_markdown(subject: str, history: pd.DataFrame, *, run_link: str = "/runs/{run_id}") -> str:
    """One subject's history as a Markdown table (links to each decision's run in the UI)."""
    lines = [f"#### {subject}", ""]
    if history.empty:
        return "\n".join(lines + ["No decisions recorded yet.", ""])
    lines += ["| decided | decision | baseline -> proposal | effect | interval | reason | study changes | commit | run |",
              "|---|---|---|---:|---|---|---|---|---|"]
    for row in history.to_dict("records"):
        link = f"[{row['run_id'][:8]}]({run_link.format(run_id=row['run_id'])})"
        lines.append(" | ".join([
            f"| {row['decided_at'][:19]}", row["decision"], _change(row["baseline"], row["proposal"]),
            _cell(row["effect"]), row["interval"], _cell(row["reason"]), _cell(row["study_changes"]),
            row["git_commit"][:12] + (" (dirty)" if row["git_commit"].endswith("+dirty") else ""), f"{link} |"]))
    return "\n".join(lines + [""])
