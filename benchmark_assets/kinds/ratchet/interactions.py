"""Pairwise interactions: two constants swept as a grid on train, the best cell judged on validation
against each constant's best value alone. No Dagster.

The question a pair answers is "does moving both beat moving either one?", so the best cell on
train is compared, scenario by scenario on validation, with the best of each constant's own sweep
(the other left at today's value), and with today's values themselves (a best-alone value chosen
on train can be worse than today on validation). It is an intersection-union test: the pair is
better than all three only if each of the three paired sign-flip tests rejects, so its p-value is
the largest of the three and no correction is needed within a pair; Holm runs across pairs. The
pairs are a family of their own, at the study's level, beside the constants' family.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from benchmark_assets.kinds.ratchet.analysis import (
    ACCEPT,
    REJECT,
    best_on_train,
    finite_or_nan,
    metric_table,
    paired_deltas,
)
from benchmark_assets.kinds.ratchet.rules import DecisionRules
from benchmark_assets.stats import adjust_p_values
from benchmark_assets.stats.multiple import step_down_tails
from benchmark_assets.stats.permutation import SignFlip
from benchmark_assets.sweep import ConstantSweep, format_value

NO_INTERACTION = "no_interaction"

INTERACTION_COLUMNS = [
    "pair", "first", "second", "first_current", "second_current", "first_alone", "second_alone", "first_value",
    "second_value", "train_current", "train_first_alone", "train_second_alone", "train_pair", "cells_measured",
    "validation_vs_current", "validation_vs_first", "validation_vs_second", "n_validation",
    "first_ci_low", "first_ci_high", "second_ci_low", "second_ci_high", "current_ci_low", "current_ci_high",
    "p_value", "p_adjusted", "corrected_level",
    "decision", "reason",
]
GRID_COLUMNS = ["pair", "first", "second", "first_value", "second_value", "sweep_point", "train_mean", "n_train"]


def pair_label(first: str, second: str) -> str:
    return f"{first} x {second}"


def train_grid(table: pd.DataFrame, first: ConstantSweep, second: ConstantSweep,
               key_for: Callable[[dict], str], train_ids) -> pd.DataFrame:
    """One row per grid cell (today's values and each constant's own sweep included): its train mean."""
    columns = [s for s in train_ids if s in table.columns]
    rows = []
    for a in first.values:
        for b in second.values:
            key = key_for({first.name: a, second.name: b})
            values = table.loc[key, columns].dropna() if key in table.index and columns else pd.Series(dtype=float)
            rows.append({"pair": pair_label(first.name, second.name), "first": first.name, "second": second.name,
                         "first_value": float(a), "second_value": float(b), "sweep_point": key,
                         "train_mean": float(values.mean()) if len(values) else np.nan, "n_train": len(values)})
    return pd.DataFrame(rows, columns=GRID_COLUMNS)


def _best_cell(grid: pd.DataFrame, first: ConstantSweep, second: ConstantSweep, sign: float) -> pd.Series:
    """The best cell on train; ties go to fewer changes, then to the cell nearest today's values
    (distances in units of each swept range)."""
    scored = np.where(grid["train_mean"].isna(), -np.inf, sign * grid["train_mean"].to_numpy())
    ties = grid[scored == scored.max()]
    moved = (ties["first_value"] != float(first.current)).astype(int) + (ties["second_value"] != float(second.current))
    distance = (abs(ties["first_value"] - float(first.current)) / (first.swept_range or 1.0)
                + abs(ties["second_value"] - float(second.current)) / (second.swept_range or 1.0))
    order = pd.DataFrame({"moved": moved, "distance": distance}).sort_values(["moved", "distance"], kind="stable")
    return ties.loc[order.index[0]]


def judge_interactions(trials: pd.DataFrame, pairs: list[tuple[ConstantSweep, ConstantSweep]],
                       key_for: Callable[[dict], str], rules: DecisionRules, *, metric: str, maximize: bool,
                       train_ids, validation_ids) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one verdict per pair, every grid cell's train mean). A pair whose best train cell moves
    only one constant (or none) adds nothing to the single-constant verdicts: ``no_interaction``."""
    table = metric_table(trials, metric)
    sign = 1.0 if maximize else -1.0
    rows, grids, tests = [], [], []
    for first, second in pairs:
        grid = train_grid(table, first, second, key_for, train_ids)
        grids.append(grid)

        def train_mean(a, b, grid=grid):
            match = grid[(grid["first_value"] == float(a)) & (grid["second_value"] == float(b))]["train_mean"]
            return float(match.iloc[0]) if len(match) else np.nan

        first_alone = first.values[best_on_train(sign * np.array([train_mean(v, second.current) for v in first.values]),
                                                 first)]
        second_alone = second.values[best_on_train(sign * np.array([train_mean(first.current, v)
                                                                    for v in second.values]), second)]
        best = _best_cell(grid, first, second, sign)
        a, b = best["first_value"], best["second_value"]
        pair_key = best["sweep_point"]
        first_key = key_for({first.name: first_alone})
        second_key = key_for({second.name: second_alone})
        current_key = key_for({})
        row = {
            "pair": pair_label(first.name, second.name), "first": first.name, "second": second.name,
            "first_current": float(first.current), "second_current": float(second.current),
            "first_alone": float(first_alone), "second_alone": float(second_alone),
            "first_value": float(a), "second_value": float(b),
            "train_current": train_mean(first.current, second.current),
            "train_first_alone": train_mean(first_alone, second.current),
            "train_second_alone": train_mean(first.current, second_alone),
            "train_pair": float(best["train_mean"]), "cells_measured": int(grid["train_mean"].notna().sum()),
        }
        versus_first = paired_deltas(table, pair_key, first_key, validation_ids, sign)
        versus_second = paired_deltas(table, pair_key, second_key, validation_ids, sign)
        versus_current = paired_deltas(table, pair_key, current_key, validation_ids, sign)
        both_moved = a != float(first.current) and b != float(second.current)
        flips = None
        if both_moved and versus_first.size and versus_second.size and versus_current.size:
            flips = tuple(SignFlip(d, rng=[rules.rng_seed, 7, len(rows), k])
                          for k, d in enumerate((versus_first, versus_second, versus_current)))
        row.update({
            "validation_vs_current": float(versus_current.mean()) if versus_current.size else np.nan,
            "validation_vs_first": float(versus_first.mean()) if versus_first.size else np.nan,
            "validation_vs_second": float(versus_second.mean()) if versus_second.size else np.nan,
            "n_validation": int(min(versus_first.size, versus_second.size, versus_current.size)),
            "p_value": max(flip.p_value(0.0) for flip in flips) if flips else 1.0,
            "_both_moved": both_moved,
        })
        rows.append(row)
        tests.append(flips)
    if not rows:
        return _empty(), pd.DataFrame(columns=GRID_COLUMNS)
    p_values = np.array([r["p_value"] for r in rows])
    alpha = 1.0 - rules.confidence_level
    correction = rules.correction if rules.correction in ("holm", "none") else "holm"
    adjusted = adjust_p_values(p_values, correction)
    levels = 1.0 - step_down_tails(p_values, correction, alpha)
    for row, flips, p_adjusted, level in zip(rows, tests, adjusted, levels):
        row["p_adjusted"], row["corrected_level"] = float(p_adjusted), float(level)
        intervals = [flip.interval(level) for flip in flips] if flips else [(np.nan, np.nan)] * 3
        for name, interval in zip(("first", "second", "current"), intervals):
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = map(finite_or_nan, interval)
        row["decision"], row["reason"] = _decide_pair(row, flips, rules, alpha)
    frame = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
    return frame[INTERACTION_COLUMNS], pd.concat(grids, ignore_index=True)


def _empty() -> pd.DataFrame:
    """No pairs: the columns with the types a judged pair has."""
    text, whole = {"pair", "first", "second", "decision", "reason"}, {"cells_measured", "n_validation"}
    return pd.DataFrame({c: pd.Series(dtype=str if c in text else int if c in whole else float)
                         for c in INTERACTION_COLUMNS})


def _decide_pair(row: dict, flips, rules: DecisionRules, alpha: float) -> tuple[str, str]:
    first, second = row["first"], row["second"]
    fmt = lambda x: "nan" if x is None or np.isnan(x) else f"{x:+.4f}"  # noqa: E731
    if not row["_both_moved"]:
        moved = [name for name, value, current in ((first, row["first_value"], row["first_current"]),
                                                   (second, row["second_value"], row["second_current"]))
                 if value != current]
        what = f"moves only {moved[0]}" if moved else "is today's values"
        return NO_INTERACTION, (f"the best cell of the grid on train {what}: the pair adds nothing to each "
                                "constant's own verdict")
    if flips is None:
        return REJECT, ("no validation scenario has the pair, both single changes and today's values measured "
                        "(failed trials?)")
    gains = (row["validation_vs_first"], row["validation_vs_second"], row["validation_vs_current"])
    cell = f"{first}={format_value(row['first_value'])}, {second}={format_value(row['second_value'])}"
    intervals = (f"vs {first} alone {fmt(gains[0])} [{fmt(row['first_ci_low'])}, {fmt(row['first_ci_high'])}], "
                 f"vs {second} alone {fmt(gains[1])} [{fmt(row['second_ci_low'])}, {fmt(row['second_ci_high'])}], "
                 f"vs today {fmt(gains[2])} [{fmt(row['current_ci_low'])}, {fmt(row['current_ci_high'])}]")
    if min(gains) <= rules.improvement_threshold:
        return REJECT, (f"{cell} does not beat each constant's best alone and today's values by more than the "
                        f"improvement threshold {rules.improvement_threshold} on validation: {intervals}")
    if not (min(row[f"{k}_ci_low"] for k in ("first", "second", "current")) > 0 and row["p_adjusted"] <= alpha):
        return REJECT, (f"{cell}: not shown better than both single changes and today's values at the corrected "
                        f"level {row['corrected_level']:.4f} (adjusted p {row['p_adjusted']:.4f}): {intervals}")
    return ACCEPT, f"{cell} beats each constant's best alone and today's values on validation: {intervals}"
