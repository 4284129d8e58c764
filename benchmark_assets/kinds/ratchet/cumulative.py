"""Cumulative validation: the accepted changes applied together, built up one at a time on the
validation scenarios, so that two changes that each help but clash are caught before the patch
is proposed. No Dagster.

Each accepted change (a constant's verdict, or an accepted interaction pair) is added in order of
its own validation gain; the combination so far plus the new change is one more sweep point
(``a=0.7,b=2``), measured on the validation scenarios and compared, scenario by scenario, with the
combination without it. A change is kept when it still adds more than the improvement threshold;
otherwise it is dropped as a clash; the first must itself gain more than the threshold against
today's values. The patch holds only what is kept. This is a filter on changes already accepted
under the error control of their own family, so it only removes accepts and spends no error
budget of its own; its intervals are for reading, not for a further test. A combination whose
trials all failed is dropped, not asked for again.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark_assets.kinds.ratchet.analysis import ACCEPT, attempted_trials, finite_or_nan, metric_table, paired_deltas
from benchmark_assets.kinds.ratchet.rules import DecisionRules
from benchmark_assets.stats.permutation import SignFlip
from benchmark_assets.sweep import format_value

KEEP, DROP, SUPERSEDED, PENDING = "keep", "drop", "superseded", "pending"
CUMULATIVE_COLUMNS = ["step", "change", "changes", "own_delta", "decision", "combination", "compared_with",
                      "marginal_delta", "ci_low", "ci_high", "n_validation", "reason"]


@dataclass(frozen=True)
class Change:
    """An accepted change: its label (a constant, or a pair), the values it sets, its own gain."""

    label: str
    changes: dict = field(hash=False)
    own_delta: float

    def describe(self) -> str:
        return ", ".join(f"{name}={format_value(value)}" for name, value in self.changes.items())


def accepted_changes(verdicts: pd.DataFrame, interactions: pd.DataFrame | None,
                     changes_of: Callable[[str], dict]) -> list[Change]:
    """Every accepted change, largest validation gain first (ties: by label); ``changes_of(key)``
    gives the constants a verdict's proposed point changes (one, or the search's several)."""
    found = [Change(row["constant"], changes_of(row["proposed_point"]), float(row["validation_delta"]))
             for row in verdicts.to_dict("records") if row["decision"] == ACCEPT]
    if interactions is not None and len(interactions):
        found += [Change(row["pair"], {row["first"]: row["first_value"], row["second"]: row["second_value"]},
                         float(row["validation_vs_current"]))
                  for row in interactions.to_dict("records") if row["decision"] == ACCEPT]
    return sorted(found, key=lambda change: (-change.own_delta, change.label))


@dataclass(frozen=True)
class BuildUp:
    """The steps so far; ``missing``: the point whose validation trials the next step needs."""

    steps: pd.DataFrame
    kept: dict
    missing: str | None = None


def build_up(trials: pd.DataFrame, candidates: list[Change], key_for: Callable[[dict], str], rules: DecisionRules,
             *, metric: str, maximize: bool, validation_ids) -> BuildUp:
    table = metric_table(trials, metric)
    sign = 1.0 if maximize else -1.0
    wanted = list(validation_ids)
    attempted = attempted_trials(trials)
    kept: dict = {}
    rows = []
    for step, change in enumerate(candidates, start=1):
        row = {"step": step, "change": change.label, "changes": change.describe(), "own_delta": change.own_delta,
               "combination": key_for(kept), "compared_with": key_for(kept), "marginal_delta": np.nan,
               "ci_low": np.nan, "ci_high": np.nan, "n_validation": 0}
        clashing = {n: v for n, v in change.changes.items() if n in kept and float(kept[n]) != float(v)}
        if clashing:
            row.update(decision=SUPERSEDED, reason=(
                f"sets {', '.join(clashing)} differently from a change with a larger gain already kept"))
            rows.append(row)
            continue
        together = {**kept, **change.changes}
        row["combination"] = key_for(together)
        if together == kept:
            row.update(decision=KEEP, marginal_delta=0.0, reason="already part of the changes kept before it")
            rows.append(row)
            continue
        if not kept:
            if change.own_delta > rules.improvement_threshold:
                row.update(decision=KEEP, marginal_delta=change.own_delta, reason=(
                    f"the largest accepted gain ({change.own_delta:+.4f} on validation against today's "
                    "values): the first change kept"))
                kept = together
            else:
                row.update(decision=DROP, marginal_delta=change.own_delta, reason=(
                    f"gains {change.own_delta:+.4f} on validation against today's values, not more than the "
                    f"improvement threshold {rules.improvement_threshold}"))
            rows.append(row)
            continue
        if not all((row["combination"], int(s)) in attempted for s in wanted):
            row.update(decision=PENDING,
                       reason=f"needs point {row['combination']} measured on the validation scenarios")
            rows.append(row)
            return BuildUp(_frame(rows), kept, row["combination"])
        delta = paired_deltas(table, row["combination"], row["compared_with"], wanted, sign)
        if not delta.size:  # measured, but no scenario has both results (failed trials)
            row.update(decision=DROP, reason=(
                f"{row['combination']} has no validation result to compare (its trials failed; see the trials "
                "table): not kept"))
            rows.append(row)
            continue
        low, high = SignFlip(delta, rng=[rules.rng_seed, 11, step]).interval(rules.confidence_level)
        marginal = float(delta.mean())
        row.update(marginal_delta=marginal, n_validation=int(delta.size), ci_low=finite_or_nan(low),
                   ci_high=finite_or_nan(high))
        if marginal > rules.improvement_threshold:
            row.update(decision=KEEP, reason=(
                f"adds {marginal:+.4f} on validation on top of the changes kept before it (alone: "
                f"{change.own_delta:+.4f})"))
            kept = together
        else:
            row.update(decision=DROP, reason=(
                f"clashes with the changes kept before it: together it adds {marginal:+.4f} on validation "
                f"(alone: {change.own_delta:+.4f}), not more than the improvement threshold "
                f"{rules.improvement_threshold}"))
        rows.append(row)
    return BuildUp(_frame(rows), kept)


def _frame(rows: list[dict]) -> pd.DataFrame:
    if not rows:
        text = {"change", "changes", "decision", "combination", "compared_with", "reason"}
        return pd.DataFrame({c: pd.Series(dtype=str if c in text else int if c in ("step", "n_validation") else float)
                             for c in CUMULATIVE_COLUMNS})
    return pd.DataFrame(rows)[CUMULATIVE_COLUMNS]


def combined_gain(trials: pd.DataFrame, kept_key: str, current_key: str, rules: DecisionRules, *, metric: str,
                  maximize: bool, validation_ids) -> dict:
    """The kept changes together against today's constants on validation: mean and interval."""
    delta = paired_deltas(metric_table(trials, metric), kept_key, current_key, validation_ids,
                          1.0 if maximize else -1.0)
    if not delta.size:
        return {"delta": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n_validation": 0}
    low, high = SignFlip(delta, rng=[rules.rng_seed, 13]).interval(rules.confidence_level)
    return {"delta": float(delta.mean()), "ci_low": finite_or_nan(low), "ci_high": finite_or_nan(high),
            "n_validation": int(delta.size)}
