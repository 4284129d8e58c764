"""What a load sweep measures after its first round: another trial at each point not yet precise
(``stopping``), or the capacity search's next probe (``capacity``); no Dagster. The kind's
follow-ups ask for these trials, its ``stopping`` node shows where each point stands."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark_assets.kinds.base import is_ingested
from benchmark_assets.kinds.load_sweep.capacity import REQUESTS, Search, SearchPlan, Slo, search
from benchmark_assets.kinds.load_sweep.spec import LoadSweepStudy
from benchmark_assets.kinds.load_sweep.stopping import Stop, current_round, point_stop
from benchmark_assets.kinds.load_sweep.trials import NOT_RUN


def round_trials(study: LoadSweepStudy, trials: pd.DataFrame) -> pd.DataFrame:
    """The stored trials a study's decisions rest on now: all of them for a fixed count; with
    ``stopping`` or ``capacity``, each point's latest round (and only the probes of the latest
    search, which began when its low load's first trials were measured)."""
    if (study.spec.stopping is None and study.spec.capacity is None) or trials.empty:
        return trials
    first = study.trial_range[0]
    since = None
    if study.spec.capacity is not None:
        low = study.point_keys[0]
        opening = (trials["sweep_point"] == low) & (trials["trial"].astype(int) < first) & ~is_ingested(trials)
        started = pd.to_numeric(trials.loc[opening, "started_at"], errors="coerce")
        since = float(started.min()) if started.notna().any() else None
    return current_round(trials, first, since)


def search_plan(study: LoadSweepStudy) -> SearchPlan:
    capacity = study.spec.capacity
    first, last = study.trial_range
    precision = float(capacity.precision) if capacity.precision is not None else 1.0
    stopping = study.spec.stopping
    return SearchPlan(parameter=capacity.search, low=float(capacity.low), high=float(capacity.high),
                      precision=precision, first=first, last=last,
                      alpha=1.0 - float(study.spec.decision.confidence_level),
                      slos=tuple(Slo(s.column, float(s.below), s.label, s.metric) for s in study.spec.slos),
                      spending=stopping.spending if stopping else "pocock")


def capacity_search(study: LoadSweepStudy, trials: pd.DataFrame) -> Search:
    """The capacity search's state from the stored trials of its latest run."""
    return _search(study, round_trials(study, trials))


def _search(study: LoadSweepStudy, rows: pd.DataFrame) -> Search:
    """``capacity_search`` of the trials of the current round (``round_trials``)."""
    plan = search_plan(study)
    rows = rows[~is_ingested(rows)] if len(rows) else rows  # the search measures its own loads
    columns = [slo.column for slo in plan.slos] + ([REQUESTS] if any(s.metric == "error_rate" for s in plan.slos)
                                                    else [])
    measured = {}
    for key, group in (rows.groupby("sweep_point", sort=False) if len(rows) else ()):
        if not study.is_point(key):
            continue
        ok = group[group["status"] == "ok"]
        values = {c: ok[c].to_numpy(float) if c in ok else np.full(len(ok), math.nan) for c in columns}
        measured[float(study.point(key).params[plan.parameter])] = (values, int((group["status"] != "ok").sum()))
    return search(plan, measured)


def decision_metrics(study: LoadSweepStudy) -> list[str]:
    """What a point's trials must pin down before it stops: every objective and latency SLO statistic."""
    out = [o.column for o in study.objectives]
    return list(dict.fromkeys(out + [s.column for s in study.spec.slos if s.metric != "error_rate"]))


def point_stops(study: LoadSweepStudy, trials: pd.DataFrame) -> list[Stop]:
    """Where each of the study's points stands (``stopping``)."""
    return _stops(study, round_trials(study, trials))


def _stops(study: LoadSweepStudy, rows: pd.DataFrame) -> list[Stop]:
    """``point_stops`` of the trials of the current round (``round_trials``)."""
    stopping, (first, last), metrics = study.spec.stopping, study.trial_range, decision_metrics(study)
    out = []
    for key in study.point_keys:
        group = rows[rows["sweep_point"] == key] if len(rows) else rows
        group = group[~is_ingested(group)] if len(group) else group
        ok = group[group["status"] == "ok"] if len(group) else group
        not_run = group[group["error"].astype(str).str.startswith(NOT_RUN)] if len(group) else group
        if len(not_run):  # a lower load was overloaded: more trials here would be skipped too
            out.append(Stop(key, len(group), len(group) - len(ok), True, str(not_run["error"].iloc[0]), {}))
            continue
        out.append(point_stop(key, ok, len(group) - len(ok), metrics, first=first, last=last,
                              precision=float(stopping.precision),
                              alpha=1.0 - float(study.spec.decision.confidence_level), spending=stopping.spending))
    return out


def _next_number(rows: pd.DataFrame, key: str) -> int:
    own = rows[(rows["sweep_point"] == key) & ~is_ingested(rows)] if len(rows) else rows
    return int(own["trial"].astype(int).max()) + 1 if len(own) else 0


def next_trials(study: LoadSweepStudy, trials: pd.DataFrame) -> tuple[str, dict[str, list[str]]] | None:
    """The trials to measure next, with why: the capacity search's next probe (its first trials
    when it is new, else one more), or one more trial at every point not yet precise; None when
    nothing is left to measure."""
    rows = round_trials(study, trials)
    if study.spec.capacity is not None:
        state = _search(study, rows)
        if state.done:
            return None
        number = _next_number(rows, state.next_key)
        wanted = [str(t) for t in range(study.trial_range[0])] if number == 0 else [str(number)]
        return f"capacity search: {state.why}", {state.next_key: wanted}
    if study.spec.stopping is None:
        return None
    waiting = [s for s in _stops(study, rows) if not s.done]
    if not waiting:
        return None
    return (f"stopping: {len(waiting)} points not yet precise, one more trial each "
            f"({'; '.join(f'{s.point}: {s.reason}' for s in waiting[:3])}{'; ...' if len(waiting) > 3 else ''})",
            {s.point: [str(_next_number(rows, s.point))] for s in waiting})


def stopping_table(study: LoadSweepStudy, trials: pd.DataFrame) -> tuple[pd.DataFrame, str, Search | None]:
    """One row per point (per probe, for a capacity search) with its trials, whether it has
    enough, and why; a headline; the search's state."""
    if study.spec.capacity is not None:
        state = capacity_search(study, trials)
        table = pd.DataFrame([{"sweep_point": p.key, "load": float(p.value), "trials": int(p.trials),
                               "failed": int(p.failed), "done": p.verdict != "running", "verdict": p.verdict,
                               "met_on_means": bool(p.met_on_means), "binding": ", ".join(p.binding),
                               "reason": p.reason} for p in state.probes],
                             columns=["sweep_point", "load", "trials", "failed", "done", "verdict", "met_on_means",
                                      "binding", "reason"])
        headline = state.headline() if state.done else f"capacity search running: {state.why}"
        return table, headline, state
    stops = point_stops(study, trials) if study.spec.stopping else []
    table = pd.DataFrame([{"sweep_point": s.point, "trials": int(s.trials), "failed": int(s.failed), "done": s.done,
                           "reason": s.reason} for s in stops],
                         columns=["sweep_point", "trials", "failed", "done", "reason"])
    done = int(table["done"].sum()) if len(table) else 0
    precise = sum(s.reason.startswith("precise") for s in stops)
    headline = (f"{precise} of {len(stops)} points precise to +-{float(study.spec.stopping.precision):.0%}, "
                f"{done - precise} stopped at max_trials" + (f", {len(stops) - done} still measuring"
                                                              if done < len(stops) else "")
                if study.spec.stopping else "a fixed number of trials per point")
    return table, headline, None
