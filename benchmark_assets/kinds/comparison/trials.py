"""Runs a comparison study's trials (arm x seed) through its command and returns their rows; no Dagster."""
from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from benchmark_assets.kinds.comparison.spec import ARMS, TRIAL_COLUMNS, ComparisonStudy
from benchmark_assets.parallel import run_all
from benchmark_assets.stats.curves import CurveError, summarise_curve
from benchmark_assets.targets.command import allow_trials, run_command_trial, stop_running_trials


def run_comparison_trials(
    study: ComparisonStudy,
    keys: list[tuple[str, int]],
    *,
    progress: Callable[[int, int], None] | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """One row per (arm, seed): scalars as columns, curves as JSON, failures with their error.

    Up to ``target.parallel`` commands run at once (they are subprocesses, so threads suffice);
    ``on_row`` gets each row as its trial finishes (``parallel.run_all``: an interrupt keeps them)."""
    def one(key: tuple[str, int]) -> dict:
        arm, seed = key
        trial = run_command_trial(study.command, seed=study.trial_seed(arm, seed), params=study.params(arm))
        curves = {name: {"steps": c.steps.tolist(), "values": c.values.tolist()} for name, c in trial.curves.items()}
        scalars, status, error = trial.scalars, trial.status, trial.error
        clashes = sorted(set(scalars) & set(TRIAL_COLUMNS))
        if clashes:  # a metric called "seed" or "status" would overwrite what the trial row is about
            scalars, status = {}, "failed"
            error = (f"the command reported metrics named {clashes}, which are this table's own columns; "
                     "rename them in the command's output")
        return {
            "arm": arm, "seed": int(seed), "trial_seed": study.trial_seed(arm, seed), "status": status,
            "error": error, "exit_code": -1 if trial.exit_code is None else int(trial.exit_code),
            "stderr_tail": trial.stderr_tail, "duration_seconds": float(trial.duration_seconds),
            "command": json.dumps(list(trial.argv)), "git_commit": trial.git_commit,
            "fingerprint": study.arm_fingerprint(arm), "curves_json": json.dumps(curves, separators=(",", ":")),
            **scalars,
        }

    # Each row goes to on_row as its trial finishes, so a run killed later keeps it; Ctrl-C lets
    # the running trials finish (a second one stops them) and keeps what finished.
    allow_trials()  # an earlier batch in this process may have been stopped
    rows = run_all(keys, one, workers=study.spec.target.parallel, on_result=on_row, progress=progress,
                   stop=stop_running_trials)
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(TRIAL_COLUMNS))
    return frame.sort_values(["arm", "seed"], key=lambda c: c.map(ARMS.index) if c.name == "arm" else c,
                             ignore_index=True)


def trial_summaries(study: ComparisonStudy, trials: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per (arm, seed): every scalar metric and the decision metric (a curve's summary, if it is a
    curve), NaN where the trial failed or the summary could not be taken. Returns the table and
    the problems found, one line each, for the report."""
    scalar_columns = [c for c in trials.columns if c not in TRIAL_COLUMNS]
    table = trials[["arm", "seed", "status"]].copy()
    for column in scalar_columns:
        table[column] = trials[column].where(trials["status"] == "ok").astype(float)
    problems = []
    metric, summary = study.spec.metric, study.spec.summary
    values = []
    # Records, not itertuples: metric names such as "val-loss" or "eval.acc" are not identifiers.
    for row in trials.to_dict("records"):
        value = math.nan
        if row["status"] == "ok":
            curves = json.loads(row["curves_json"] or "{}")
            where = f"{row['arm']} seed {row['seed']}"
            if summary is None:
                if metric in curves:
                    problems.append(f"{where}: {metric} is a curve; add summary: {{type: auc}} (or last_n, slope)")
                elif metric not in scalar_columns or pd.isna(row.get(metric, math.nan)):
                    problems.append(f"{where}: the command reported no {metric}")
                else:
                    value = float(row[metric])
            elif metric not in curves:
                problems.append(f"{where}: the command reported no curve {metric} to summarise "
                                f"(curves: {sorted(curves) or 'none'})")
            else:
                curve = curves[metric]
                try:
                    value = float(summarise_curve(np.asarray(curve["steps"], float), np.asarray(curve["values"], float),
                                                  summary.model_dump()))
                except CurveError as error:
                    problems.append(f"{where}: {error}")
        values.append(value)
    table[study.decision_metric] = values
    return table, problems
