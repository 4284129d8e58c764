"""Pairwise interactions: two constants swept as a grid on train, the best cell judged on validation
against each constant's best value alone. No Dagster.

The question a pair answers is "does moving both beat moving either one?", so the best cell on
train is compared, scenario by scenario on validation, with the best of each constant's own sweep
(the other left at today's value), and with today's values themselves (a best-alone value chosen
on train can be worse than today on validation). It is an intersection-union test: the pair is
better than all three only if each of the three paired sign-flip tests rejects, so its p-value is
the largest of the three and no correction is needed within a pair. A pair is tested when its
best cell moves both constants and beats each single change and today's values by more than the
improvement threshold on train; the tested pairs are one family with the constants and the
search's proposal that clear their own screens (``family``).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from benchmark_assets.kinds.ratchet.analysis import (
    ACCEPT,
    REJECT,
    best_on_train,
    changes,
    constant_claim,
    constant_rows,
    metric_table,
)
from benchmark_assets.kinds.ratchet.family import (
    CORRECTION_NAMES,
    Claim,
    aligned_deltas,
    interval,
    judge_family,
    measured,
    one_sided_p,
    sign_flip,
)
from benchmark_assets.kinds.ratchet.rules import DecisionRules
from benchmark_assets.sweep import ConstantSweep, format_value

NO_INTERACTION = "no_interaction"

INTERACTION_COLUMNS = [
    "pair", "first", "second", "first_current", "second_current", "first_alone", "second_alone", "first_value",
    "second_value", "train_current", "train_first_alone", "train_second_alone", "train_pair", "cells_measured",
    "validation_vs_current", "validation_vs_first", "validation_vs_second", "n_validation",
    "first_ci_low", "first_ci_high", "second_ci_low", "second_ci_high", "current_ci_low", "current_ci_high",
    "p_value", "p_adjusted", "corrected_level", "tested",
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
                       train_ids, validation_ids, constants: list[ConstantSweep] = ()) -> tuple[pd.DataFrame,
                                                                                                 pd.DataFrame]:
    """(one verdict per pair, every grid cell's train mean). A pair whose best train cell moves
    only one constant (or none) adds nothing to the single-constant verdicts: ``no_interaction``.
    The pairs that clear the screen are tested in one family with the ``constants`` (and the
    search's proposal, given as one more sweep) that clear theirs, exactly as the verdicts test them."""
    table = metric_table(trials, metric)
    sign = 1.0 if maximize else -1.0
    rows, grids = _pair_rows(table, pairs, key_for, rules, sign=sign, train_ids=train_ids,
                             validation_ids=validation_ids)
    if not rows:
        return _empty(), pd.DataFrame(columns=GRID_COLUMNS)
    others = constant_rows(table, trials, list(constants), rules, metric=metric, sign=sign, train_ids=train_ids,
                           validation_ids=validation_ids)
    claims = [constant_claim(table, row, aligned_deltas(table, *row["_keys"], validation_ids, sign), train_ids, sign)
              for row in others if row["tested"]]
    claims += [Claim(row["pair"], row["_columns"], row["_train_columns"]) for row in rows if row["tested"]]
    alpha = 1.0 - rules.confidence_level
    rng = [rules.rng_seed]
    tested = judge_family(claims, rules.correction, alpha, rng=rng, train_weight=rules.train_weight)
    for row in rows:
        test = tested.get(row["pair"])
        row["p_value"] = test.p_value if test else max(one_sided_p(c, rng) for c in row["_columns"])
        row["p_adjusted"] = test.p_adjusted if test else 1.0
        row["corrected_level"] = 1.0 - 2.0 * min(test.tails) if test else np.nan
        for name, column, tail in zip(("first", "second", "current"), row["_columns"],
                                      test.tails if test else (np.nan,) * 3):
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = interval(sign_flip(column, rng), tail)
        row["decision"], row["reason"] = _decide_pair(row, rules, alpha, family_size=len(claims))
    frame = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
    return frame[INTERACTION_COLUMNS], pd.concat(grids, ignore_index=True)


def pair_claims(trials: pd.DataFrame, pairs: list[tuple[ConstantSweep, ConstantSweep]],
                key_for: Callable[[dict], str], rules: DecisionRules, *, metric: str, maximize: bool,
                train_ids, validation_ids) -> list[Claim]:
    """The pairs that clear the screen, as claims of the study's family (for the verdicts)."""
    rows, _ = _pair_rows(metric_table(trials, metric), pairs, key_for, rules, sign=1.0 if maximize else -1.0,
                         train_ids=train_ids, validation_ids=validation_ids)
    return [Claim(row["pair"], row["_columns"], row["_train_columns"]) for row in rows if row["tested"]]


def _pair_rows(table: pd.DataFrame, pairs, key_for, rules: DecisionRules, *, sign: float, train_ids,
               validation_ids) -> tuple[list[dict], list[pd.DataFrame]]:
    rows, grids = [], []
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
        others = (key_for({first.name: first_alone}), key_for({second.name: second_alone}), key_for({}))
        columns = tuple(aligned_deltas(table, pair_key, other, validation_ids, sign) for other in others)
        train_columns = tuple(aligned_deltas(table, pair_key, other, train_ids, sign) for other in others)
        own = [measured(c) for c in columns]
        both_moved = a != float(first.current) and b != float(second.current)
        train_gain = min(sign * (row["train_pair"] - row[k])
                         for k in ("train_first_alone", "train_second_alone", "train_current"))
        row.update({
            "validation_vs_first": float(own[0].mean()) if own[0].size else np.nan,
            "validation_vs_second": float(own[1].mean()) if own[1].size else np.nan,
            "validation_vs_current": float(own[2].mean()) if own[2].size else np.nan,
            "n_validation": int(min(o.size for o in own)),
            "tested": bool(both_moved and np.isfinite(train_gain) and train_gain > rules.improvement_threshold),
            "_both_moved": both_moved, "_train_gain": train_gain, "_columns": columns,
            "_train_columns": train_columns,
        })
        rows.append(row)
    return rows, grids


def _empty() -> pd.DataFrame:
    """No pairs: the columns with the types a judged pair has."""
    text, whole = {"pair", "first", "second", "decision", "reason"}, {"cells_measured", "n_validation"}
    return pd.DataFrame({c: pd.Series(dtype=str if c in text else int if c in whole else bool if c == "tested"
                                      else float) for c in INTERACTION_COLUMNS})


def _decide_pair(row: dict, rules: DecisionRules, alpha: float, *, family_size: int) -> tuple[str, str]:
    first, second = row["first"], row["second"]
    fmt = lambda x: "nan" if x is None or np.isnan(x) else f"{x:+.4f}"  # noqa: E731
    if not row["_both_moved"]:
        moved = [name for name, value, current in ((first, row["first_value"], row["first_current"]),
                                                   (second, row["second_value"], row["second_current"]))
                 if value != current]
        what = f"moves only {moved[0]}" if moved else "is today's values"
        return NO_INTERACTION, (f"the best cell of the grid on train {what}: the pair adds nothing to each "
                                "constant's own verdict")
    cell = f"{first}={format_value(row['first_value'])}, {second}={format_value(row['second_value'])}"
    if not row["tested"]:
        return REJECT, (f"not tested on validation: {cell} beats each constant's best alone and today's values by "
                        f"at most {fmt(row['_train_gain'])} on train, not more than the improvement threshold "
                        f"{rules.improvement_threshold} (screened on train; not in the correction)")
    if row["n_validation"] == 0:
        return REJECT, ("no validation scenario has the pair, both single changes and today's values measured "
                        "(failed trials?)")
    gains = (row["validation_vs_first"], row["validation_vs_second"], row["validation_vs_current"])
    intervals = (f"vs {first} alone {fmt(gains[0])} [{fmt(row['first_ci_low'])}, {fmt(row['first_ci_high'])}], "
                 f"vs {second} alone {fmt(gains[1])} [{fmt(row['second_ci_low'])}, {fmt(row['second_ci_high'])}], "
                 f"vs today {fmt(gains[2])} [{fmt(row['current_ci_low'])}, {fmt(row['current_ci_high'])}]")
    if min(gains) <= rules.improvement_threshold:
        return REJECT, (f"{cell} does not beat each constant's best alone and today's values by more than the "
                        f"improvement threshold {rules.improvement_threshold} on validation: {intervals}")
    lows = [row[f"{k}_ci_low"] for k in ("first", "second", "current")]
    if not (all(low > 0 for low in lows) and row["p_adjusted"] <= alpha):
        return REJECT, (f"{cell}: not shown better than both single changes and today's values at the "
                        f"{CORRECTION_NAMES[rules.correction]}-corrected level (adjusted p {row['p_adjusted']:.4f}, "
                        f"{changes(family_size)} tested): {intervals}")
    return ACCEPT, (f"{cell} beats each constant's best alone and today's values on validation "
                    f"({CORRECTION_NAMES[rules.correction]}-corrected, {changes(family_size)} tested): {intervals}")
