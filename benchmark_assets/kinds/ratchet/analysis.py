"""The ratchet: pick on train, confirm on held-out validation with corrected intervals, guard cliffs."""
from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark_assets.kinds.ratchet.cliffs import find_cliffs, nearest_cliff
from benchmark_assets.kinds.ratchet.family import (
    CORRECTION_NAMES,
    Claim,
    Tested,
    aligned_deltas,
    finite_or_nan,  # noqa: F401 (cumulative validation's, imported from here)
    interval,
    judge_family,
    measured,
    one_sided_p,
    sign_flip,
    stepwise,
    train_offset,
)
from benchmark_assets.kinds.ratchet.rules import DecisionRules
from benchmark_assets.kinds.ratchet.schemas import aggregates_schema
from benchmark_assets.kinds.ratchet.trials import TRIAL_COLUMNS
from benchmark_assets.stats.aggregate import aggregate_metrics
from benchmark_assets.stats.multiple import weighted_holm
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


def point_means(table: pd.DataFrame, seed_ids) -> pd.Series:
    """Each sweep point's mean over the scenarios among ``seed_ids`` it was measured on."""
    columns = [s for s in seed_ids if s in table.columns]
    return table[columns].mean(axis=1) if columns else pd.Series(dtype=float)


def _curve(means: pd.Series, sweep: ConstantSweep) -> np.ndarray:
    return np.array([float(means.get(sweep.key_for(value), np.nan)) for value in sweep.values])


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


def paired_deltas(table: pd.DataFrame, better: str, worse: str, seed_ids, sign: float) -> np.ndarray:
    """``sign`` x (better - worse) per scenario among ``seed_ids`` where both points were measured."""
    return measured(aligned_deltas(table, better, worse, seed_ids, sign))


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
    spending: str = "obrien_fleming",
    other_claims: Sequence[Claim] = (),
) -> pd.DataFrame:
    """One verdict per constant, with its evidence; never a change to the constants themselves.

    Look 0 screens every constant on train (``screen``) and tests the proposals that clear it, with
    ``other_claims`` (the study's interaction pairs that cleared theirs), as one family on
    ``validation_ids`` (``family.judge_family``). ``rounds`` are the seed ids of the further
    validation rounds a study may spend on verdicts that stay inconclusive (none by default): look
    k judges the constants still inconclusive on the validation scenarios plus rounds 1..k, if
    their trials are there, at its share of the error budget (``stats.sequential.look_levels``).
    A later look corrects with Holm over the constants of the same family, a constant accepted
    before at p = 0 and one settled otherwise at p = 1: the family is fixed on train, so by the
    union bound over looks the chance of accepting any null change stays within
    1 - confidence_level whatever the earlier looks decided."""
    table = metric_table(trials, metric)
    sign = 1.0 if maximize else -1.0
    rows = constant_rows(table, trials, constants, rules, metric=metric, sign=sign, train_ids=train_ids,
                         validation_ids=validation_ids)
    if not rows:
        return pd.DataFrame()
    looks = [list(validation_ids)]
    for seeds in rounds:
        looks.append(looks[-1] + list(seeds))
    alpha = 1.0 - rules.confidence_level
    levels = look_levels([len(seeds) for seeds in looks], len(looks[-1]), alpha, spending)
    attempted = attempted_trials(trials)
    family = [i for i, row in enumerate(rows) if row["tested"]]
    family_size = len(family) + len(other_claims)
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
        rng = [rules.rng_seed] if look == 0 else [rules.rng_seed, look]
        columns = {i: aligned_deltas(table, *rows[i]["_keys"], seeds, sign) for i in taking_part}
        if look == 0:
            claims = [constant_claim(table, rows[i], columns[i], train_ids, sign) for i in family] + list(other_claims)
            for i, claim in zip(family, claims):  # the weights of later looks, fixed on train
                rows[i]["_train_stat"] = train_offset(claim.train[0])
            tested = judge_family(claims, rules.correction, float(levels[0]), rng=rng,
                                  train_weight=rules.train_weight)
        else:
            tested = _later_look(rows, family, columns, rules, float(levels[look]), rng)
        for i in taking_part:
            row = rows[i]
            _attach(row, columns[i], tested.get(row["constant"]), rules, rng)
            row["look"], row["look_alpha"], row["family_size"] = look, float(levels[look]), family_size
            row["_correction"] = ("weighted_holm" if rules.train_weight > 0 else "holm") if look and rules.correction == "max_t" else rules.correction
            _decide_one(row, rules, family_size=family_size)
            if look:
                row["reason"] += f" (look {look}: {row['n_validation']} validation scenarios, level {levels[look]:.4f})"
            note = row.pop("_open_note", "")
            if row.pop("_interval_only", False):
                if look < len(looks) - 1:
                    row["decision"], row["next_round"] = INCONCLUSIVE, look + 1
                    row["reason"] = (f"inconclusive at look {look} ({row['n_validation']} validation scenarios): "
                                     f"{row['reason']}{note}; round {look + 1} adds {len(rounds[look])} more")
                elif rounds:
                    row["reason"] += f"; still inconclusive after {len(rounds)} further rounds (budget spent)"
    for row in rows:
        row["rounds_used"] = int(row["look"])
    return pd.DataFrame([{k: v for k, v in row.items() if not k.startswith("_")} for row in rows])


def constant_claim(table: pd.DataFrame, row: dict, column: np.ndarray, train_ids, sign: float) -> Claim:
    """A tested constant as a claim: its validation deltas, and its train deltas for the weights."""
    return Claim(row["constant"], (column,), (aligned_deltas(table, *row["_keys"], train_ids, sign),))


def constant_rows(table: pd.DataFrame, trials: pd.DataFrame, constants: list[ConstantSweep], rules: DecisionRules, *,
                  metric: str, sign: float, train_ids, validation_ids) -> list[dict]:
    """Each constant's proposal on train (its best value), its train curve, cliffs and screen."""
    failed = trials[trials["status"] != "ok"].groupby("sweep_point").size() if len(trials) else pd.Series(dtype=int)
    rows = []
    train_means, validation_means = point_means(table, train_ids), point_means(table, validation_ids)
    for sweep in constants:
        train_curve = _curve(train_means, sweep)
        validation_curve = _curve(validation_means, sweep)
        current_index = sweep.values.index(sweep.current)
        best_index = best_on_train(sign * train_curve, sweep)
        proposed = sweep.values[best_index]
        keys = {sweep.key_for(v) for v in sweep.values}
        row = {
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
        row["cliff_warning"], row["n_cliffs"] = _cliff_warning(row, rules, maximize=sign > 0)
        row["tested"], row["_screened_out"] = screen(row, rules)
        rows.append(row)
    return rows


def screen(row: dict, rules: DecisionRules) -> tuple[bool, str]:
    """(tested, why not): a constant is tested on validation when train proposes a change that
    gains more than the improvement threshold and is not next to a cliff; decided on train alone,
    so leaving the others out of the family costs no error control."""
    if row["proposed"] == row["current"]:
        return False, "no change is proposed"
    train = row["train_delta"]
    if not np.isfinite(train) or train <= rules.improvement_threshold:
        return False, (f"its best value on train gains {train:+.4f}, not more than the improvement threshold "
                       f"{rules.improvement_threshold}")
    if row["cliff_warning"]:
        return False, "it is next to a cliff"
    return True, ""


LATER_LOOK_WEIGHT = 4.0  # x train_weight: how strongly a later look's Holm weights follow train


def later_look_weights(train_stats: np.ndarray, train_weight: float) -> np.ndarray:
    """A later look's Holm weights: exp(4 x train_weight x each change's train statistic), fixed on
    train before any validation data, so the weighted Holm keeps its error rate whatever they are;
    a change with strong train evidence gets more of the look's share (as the max-T's train offsets
    give it at the first look), and train_weight 0 is plain Holm."""
    return np.exp(LATER_LOOK_WEIGHT * train_weight * np.asarray(train_stats, dtype=float))


def _later_look(rows: list[dict], family: list[int], columns: dict[int, np.ndarray], rules: DecisionRules,
                alpha: float, rng) -> dict[str, Tested]:
    """Holm over the family's constants at a later look (weighted by train under max-T, else the
    study's step-wise correction): those taking part by their p-value on the look's scenarios,
    the others settled (accepted at p = 0, else p = 1). Max-T would need every constant of the
    family measured on the round's scenarios; only the open ones are."""
    p_values = np.array([one_sided_p(columns[i], rng) if i in columns
                         else 0.0 if rows[i]["decision"] == ACCEPT else 1.0 for i in family])
    names = [rows[i]["constant"] for i in family]
    if rules.correction != "max_t":
        return stepwise(names, p_values, rules.correction, alpha)
    weights = later_look_weights([rows[i].get("_train_stat", 0.0) for i in family], rules.train_weight)
    adjusted, tails = weighted_holm(p_values, weights, alpha)
    return {name: Tested(float(p), float(a), (float(t),)) for name, p, a, t in zip(names, p_values, adjusted, tails)}


def _attach(row: dict, column: np.ndarray, tested: Tested | None, rules: DecisionRules, rng) -> None:
    """The validation delta with its plain interval (at the confidence level) and, for a tested
    constant, its p-values and the interval at its corrected level, which excludes 0 exactly when
    the correction accepts it (``family.Tested``). An untested constant has no corrected interval
    and p_adjusted 1: it makes no claim."""
    own = measured(column)
    row["validation_delta"] = float(own.mean()) if own.size else np.nan
    row["n_validation"] = int(own.size)
    flip = sign_flip(column, rng)
    row["ci_low"], row["ci_high"] = interval(flip, (1.0 - rules.confidence_level) / 2.0)
    if tested is None:
        row["p_value"], row["p_adjusted"] = one_sided_p(column, rng, flip), 1.0
        row["corrected_level"] = np.nan
        row["corrected_ci_low"], row["corrected_ci_high"] = np.nan, np.nan
        return
    row["p_value"], row["p_adjusted"] = tested.p_value, tested.p_adjusted
    row["corrected_level"] = 1.0 - 2.0 * tested.tails[0]
    row["corrected_ci_low"], row["corrected_ci_high"] = interval(flip, tested.tails[0])


def _cliff_warning(row: dict, rules: DecisionRules, *, maximize: bool) -> tuple[str, int]:
    sweep: ConstantSweep = row["_sweep"]
    if not sweep.curve:
        return "", 0
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
    return warning, len(cliffs)


def changes(n: int) -> str:
    return f"{n} change" if n == 1 else f"{n} changes"


def _decide_one(row: dict, rules: DecisionRules, *, family_size: int) -> None:
    train_delta, validation_delta = row["train_delta"], row["validation_delta"]
    fmt = lambda x: "nan" if x is None or np.isnan(x) else f"{x:+.4f}"  # noqa: E731
    sensitivity = rules.sensitivity_threshold
    untested = f"not tested on validation: {row['_screened_out']} (screened on train; not in the correction)"
    if len(row["_sweep"].values) == 1:
        decision, reason = NO_SENSITIVITY, "held at today's value: it has one candidate, so nothing was swept"
    elif row["proposed"] == row["current"]:
        decision, reason = NO_SENSITIVITY, (
            f"current value is already the best on train, so no change is proposed "
            f"(the train curve spans {row['train_curve_range']:.4f})")
    elif row["cliff_warning"]:  # screened out: a cliff is never tested
        decision, reason = REJECT, f"cliff: {row['cliff_warning']}; {untested}"
    elif abs(train_delta) < sensitivity and (not np.isfinite(validation_delta) or abs(validation_delta) < sensitivity):
        decision, reason = NO_SENSITIVITY, (
            f"train and validation deltas ({fmt(train_delta)}, {fmt(validation_delta)}) are both "
            f"below the sensitivity threshold {sensitivity} (not tested on validation)")
    elif not row["tested"]:
        decision, reason = REJECT, untested
    elif row["n_validation"] == 0:
        decision, reason = REJECT, "no validation scenario has both values measured (failed trials?)"
    elif validation_delta <= rules.improvement_threshold:
        decision, reason = REJECT, (
            f"validation delta {fmt(validation_delta)} does not exceed the improvement threshold "
            f"{rules.improvement_threshold} (train delta {fmt(train_delta)}): {_why_short(train_delta, validation_delta)}"
        )
        # Not futile while its interval still reaches above the threshold: a further round (if the
        # study has one) may settle it. Looking again never spends more than each look's share of
        # the error budget, so only the final look rejects such a change.
        if row["ci_high"] > rules.improvement_threshold:
            row["_interval_only"] = True
            row["_open_note"] = f" yet, but its {rules.confidence_level:.0%} interval reaches {fmt(row['ci_high'])}"
    elif np.isnan(row["corrected_ci_low"]) and np.isnan(row["corrected_ci_high"]):
        decision, reason = REJECT, (
            f"{row['n_validation']} validation scenarios are too few for a sign-flip interval at the "
            f"{CORRECTION_NAMES[row['_correction']]}-corrected level {row['corrected_level']:.4f} (adjusted p "
            f"{row['p_adjusted']:.4f}; {changes(family_size)} tested): add validation scenarios to decide it")
        row["_interval_only"] = True  # more scenarios could decide it
    elif not (row["corrected_ci_low"] > 0 and row["p_adjusted"] <= row["look_alpha"]):
        decision, reason = REJECT, (
            f"validation interval (one-sided sign-flip test) at the {CORRECTION_NAMES[row['_correction']]}-corrected "
            f"level {row['corrected_level']:.4f} [{fmt(row['corrected_ci_low'])}, {fmt(row['corrected_ci_high'])}] "
            f"(adjusted p {row['p_adjusted']:.4f}) does not exclude 0 ({changes(family_size)} tested)"
        )
        row["_interval_only"] = True  # more scenarios could decide it
    else:
        decision, reason = ACCEPT, (
            f"validation delta {fmt(validation_delta)} > {rules.improvement_threshold}, "
            f"{CORRECTION_NAMES[row['_correction']]}-corrected interval "
            f"[{fmt(row['corrected_ci_low'])}, {fmt(row['corrected_ci_high'])}] above 0 ({changes(family_size)} tested)"
        )
    row["decision"], row["reason"] = decision, reason


def _why_short(train_delta: float, validation_delta: float) -> str:
    """Why a tested change (train gains more than the improvement threshold) whose validation
    delta is at or below it is rejected, in true words: only a gain on train that is lost on
    validation "does not generalise"."""
    if validation_delta <= 0 < train_delta:
        return "the gain on train does not carry over to the held-out scenarios (does not generalise)"
    if validation_delta <= 0:
        return "no gain on the held-out scenarios"
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


# A decision as the headline, a table, a plot title say it (the stored codes stay as they are).
DECISION_WORDS = {ACCEPT: "accepted", REJECT: "rejected", NO_SENSITIVITY: "insensitive",
                  INCONCLUSIVE: "not decided yet"}


TODAYS_BEST = "today's best"  # no change proposed: today's value is the best on train (or the only one)


def decision_word(code: str) -> str:
    """A decision as a plot title or a heading says it: 'accepted', 'insensitive', ..."""
    return DECISION_WORDS.get(code, code.replace("_", " "))


def shown_decisions(verdicts: pd.DataFrame) -> pd.Series:
    """Each verdict's decision as a person reads it (``decision_word``), a *no sensitivity* one
    "today's best" when no change was proposed (the stored codes stay as they are)."""
    words = verdicts["decision"].map(decision_word)
    return words.mask((verdicts["decision"] == NO_SENSITIVITY) & (verdicts["proposed"] == verdicts["current"]),
                      TODAYS_BEST)


def headline(verdicts: pd.DataFrame) -> str:
    """'2 of 20 constants accepted (decay_rate 0.5 -> 0.7, top_k 8 -> 12); 7 rejected, 9 today's best,
    2 insensitive', marked interim while a validation round is due. A *no sensitivity* verdict
    reads "today's best" when no change was proposed (today's value won on train, or was the only
    candidate), "insensitive" when a change was proposed but gains too little either way."""
    if verdicts.empty:
        return "no constant decided yet"
    counts = summarise_verdicts(verdicts)
    accepted = verdicts[verdicts["decision"] == ACCEPT]
    changes = ", ".join(f"{row.constant} {_short(row.current)} -> {_short(row.proposed)}"
                        for row in accepted.itertuples())
    text = f"{counts['accepted']} of {counts['constants']} constants accepted" + (f" ({changes})" if changes else "")
    shown = shown_decisions(verdicts).value_counts()
    others = [f"{shown[word]} {word}" for word in (DECISION_WORDS[REJECT], TODAYS_BEST, DECISION_WORDS[NO_SENSITIVITY],
                                                   DECISION_WORDS[INCONCLUSIVE]) if shown.get(word, 0)]
    text += ("; " + ", ".join(others)) if others else ""
    if "final" in verdicts and not bool(verdicts["final"].all()):
        text += " (interim: a validation round is due)"
    return text


def _short(value) -> str:
    return f"{float(value):.6g}"


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
