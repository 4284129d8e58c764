"""Optuna as the ratchet's proposer for constants given a range: it explores them together on the
train scenarios, a batch of proposals at a time. No Dagster.

Each proposal is a sweep point like any other (``decay_rate=0.4127,recency_half_life_days=11.3``),
so its trials are partitions (point x train seed id) that the study's follow-up runs measure. Each
call of ``advance`` tells Optuna the train means of the proposals whose trials are in, and asks for
the next batch once the last one is told, until ``trials`` proposals are measured. The Optuna study
lives in the warehouse database (``RDBStorage``: SQLite by default, PostgreSQL when the warehouse
is), named after the study and a fingerprint of everything its results depend on, so a rerun
continues it and a changed search space starts afresh. The best proposal is then judged on the
validation scenarios with the constants' verdicts (one more hypothesis in their correction).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from benchmark_assets.kinds.ratchet.analysis import attempted_trials
from benchmark_assets.sweep import CURRENT_POINT, ConstantSweep, format_value

SEARCH_SUBJECT = "search"  # the verdict row (and ledger subject) of the search's best proposal
RUNNING, COMPLETE, FAILED = "running", "complete", "failed"


def rounded(value: float, low: float = -math.inf, high: float = math.inf, digits: int = 4) -> float:
    """A proposal rounded to ``digits`` significant digits, so that its point key stays readable
    (Optuna is told the value measured at the rounded point), kept within [low, high]."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    return float(min(high, max(low, float(f"{value:.{digits}g}"))))


@dataclass(frozen=True)
class SearchState:
    """Every proposal so far (one row each), whether the search has used its budget, and the
    parameter importances once it has."""

    trials: pd.DataFrame
    done: bool
    importance: dict


def _sampler(search, offset: int):
    import optuna

    # A sampler is rebuilt on every call; seeding it with the number of proposals so far keeps the
    # whole search reproducible without replaying the same random start-up draws in every batch.
    seed = search.seed * 1_000_003 + offset
    if search.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, search.batch))
    # constant_liar: proposals of one batch wait together, so each one asked counts as a bad
    # result until told, and the batch spreads out instead of asking for one point several times.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, search.trials // 4)),
                                      constant_liar=True)


def _distributions(study) -> dict:
    import optuna

    out = {}
    for name in study.searched:
        spec = study.spec.constants[name]
        low, high = spec.range
        if name in study.target.integer_constants:
            out[name] = optuna.distributions.IntDistribution(int(low), int(high), log=spec.log)
        else:
            out[name] = optuna.distributions.FloatDistribution(float(low), float(high), log=spec.log)
    return out


def _objectives(study) -> list[tuple[str, str]]:
    search = study.search
    if search.sampler == "nsga2":
        ordered = [study.spec.metric] + [m for m in search.objectives if m != study.spec.metric]
        return [(m, search.objectives[m]) for m in ordered]
    return [(study.spec.metric, study.spec.direction)]


def optuna_study(study, storage_url: str, *, offset: int = 0):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(storage_url)
    return optuna.create_study(study_name=f"{study.name}__search__{study.search_fingerprint()[:12]}",
                               storage=storage, sampler=_sampler(study.search, offset),
                               directions=[d for _, d in _objectives(study)], load_if_exists=True)


def _train_means(trials: pd.DataFrame, point: str, train_ids,
                 metrics: list[str]) -> tuple[list[float] | None, str]:
    """The point's mean of each metric over the train scenarios (each scenario's repeats averaged
    first), None with the reason while some are not measured or when every trial failed."""
    rows = trials[(trials["sweep_point"] == point) & trials["seed_id"].isin(list(train_ids))] if len(trials) \
        else trials
    if len(rows) == 0 or set(rows["seed_id"]) != set(train_ids):
        return None, "waiting"
    failed = rows[rows["status"] != "ok"]
    if len(failed):  # a proposal that breaks on some scenarios is no candidate (its mean would flatter it)
        return None, (failed["error"].iloc[0] or "a trial failed")
    missing = [m for m in metrics if m not in rows or rows[m].isna().any()]
    if missing:  # a search objective the target does not return: a failed proposal, not a crash
        return None, (f"the target returned no {missing[0]!r} (a search objective) on "
                      f"{int(rows[missing[0]].isna().sum()) if missing[0] in rows else len(rows)} of this proposal's "
                      f"{len(rows)} train trials; return it from the target, or remove it from search.objectives")
    per_scenario = rows.groupby("seed_id")[metrics].mean()
    return [float(per_scenario[m].mean()) for m in metrics], ""


def advance(study, trials: pd.DataFrame, storage_url: str) -> SearchState:
    """Tell Optuna what was measured, ask for the next batch when the last is told; the state.
    A proposal whose train trials exist already (Optuna asked for a point again, or for today's
    values) is told at once, so a batch always holds new points and the search keeps moving."""
    import optuna

    search = study.search
    train_ids = study.split[0]
    objectives = _objectives(study)
    metrics = [m for m, _ in objectives]
    handle = optuna_study(study, storage_url)
    distributions = _distributions(study)

    def settle(number: int, point: str) -> bool:
        values, why = _train_means(trials, point, train_ids, metrics)
        if values is not None:
            handle.tell(number, values)
        elif why != "waiting":  # a trial of the proposal failed: its errors are in the trials table
            handle.tell(number, state=optuna.trial.TrialState.FAIL)
        return why != "waiting"

    for trial in handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if "point" not in trial.user_attrs:  # asked, but the run died before it was named: void
            handle.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        else:
            settle(trial.number, trial.user_attrs["point"])
    finished = len(handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                              optuna.trial.TrialState.FAIL)))
    running = handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if not running and finished < search.trials:
        handle = optuna_study(study, storage_url, offset=finished)  # a sampler seeded for this batch
        new = set()
        for _ in range(50 * search.batch):  # asks that land on measured points are told at once
            if finished + len(new) >= search.trials or len(new) >= search.batch:
                break
            trial = handle.ask(distributions)
            params = {}
            for name, value in trial.params.items():
                low, high = study.spec.constants[name].range
                params[name] = int(value) if name in study.target.integer_constants else rounded(value, low, high)
            point = study.change_key(params)
            trial.set_user_attr("point", point)
            if settle(trial.number, point):
                finished += 1
            else:
                new.add(point)
    everything = handle.get_trials(deepcopy=False)
    done = sum(t.state.is_finished() for t in everything) >= search.trials and not any(
        t.state == optuna.trial.TrialState.RUNNING for t in everything)
    def why(point: str) -> str:  # a failed proposal's reason ("" once its trials are no longer current)
        reason = _train_means(trials, point, train_ids, metrics)[1] if point else ""
        return "" if reason == "waiting" else reason

    frame = _frame(study, everything, metrics, why=why)
    importance = {}
    if done:
        best = best_proposal(study, frame, today=_today(trials, train_ids, metrics))
        if best is not None:  # the first proposal of the best point carries the flag
            frame.loc[frame.index[(frame["sweep_point"] == best) & (frame["state"] == COMPLETE)][0], "best"] = True
        importance = _importance(handle, frame, metrics[0], search.seed)
    return SearchState(frame, done, importance)


def _today(trials: pd.DataFrame, train_ids, metrics: list[str]) -> dict:
    values, _ = _train_means(trials, CURRENT_POINT, train_ids, metrics)
    return dict(zip(metrics, values)) if values is not None else {}


MIN_TRIALS_FOR_IMPORTANCE = 5


def _importance(handle, frame: pd.DataFrame, metric: str, seed: int) -> dict:
    """fANOVA importance of each searched constant for the study's metric; none with fewer than
    ``MIN_TRIALS_FOR_IMPORTANCE`` completed proposals or when they all scored the same (nothing to
    explain)."""
    import optuna

    values = frame.loc[frame["state"] == COMPLETE, f"train_{metric}"]
    if len(values) < MIN_TRIALS_FOR_IMPORTANCE or values.nunique() < 2:
        return {}
    try:
        found = optuna.importance.get_param_importances(
            handle, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed), target=lambda t: t.values[0])
    except (RuntimeError, ValueError):  # e.g. zero variance in every tree
        return {}
    return {k: float(v) for k, v in found.items()}


def failure_reasons(frame: pd.DataFrame) -> pd.Series:
    """How often each reason made a proposal fail, the commonest first (a frame stored before
    proposals had reasons has none)."""
    if "reason" not in frame:
        return pd.Series(dtype=int)
    reasons = frame.loc[(frame["state"] == FAILED) & frame["reason"].astype(bool), "reason"]
    return reasons.value_counts()


def _frame(study, everything, metrics: list[str], why=lambda point: "") -> pd.DataFrame:
    """One row per proposal; a failed one's ``reason`` says why (``why(point)``)."""
    states = {"COMPLETE": COMPLETE, "FAIL": FAILED, "RUNNING": RUNNING}
    rows = []
    for trial in everything:
        row = {"number": trial.number, "state": states.get(trial.state.name, trial.state.name.lower()),
               "sweep_point": trial.user_attrs.get("point", "")}
        params = study.point_for(row["sweep_point"]).params if row["sweep_point"] else {}
        for name in study.searched:
            row[f"param_{name}"] = float(params.get(name, np.nan))
        for i, metric in enumerate(metrics):
            row[f"train_{metric}"] = float(trial.values[i]) if trial.values else np.nan
        row["reason"] = why(row["sweep_point"]) if row["state"] == FAILED else ""
        rows.append(row)
    columns = ["number", "state", "sweep_point", *(f"param_{n}" for n in study.searched),
               *(f"train_{m}" for m in metrics), "reason"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["best"] = False
    return frame


def best_proposal(study, frame: pd.DataFrame, today: dict | None = None) -> str | None:
    """The point the search proposes: the best train value of the study's metric. NSGA-II: among
    the Pareto-optimal proposals, the best on the study's metric that is no worse than today's
    values (``today``: train means per objective) on any other objective, if one is; else the best
    Pareto-optimal one on the study's metric. None if nothing completed."""
    complete = frame[frame["state"] == COMPLETE]
    if complete.empty:
        return None
    objectives = _objectives(study)
    sign = {m: 1.0 if d == "maximize" else -1.0 for m, d in objectives}
    scores = pd.DataFrame({m: sign[m] * complete[f"train_{m}"] for m, _ in objectives})
    metric = study.spec.metric
    if len(objectives) > 1:
        values = scores.to_numpy()
        dominated = np.array([((values >= v).all(axis=1) & (values > v).any(axis=1)).any() for v in values])
        scores = scores[~dominated]
        others = [m for m, _ in objectives if m != metric and m in (today or {})]
        if others:
            keeps = (scores[others] >= pd.Series({m: sign[m] * today[m] for m in others})).all(axis=1)
            if keeps.any():
                scores = scores[keeps]
    order = scores.sort_values(metric, ascending=False, kind="stable").index
    return str(complete.loc[order[0], "sweep_point"])


def importance_markdown(importance: dict) -> list[str]:
    if not importance:
        return []
    lines = ["| constant | importance (fANOVA) |", "|---|---:|"]
    lines += [f"| {name} | {value:.3f} |" for name, value in sorted(importance.items(), key=lambda kv: -kv[1])]
    return lines


def describe(study, point: str) -> str:
    """``name=value, ...`` of the searched constants at ``point`` (today's values for current)."""
    params = study.point_for(point or CURRENT_POINT).params
    return ", ".join(f"{n}={format_value(params[n])}" for n in study.searched)


@dataclass(frozen=True)
class SearchSweep(ConstantSweep):
    """The search's proposal as a two-value sweep the verdicts judge like a constant's: value 0 is
    today's constants, value 1 the best proposal (``best_key``)."""

    best_key: str = CURRENT_POINT
    curve: ClassVar[bool] = False  # no cliff between today's values and a proposal

    def key_for(self, value) -> str:
        return CURRENT_POINT if value == self.current else self.best_key


def search_sweep(study, best_key: str) -> SearchSweep:
    tier = min(study.spec.constants[n].tier for n in study.searched)
    return SearchSweep(name=SEARCH_SUBJECT, tier=tier, current=0.0, values=(0.0, 1.0), best_key=best_key)


def measured_on(trials: pd.DataFrame, point: str, seed_ids) -> bool:
    """Every one of ``seed_ids`` has a trial row of ``point``."""
    return {(point, int(s)) for s in seed_ids} <= attempted_trials(trials)
