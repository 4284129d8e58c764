"""The ratchet: pick on train, confirm on held-out validation with corrected intervals, guard cliffs."""
from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark_assets.kinds.ratchet.cliffs import find_cliffs, nearest_cliff
from benchmark_assets.kinds.ratchet.rules import DecisionRules
from benchmark_assets.kinds.ratchet.schemas import aggregates_schema
from benchmark_assets.kinds.ratchet.trials import TRIAL_COLUMNS
from benchmark_assets.stats import adjust_p_values, corrected_confidence_levels
from benchmark_assets.stats.aggregate import aggregate_metrics
from benchmark_assets.stats.multiple import step_down_tails
from benchmark_assets.stats.permutation import SignFlip
from benchmark_assets.stats.sequential import look_levels
from benchmark_assets.sweep import ConstantSweep, format_value

ACCEPT, REJECT, NO_SENSITIVITY = "accept", "reject", "no_sensitivity"
INCONCLUSIVE = "inconclusive"  # not decided yet: a further round of validation scenarios follows


def metric_table(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean of ``metric`` per (sweep point, scenario) over successful trials: points x seed ids."""
    ok = trials[trials["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(dtype=float)
    return ok.pivot_table(index="sweep_point", columns="seed_id", values=metric, aggfunc="mean")


def _curve(table: pd.DataFrame, sweep: ConstantSweep, seed_ids) -> np.ndarray:
    columns = [s for s in seed_ids if s in table.columns]
    means = []
    for value in sweep.values:
        key = sweep.key_for(value)
        means.append(float(table.loc[key, columns].mean()) if key in table.index and columns else np.nan)
    return np.asarray(means)


def best_on_train(scores: np.ndarray, sweep: ConstantSweep) -> int:
    """Index of the best value (higher ``scores`` is better; NaN never wins). Ties go to the
    current value, then to the value nearest it: no change without evidence."""
    scored = np.where(np.isnan(scores), -np.inf, scores)
    ties = np.flatnonzero(scored == scored.max())
    current_index = sweep.values.index(sweep.current)
    return current_index if current_index in ties else int(min(ties, key=lambda i: abs(sweep.values[i] - sweep.current)))


def attempted_trials(trials: pd.DataFrame) -> set[tuple[str, int]]:
    """(point, seed id) pairs that have a trial row, failed or not: what was measured at all."""
    return set(zip(trials["sweep_point"], trials["seed_id"].astype(int))) if len(trials) else set()


def finite_or_nan(value: float) -> float:
    """An interval end as a float, NaN for an unbounded one (too few scenarios for the level)."""
    return float(value) if np.isfinite(value) else np.nan


def paired_deltas(table: pd.DataFrame, better: str, worse: str, seed_ids, sign: float) -> np.ndarray:
    """``sign`` x (better - worse) per scenario among ``seed_ids`` where both points were measured."""
    if better not in table.index or worse not in table.index:
        return np.array([])
    columns = [s for s in seed_ids if s in table.columns]
    pair = table.loc[[better, worse], columns].dropna(axis=1)
    return sign * (pair.iloc[0].to_numpy() - pair.iloc[1].to_numpy())


def decide_ratchet(
    trials: pd.DataFrame,
    constants: list[ConstantSweep],
    rules: DecisionRules,
    *,
    metric: str,
    maximize: bool,
    train_ids,
    validation_ids,
    rounds: Sequence[Sequence[int]] = (),
    spending: str = "pocock",
) -> pd.DataFrame:
    """One verdict per constant, with its evidence; never a change to the constants themselves.

    ``rounds`` are the seed ids of the further validation rounds a study may spend on verdicts
    that stay inconclusive (none by default). Look 0 judges every constant on ``validation_ids``;
    look k judges the constants still inconclusive on those plus rounds 1..k, if their trials are
    there. Each look is corrected across all constants (a constant accepted earlier counts as
    rejected-null at p = 0, one settled otherwise at p = 1, which only makes the look stricter) at
    its share of the error budget (``stats.sequential.look_levels``), so over all looks the chance
    of accepting any null change stays within 1 - confidence_level."""
    table = metric_table(trials, metric)
    sign = 1.0 if maximize else -1.0
    failed = trials[trials["status"] != "ok"].groupby("sweep_point").size()
    rows = []
    for sweep in constants:
        train_curve = _curve(table, sweep, train_ids)
        validation_curve = _curve(table, sweep, validation_ids)
        current_index = sweep.values.index(sweep.current)
        best_index = best_on_train(sign * train_curve, sweep)
        proposed = sweep.values[best_index]
        keys = {sweep.key_for(v) for v in sweep.values}
        rows.append(
            {
                "constant": sweep.name,
                "tier": sweep.tier,
                "current": float(sweep.current),
                "proposed": float(proposed),
                "metric": metric,
                "train_current": train_curve[current_index],
                "train_proposed": train_curve[best_index],
                "train_delta": sign * (train_curve[best_index] - train_curve[current_index]),
                "validation_current": validation_curve[current_index],
                "validation_proposed": validation_curve[best_index],
                "n_failed_trials": int(sum(failed.get(k, 0) for k in keys)),
                "train_curve_range": float(np.nanmax(train_curve) - np.nanmin(train_curve))
                if np.isfinite(train_curve).any()
                else np.nan,
                "next_round": 0,
                "proposed_point": sweep.key_for(proposed),
                "_sweep": sweep,
                "_train_curve": train_curve,
                "_keys": (sweep.key_for(proposed), sweep.key_for(sweep.current)),
            }
        )

    if not rows:
        return pd.DataFrame()
    looks = [list(validation_ids)]
    for seeds in rounds:
        looks.append(looks[-1] + list(seeds))
    alpha = 1.0 - rules.confidence_level
    levels = look_levels([len(seeds) for seeds in looks], len(looks[-1]), alpha, spending)
    attempted = attempted_trials(trials)
    parked: set[int] = set()  # open constants whose round has not been run: they wait for it
    for look, seeds in enumerate(looks):
        if look == 0:
            taking_part = list(range(len(rows)))
        else:
            still_open = [i for i, row in enumerate(rows) if row["decision"] == INCONCLUSIVE and i not in parked]
            # A round counts once it was run (a failed trial is a result too, so a round whose
            # trials all fail is not asked for again); its scenarios then join the look.
            taking_part = [i for i in still_open
                           if all((key, int(s)) in attempted for key in rows[i]["_keys"] for s in rounds[look - 1])]
            for i in still_open:
                rows[i]["next_round"] = 0 if i in taking_part else look
            parked |= set(still_open) - set(taking_part)
            if not taking_part:
                break
        deltas = {i: paired_deltas(table, *rows[i]["_keys"], seeds, sign) for i in taking_part}
        _attach_intervals(rows, deltas, rules, look=look, alpha=float(levels[look]))
        for i in taking_part:
            row = rows[i]
            row["look"], row["look_alpha"] = look, float(levels[look])
            _decide_one(row, rules, maximize, n_constants=len(rows))
            if look:
                row["reason"] += f" (look {look}: {row['n_validation']} validation scenarios, level {levels[look]:.4f})"
            if row.pop("_interval_only", False):
                if look < len(looks) - 1:
                    row["decision"], row["next_round"] = INCONCLUSIVE, look + 1
                    row["reason"] = (f"inconclusive at look {look} ({row['n_validation']} validation scenarios): "
                                     f"{row['reason']}; round {look + 1} adds {len(rounds[look])} more")
                elif rounds:
                    row["reason"] += f"; still inconclusive after {len(rounds)} further rounds (budget spent)"
    for row in rows:
        row["rounds_used"] = int(row["look"])
    verdicts = pd.DataFrame([{k: v for k, v in row.items() if not k.startswith("_")} for row in rows])
    return verdicts


def _attach_intervals(rows: list[dict], deltas: dict[int, np.ndarray], rules: DecisionRules, *, look: int,
                      alpha: float) -> None:
    """Each validation delta is judged with the sign-flip permutation test (exact up to 16
    validation scenarios, valid at any number of them), corrected across the constants at this
    look's level ``alpha``; its interval inverts that test at the constant's corrected level, so
    accept (p at or below its level and the interval above 0) always agrees with the interval
    shown. Holm's levels follow the step-down: once it stops, every later constant keeps the level
    it stopped at. Constants not taking part in this look (``deltas`` has none for them) count as
    settled: p = 0 if accepted before, else 1."""
    p_values = np.array([0.0 if row.get("decision") == ACCEPT else 1.0 for row in rows])
    flips = {}
    for i, delta in deltas.items():
        rows[i]["validation_delta"] = float(delta.mean()) if delta.size else np.nan
        rows[i]["n_validation"] = int(delta.size)
        p_values[i] = 1.0
        if delta.size:
            flips[i] = SignFlip(delta, rng=[rules.rng_seed, i] if look == 0 else [rules.rng_seed, i, look])
            # One validation scenario has two sign patterns and p = 1: it is no evidence at all.
            p_values[i] = flips[i].p_value(0.0)
    adjusted = adjust_p_values(p_values, rules.correction)
    if rules.correction in ("holm", "bonferroni", "none"):
        levels = 1.0 - step_down_tails(p_values, rules.correction, alpha)
    else:  # Benjamini-Hochberg: each constant at alpha * rank / m
        levels = corrected_confidence_levels(p_values, rules.correction, 1.0 - alpha)
    for i in deltas:
        row = rows[i]
        row["p_value"], row["p_adjusted"], row["corrected_level"], row["_alpha"] = (
            p_values[i], adjusted[i], levels[i], alpha)
        plain = corrected = (np.nan, np.nan)
        if i in flips:
            plain, corrected = flips[i].interval(rules.confidence_level), flips[i].interval(levels[i])
        # Too few scenarios for any sign pattern count to reach the level: no interval (NaN).
        row["ci_low"], row["ci_high"] = map(finite_or_nan, plain)
        row["corrected_ci_low"], row["corrected_ci_high"] = map(finite_or_nan, corrected)


def _decide_one(row: dict, rules: DecisionRules, maximize: bool, *, n_constants: int) -> None:
    sweep: ConstantSweep = row["_sweep"]
    train_delta, validation_delta = row["train_delta"], row["validation_delta"]
    curve = row["_train_curve"]
    today = curve[sweep.values.index(sweep.current)]
    cliffs = find_cliffs(sweep.values, curve, drop_threshold=rules.cliff_drop, steepness=rules.cliff_steepness,
                         maximize=maximize, today=float(today) if np.isfinite(today) else None,
                         tolerance=rules.sensitivity_threshold)
    cliff, distance = nearest_cliff(row["proposed"], cliffs)
    margin = rules.cliff_safety_margin * sweep.swept_range
    warning = ""
    if cliff is not None and distance < margin:
        warning = (
            f"{format_value(row['proposed'])} is within {rules.cliff_safety_margin:.0%} of the swept range "
            f"of a cliff: {format_value(cliff.edge)} -> {format_value(cliff.beyond)} loses {cliff.drop:.3f} on train"
        )
    row["cliff_warning"] = warning
    row["n_cliffs"] = len(cliffs)
    fmt = lambda x: "nan" if x is None or np.isnan(x) else f"{x:+.4f}"  # noqa: E731
    sensitivity = rules.sensitivity_threshold
    if row["n_validation"] == 0:
        decision, reason = REJECT, "no validation scenario has both values measured (failed trials?)"
    elif abs(train_delta) < sensitivity and abs(validation_delta) < sensitivity:
        if row["proposed"] == row["current"]:
            reason = (
                f"current value is already the best on train, so no change is proposed "
                f"(the train curve spans {row['train_curve_range']:.4f})"
            )
        else:
            reason = (
                f"train and validation deltas ({fmt(train_delta)}, {fmt(validation_delta)}) are both "
                f"below the sensitivity threshold {sensitivity}"
            )
        decision = NO_SENSITIVITY
    elif validation_delta <= rules.improvement_threshold:
        decision, reason = REJECT, (
            f"validation delta {fmt(validation_delta)} does not exceed the improvement threshold "
            f"{rules.improvement_threshold} (train delta {fmt(train_delta)}): {_why_short(train_delta, validation_delta)}"
        )
    elif not (row["corrected_ci_low"] > 0 and row["p_adjusted"] <= row["_alpha"]):
        decision, reason = REJECT, (
            f"validation interval (sign-flip test) at the {rules.correction}-corrected level "
            f"{row['corrected_level']:.4f} "
            f"[{row['corrected_ci_low']:+.4f}, {row['corrected_ci_high']:+.4f}] (adjusted p "
            f"{row['p_adjusted']:.4f}) does not exclude 0 ({n_constants} constants tested)"
        )
        row["_interval_only"] = not warning  # more scenarios could decide it; a cliff stays a cliff
    elif warning:
        decision, reason = REJECT, f"cliff: {warning}"
    else:
        decision, reason = ACCEPT, (
            f"validation delta {fmt(validation_delta)} > {rules.improvement_threshold}, corrected interval "
            f"[{row['corrected_ci_low']:+.4f}, {row['corrected_ci_high']:+.4f}] above 0"
        )
    row["decision"], row["reason"] = decision, reason


def _why_short(train_delta: float, validation_delta: float) -> str:
    """Why a validation delta at or below the improvement threshold is rejected, in true words:
    only a gain on train that is lost on validation "does not generalise"."""
    if validation_delta <= 0 < train_delta:
        return "the gain on train does not carry over to the held-out scenarios (does not generalise)"
    if validation_delta <= 0:
        return "no gain on the held-out scenarios"
    if validation_delta >= train_delta:
        return "it does generalise (validation gains at least as much as train), but the gain is below the threshold"
    return "the gain on the held-out scenarios is real but below the threshold"


def summarise_verdicts(verdicts: pd.DataFrame) -> dict[str, int]:
    counts = verdicts["decision"].value_counts()
    return {
        "constants": len(verdicts),
        "accepted": int(counts.get(ACCEPT, 0)),
        "rejected": int(counts.get(REJECT, 0)),
        "no_sensitivity": int(counts.get(NO_SENSITIVITY, 0)),
        "inconclusive": int(counts.get(INCONCLUSIVE, 0)),
        "cliff_warnings": int((verdicts["cliff_warning"] != "").sum()),
    }


def aggregate_trials(study, trials: pd.DataFrame, point_keys: list[str]) -> pd.DataFrame:
    """Aggregates of each sweep point over train, validation and all scenarios, for every metric."""
    metrics = list(study.target.metrics or sorted(c for c in trials.columns if c not in TRIAL_COLUMNS))
    columns = list(aggregates_schema().columns)
    decision = study.spec.decision
    rows = []
    points = {p.key: p for p in study.sweep_points()}
    for point_key in point_keys:
        if point_key not in points:
            with contextlib.suppress(KeyError):
                points[point_key] = study.point_for(point_key)
        point_trials = trials[trials["sweep_point"] == point_key]
        for split in ("train", "validation", "all"):
            subset = point_trials if split == "all" else point_trials[point_trials["split"] == split]
            ok = subset[subset["status"] == "ok"]
            table = aggregate_metrics(ok, metrics, confidence_level=decision.confidence_level,
                                      n_resamples=decision.bootstrap_resamples, rng_seed=decision.rng_seed,
                                      label=f"{study.name}|{point_key}|{split}")
            point = points.get(point_key)
            table.insert(0, "sweep_point", point_key)
            table.insert(1, "constant", (point.constant or "") if point else "")
            table.insert(2, "value", float(point.value) if point and point.value is not None else float("nan"))
            table.insert(3, "split", split)
            table.insert(5, "n_failed", int((subset["status"] != "ok").sum()))
            rows.append(table)
    return pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)
