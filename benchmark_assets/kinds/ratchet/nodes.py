"""The node functions of ``kind: ratchet``: each computes one asset of its graph from its inputs
(``kinds.base.Node``), calling the kind's analysis and report; ``kind.py`` wires them."""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark_assets import artifacts
from benchmark_assets.kinds.base import (
    LedgerEntry,
    Markdown,
    NodeResult,
)
from benchmark_assets.kinds.ratchet import schemas
from benchmark_assets.kinds.ratchet.analysis import (
    ACCEPT,
    aggregate_trials,
    decide_ratchet,
    headline,
    summarise_verdicts,
)
from benchmark_assets.kinds.ratchet.cumulative import KEEP, accepted_changes, build_up, combined_gain
from benchmark_assets.kinds.ratchet.interactions import judge_interactions, pair_claims
from benchmark_assets.kinds.ratchet.report import decision_table, write_ratchet_outputs
from benchmark_assets.kinds.ratchet.search import (
    RUNNING,
    SEARCH_SUBJECT,
    advance,
    describe,
    failure_reasons,
    importance_markdown,
    measured_on,
    search_sweep,
)
from benchmark_assets.kinds.ratchet.spec import RatchetStudy
from benchmark_assets.kinds.ratchet.trials import current_rows, points_by_key, run_trials
from benchmark_assets.scenarios.parametric import ScenarioSeed, build_scenario
from benchmark_assets.sweep import CURRENT_POINT


def scenario_catalog(study: RatchetStudy, step) -> NodeResult:
    wanted = {int(k) for k in step.partition_keys}
    rows = []
    for seed in study.all_scenario_seeds:
        if seed.seed_id in wanted:
            scenario = build_scenario(seed)
            rows.append({**seed.as_dict(), "name": scenario.name, "split": study.split_of(seed.seed_id),
                         "round": study.round_of(seed.seed_id), "relevant_count": scenario.relevant_count()})
    frame = pd.DataFrame(rows)[list(schemas.scenario_catalog_schema().columns)]
    return NodeResult(frame, {"scenarios": len(frame), "train": int((frame["split"] == "train").sum())})


def trials(study: RatchetStudy, step, scenario_catalog: pd.DataFrame) -> NodeResult:
    seeds_by_point: dict[str, set[int]] = {}
    for point, seed_id in step.partition_keys:
        seeds_by_point.setdefault(point, set()).add(int(seed_id))
    catalog = {int(row["seed_id"]): ScenarioSeed.from_mapping(row) for row in scenario_catalog.to_dict("records")}
    # Points that share the same seeds run as one vectorised group (a ranged run is a rectangle).
    groups: dict[frozenset, list[str]] = {}
    for point, seeds in seeds_by_point.items():
        groups.setdefault(frozenset(seeds), []).append(point)
    frames = []
    for seeds, point_keys in groups.items():
        missing = sorted(seeds - catalog.keys())
        if missing:
            raise ValueError(f"scenario_catalog has no rows for seed ids {missing}; materialise it first")
        frames.append(run_trials(study, points_by_key(study, point_keys), [catalog[s] for s in sorted(seeds)],
                                 progress=step.progress(f"{study.name} trials")))
    frame = pd.concat(frames, ignore_index=True)
    return NodeResult(frame, {"sweep_points": len(seeds_by_point)})


def aggregates(study: RatchetStudy, step, trials: pd.DataFrame) -> NodeResult:
    frame = aggregate_trials(study, trials, list(step.partition_keys))
    return NodeResult(frame, {"sweep_points": frame["sweep_point"].nunique(), "rows": len(frame)})


def search(study: RatchetStudy, step, trials: pd.DataFrame) -> NodeResult:
    """One step of the Optuna search on train (see ``search.advance``): every proposal so far, the
    best once the budget is used, and whether the best is measured on validation yet."""
    trials = current_rows(study, trials)
    if not study.searched:
        return NodeResult(_empty_search(study), {"search": "no constant has a range"})
    state = advance(study, trials, step.warehouse_url)
    frame = state.trials
    frame["validated"] = [bool(best) and measured_on(trials, point, study.split[1])
                          for point, best in zip(frame["sweep_point"], frame["best"])]
    for name in study.searched:
        frame[f"importance_{name}"] = state.importance.get(name, np.nan)
    running = int((frame["state"] == RUNNING).sum())
    metadata = {"proposals": len(frame), "running": running, "budget": study.search.trials,
                "sampler": study.search.sampler}
    reasons = failure_reasons(frame)
    if len(reasons):
        metadata["failed_proposals"] = f"{reasons.sum()}: {reasons.index[0]}"
    if state.done and frame["best"].any():
        best = frame.loc[frame["best"], "sweep_point"].iloc[0]
        metadata["best"] = describe(study, best)
        if state.importance:
            metadata["importance"] = Markdown("\n".join(importance_markdown(state.importance)))
    elif running:
        step.log(f"search: {running} proposals wait for their train trials (the run's follow-up measures them)")
    return NodeResult(frame, metadata)


def _empty_search(study: RatchetStudy) -> pd.DataFrame:
    return pd.DataFrame({"number": pd.Series(dtype=int), "state": pd.Series(dtype=str),
                         "sweep_point": pd.Series(dtype=str), "best": pd.Series(dtype=bool),
                         "validated": pd.Series(dtype=bool)})


def search_status(study: RatchetStudy, search_frame: pd.DataFrame) -> tuple[str | None, str]:
    """(the best proposal's point, '') once the search is done and its best is measured on
    validation; (None, why) while it is not; (None, '') without a search, or when every proposal
    failed (nothing to judge: the report says so)."""
    if not study.searched:
        return None, ""
    if search_frame.empty or "best" not in search_frame:
        return None, "the search has not used its budget yet"
    if not search_frame["best"].astype(bool).any():
        finished = search_frame["state"].isin(["complete", "failed"]).sum()
        if finished >= study.search.trials and not (search_frame["state"] == RUNNING).any():
            return None, ""  # done, and no proposal completed
        return None, "the search has not used its budget yet"
    best = search_frame[search_frame["best"].astype(bool)].iloc[0]
    if not bool(best["validated"]):
        return None, f"the search's best proposal {best['sweep_point']} is not measured on validation yet"
    return str(best["sweep_point"]), ""


def verdicts(study: RatchetStudy, step, trials: pd.DataFrame, search: pd.DataFrame) -> NodeResult:
    sweeps = study.constant_sweeps(names=step.subjects or None)
    unknown = sorted(set(step.subjects) - set(study.spec.constants))
    with_search = not step.subjects or bool(set(step.subjects) & set(study.searched))
    best, waiting = search_status(study, search) if with_search else (None, "")
    if unknown or not (sweeps or study.searched):
        raise ValueError(f"no constants selected (unknown: {unknown}); choose from {sorted(study.spec.constants)}")
    trials = current_rows(study, trials)
    present = set(trials["sweep_point"]) if len(trials) else set()
    missing = sorted({s.key_for(v) for s in sweeps for v in s.values} - present)
    if missing:
        raise ValueError(
            f"sweep points {missing[:5]}{'...' if len(missing) > 5 else ''} have no trials yet; "
            f"materialise them first (benchmark-assets run {study.name})"
        )
    if best is not None:
        sweeps = sweeps + [search_sweep(study, best)]
    train_ids, validation_ids = study.split
    # The interaction pairs that clear their screen are tested in the same family (``family``).
    pairs = pair_claims(trials, study.interaction_sweeps(set(step.subjects) or None), study.change_key, study.rules,
                        metric=study.spec.metric, maximize=study.maximize, train_ids=train_ids,
                        validation_ids=validation_ids)
    frame = decide_ratchet(trials, sweeps, study.rules, metric=study.spec.metric, maximize=study.maximize,
                           train_ids=train_ids, validation_ids=validation_ids, rounds=study.validation_rounds,
                           spending=study.spec.sequential.spending, other_claims=pairs)
    if frame.empty:  # only the search, and it is not judged yet
        frame = _no_verdicts()
    rounds_due = sorted(set(frame.loc[frame["next_round"] > 0, "next_round"]))
    if rounds_due and not waiting:
        due = ", ".join(frame.loc[frame["next_round"] > 0, "constant"])
        waiting = f"validation round {rounds_due[0]} is due for {due}"
    # Verdicts go to the ledger once, when they are settled: no round due, the search judged (it is
    # one more hypothesis of the same correction). Until then they are interim (each look's
    # numbers are in the report and in the ledger entry's details).
    frame["final"] = not waiting
    counts = summarise_verdicts(frame)
    accepted = ", ".join(frame.loc[frame["decision"] == ACCEPT, "constant"]) or "none"
    metadata = {"headline": headline(frame), **counts, "accepted_constants": accepted, "decisions": decision_table(frame)}
    if waiting:
        metadata["waiting"] = f"{waiting}; these verdicts are interim and not in the ledger"
        step.log(metadata["waiting"])
        return NodeResult(frame, metadata)
    return NodeResult(frame, metadata, ledger=ledger_entries(study, frame))


def _no_verdicts() -> pd.DataFrame:
    text = ("constant", "decision", "reason", "cliff_warning", "metric", "proposed_point")
    whole = ("tier", "n_validation", "next_round", "look", "rounds_used", "n_failed_trials", "n_cliffs", "family_size")
    columns = {c: pd.Series(dtype=str) for c in text} | {c: pd.Series(dtype=int) for c in whole}
    columns["tested"] = pd.Series(dtype=bool)
    for c in ("current", "proposed", "p_value", "p_adjusted", "train_delta", "validation_delta", "ci_low", "ci_high",
              "corrected_ci_low", "corrected_ci_high", "corrected_level", "look_alpha"):
        columns[c] = pd.Series(dtype=float)
    return pd.DataFrame(columns)


def ledger_entries(study: RatchetStudy, verdicts: pd.DataFrame) -> list[LedgerEntry]:
    """One entry per constant: the validation delta with its plain and its corrected interval."""
    return [
        LedgerEntry(
            subject=row["constant"], decision=row["decision"], reason=row["reason"], metric=study.spec.metric,
            baseline=_searched_values(study, CURRENT_POINT) if row["constant"] == SEARCH_SUBJECT else row["current"],
            proposal=_searched_values(study, row["proposed_point"]) if row["constant"] == SEARCH_SUBJECT
            else row["proposed"], effect=row["validation_delta"],
            ci_low=row["ci_low"], ci_high=row["ci_high"], adjusted_ci_low=row["corrected_ci_low"],
            adjusted_ci_high=row["corrected_ci_high"], confidence_level=study.rules.confidence_level,
            p_value=row["p_value"], p_adjusted=row["p_adjusted"],
            details={"tier": int(row["tier"]), "train_delta": row["train_delta"], "cliff_warning": row["cliff_warning"],
                     "tested": bool(row["tested"]), "family_size": int(row["family_size"]),
                     "adjusted_level": row["corrected_level"], "n_validation": int(row["n_validation"]),
                     "look": int(row["look"]), "look_alpha": row["look_alpha"]},
        )
        for row in verdicts.to_dict("records")
    ]


def interactions(study: RatchetStudy, step, trials: pd.DataFrame, search: pd.DataFrame) -> NodeResult:
    """One verdict per interaction pair whose two constants the run decides on (all by default),
    tested in one family with the constants and the search's proposal (as the verdicts are)."""
    trials = current_rows(study, trials)
    names = set(step.subjects) or None
    pairs = study.interaction_sweeps(names)
    train_ids, validation_ids = study.split
    with_search = not step.subjects or bool(set(step.subjects) & set(study.searched))
    best, waiting = search_status(study, search) if with_search and pairs else (None, "")
    constants = study.constant_sweeps(names=step.subjects or None) + ([search_sweep(study, best)] if best else [])
    frame, _ = judge_interactions(trials, pairs, study.change_key, study.rules, metric=study.spec.metric,
                                  maximize=study.maximize, train_ids=train_ids, validation_ids=validation_ids,
                                  constants=constants)
    counts = frame["decision"].value_counts()
    entries = [
        LedgerEntry(
            subject=row["pair"], decision=row["decision"], reason=row["reason"], metric=study.spec.metric,
            baseline={row["first"]: row["first_alone"], row["second"]: row["second_alone"]},
            proposal={row["first"]: row["first_value"], row["second"]: row["second_value"]},
            effect=float(np.min([row[f"validation_vs_{k}"] for k in ("first", "second", "current")])),
            confidence_level=study.rules.confidence_level, p_value=row["p_value"], p_adjusted=row["p_adjusted"],
            details={"kind": "interaction", "adjusted_level": row["corrected_level"],
                     "vs_first": [row["validation_vs_first"], row["first_ci_low"], row["first_ci_high"]],
                     "vs_second": [row["validation_vs_second"], row["second_ci_low"], row["second_ci_high"]],
                     "vs_current": [row["validation_vs_current"], row["current_ci_low"], row["current_ci_high"]],
                     "n_validation": int(row["n_validation"])},
        )
        for row in frame.to_dict("records")
    ]
    metadata = {"pairs": len(frame), "tested": int(frame["tested"].sum()), "accepted": int(counts.get(ACCEPT, 0))}
    if waiting:  # the search's proposal joins the family once it is judged: these verdicts may change
        metadata["waiting"] = f"{waiting}; these verdicts are interim and not in the ledger"
        return NodeResult(frame, metadata)
    return NodeResult(frame, metadata, ledger=entries)


def cumulative(study: RatchetStudy, step, trials: pd.DataFrame, verdicts: pd.DataFrame,
               interactions: pd.DataFrame) -> NodeResult:
    """The accepted changes built up together on validation; while a combination still needs its
    trials the table ends in a ``pending`` step (the run's follow-up measures it) and nothing goes
    to the ledger."""
    trials = current_rows(study, trials)
    validation = study.split[1]
    built = build_up(trials, accepted_changes(verdicts, interactions, study.changes_of), study.change_key, study.rules,
                     metric=study.spec.metric, maximize=study.maximize, validation_ids=validation)
    frame = built.steps
    kept = frame.loc[frame["decision"] == KEEP, "change"].tolist()
    metadata = {"changes": len(frame), "kept": ", ".join(kept) or "none",
                "patch_point": study.change_key(built.kept)}
    if built.missing:
        metadata["pending"] = (f"{built.missing} on {len(validation)} validation scenarios: `benchmark-assets run "
                               f"{study.name}` (or the study's job) measures it and goes on")
        step.warn(f"cumulative validation needs {metadata['pending']}")
        return NodeResult(frame, metadata)
    total = combined_gain(trials, study.change_key(built.kept), study.change_key({}), study.rules,
                          metric=study.spec.metric, maximize=study.maximize, validation_ids=validation)
    metadata.update({"combined_delta": total["delta"], "combined_ci_low": total["ci_low"],
                     "combined_ci_high": total["ci_high"]})
    entries = [
        LedgerEntry(subject=row["change"], decision=row["decision"], reason=row["reason"], metric=study.spec.metric,
                    baseline=row["compared_with"], proposal=row["combination"], effect=row["marginal_delta"],
                    ci_low=row["ci_low"], ci_high=row["ci_high"], confidence_level=study.rules.confidence_level,
                    details={"kind": "cumulative", "step": int(row["step"]), "own_delta": row["own_delta"],
                             "n_validation": int(row["n_validation"])})
        for row in frame.to_dict("records")
    ] if len(frame) > 1 else []  # one accepted change has nothing to be combined with
    if "final" in verdicts and not verdicts["final"].all():
        metadata["waiting"] = "the verdicts are interim (a round or the search is due): nothing goes to the ledger"
        entries = []
    return NodeResult(frame, metadata, ledger=entries)


def _searched_values(study: RatchetStudy, point: str) -> dict:
    params = study.point_for(point).params
    return {name: params[name] for name in study.searched}


def ratchet_summary(study: RatchetStudy, step, verdicts: pd.DataFrame, interactions: pd.DataFrame,
                    cumulative: pd.DataFrame, search: pd.DataFrame, aggregates: pd.DataFrame,
                    trials: pd.DataFrame) -> NodeResult:
    folder = artifacts.run_dir(study.name, step.run_id)
    trials = current_rows(study, trials)
    summary, metadata = write_ratchet_outputs(study, verdicts, aggregates, trials, folder, interactions=interactions,
                                              cumulative=cumulative, search=search)
    return NodeResult(summary, {"headline": headline(verdicts), **metadata, "decisions": decision_table(verdicts)})


