"""Runs an estimator benchmark's trials: per data set (catalog entry x seed), the data are generated
once and every estimator asked for is fitted on them; one row per (estimator, data set). No Dagster.

A trial that fails (an estimator that does not import, raises, or returns the wrong shape) is a
failed row with its error; the other estimators and data sets still run.
"""
from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd

from benchmark_assets.kinds.estimator_benchmark.spec import (
    TRIAL_COLUMNS,
    EstimatorBenchmarkStudy,
    split_dataset_key,
)
from benchmark_assets.parallel import run_all
from benchmark_assets.scenarios.templates import Dataset, generate
from benchmark_assets.stats.uplift import METRICS, uplift_metrics
from benchmark_assets.targets.calls import error_text
from benchmark_assets.targets.uplift import EstimatorError, resolve_estimator, run_estimator


def dataset(study: EstimatorBenchmarkStudy, key: str) -> tuple[Dataset, dict]:
    """The data set of a key (entry id and seed) and the entry's metadata."""
    entry_id, seed = split_dataset_key(key)
    config, metadata = study.entry_by_id[entry_id].build(seed)
    return generate(config), metadata


class _Functions:
    """Each estimator's function resolved once per batch; one that does not import is every one
    of its trials' error."""

    def __init__(self, study: EstimatorBenchmarkStudy):
        self.study = study
        self._found: dict[str, Callable | str] = {}

    def get(self, name: str) -> Callable | str:
        if name not in self._found:
            estimator = self.study.estimator(name)
            try:
                self._found[name] = resolve_estimator(estimator.reference)
            except EstimatorError as error:
                self._found[name] = f"{error}; fix estimators entry {name!r} in {self.study.path.name}"
        return self._found[name]


def trial_row(study: EstimatorBenchmarkStudy, name: str, key: str, data: Dataset, functions: _Functions) -> dict:
    """One estimator fitted on one data set, scored against the known effects."""
    entry_id, seed = split_dataset_key(key)
    entry = study.entry_by_id[entry_id]
    row = {
        "estimator": name, "dataset": key, "entry_id": entry_id, "seed": seed, "template": entry.template,
        "metric_id": data.metric_id, "family": data.family,
        "memberships": json.dumps(study.star_points[entry_id], default=str),  # provenance: the star when run
        "fingerprint": study.estimator_fingerprints[name],
        "entry_fingerprint": study.entry_fingerprints[entry_id], "n_rows": int(data.outcome.size),
        "trial_seed": int(seed), "status": "ok", "error": "", "fit_seconds": float("nan"),
        **dict.fromkeys(METRICS, float("nan")),
    }
    function = functions.get(name)
    if isinstance(function, str):
        return {**row, "status": "failed", "error": function}
    estimator = study.estimator(name)
    try:
        estimate, seconds = run_estimator(function, data.features, data.treatment, data.outcome, seed=int(seed),
                                          options=estimator.options, name=name)
    except EstimatorError as error:
        return {**row, "status": "failed", "error": str(error)}
    except (Exception, SystemExit) as error:  # noqa: BLE001 - the user's estimator failed: a failed trial
        return {**row, "status": "failed", "error": error_text(error)}
    metrics = uplift_metrics(estimate, data.true_effect)
    return {**row, "fit_seconds": float(seconds), **{m: float(metrics[m]) for m in METRICS}}


def run_benchmark_trials(
    study: EstimatorBenchmarkStudy,
    keys: list[tuple[str, str]],
    *,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """One row per (estimator, data set) key, data set by data set (each generated once). Trials
    of estimators or entries no longer in the study are skipped. One trial at a time on a worker
    thread: the estimators use every core themselves, and Ctrl-C lets the running fit finish."""
    known_estimators, known_sets = set(study.estimator_names), set(study.dataset_keys)
    removed = sorted({f"{e}|{d}" for e, d in keys if e not in known_estimators or d not in known_sets})
    if removed and log:
        log(f"skipping {len(removed)} trials of estimators or data sets no longer in {study.path.name}: {removed[:5]}")
    by_set: dict[str, list[str]] = {}
    for name, key in keys:
        if name in known_estimators and key in known_sets:
            by_set.setdefault(key, []).append(name)
    order = {name: i for i, name in enumerate(study.estimator_names)}
    functions = _Functions(study)
    cache: dict[str, Dataset] = {}
    jobs = [(key, name) for key in study.dataset_keys if key in by_set for name in sorted(by_set[key], key=order.get)]

    def one(job: tuple[str, str]) -> dict:
        key, name = job
        if key not in cache:
            cache.clear()  # jobs come data set by data set: keep one in memory
            cache[key] = dataset(study, key)[0]
        return trial_row(study, name, key, cache[key], functions)

    def finished(row: dict) -> None:
        if log and row["status"] != "ok":
            log(f"{row['estimator']} on {row['dataset']}: failed ({row['error'][:300]})")
        if on_row:
            on_row(row)

    rows = run_all(jobs, one, workers=1, on_result=finished, progress=progress)
    return pd.DataFrame(rows, columns=[*TRIAL_COLUMNS, *METRICS]) if not rows else pd.DataFrame(rows)
