"""Runs a load sweep's trials (sweep point x trial) against its endpoint, in the study's order; no Dagster."""
from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pandas as pd

from benchmark_assets.kinds.base import is_current, trial_columns
from benchmark_assets.kinds.load_sweep.spec import LoadSweepStudy
from benchmark_assets.parallel import run_all
from benchmark_assets.servers.mock_llm import MockLLMConfig, mock_llm_process
from benchmark_assets.targets.http_load import GENERATOR_FAILED, metric_names, run_load_trial

# The columns every load trial row has; every other column is a metric statistic.
TRIAL_COLUMNS = trial_columns("sweep_point", "trial", "parameters", "started_at", "wall_seconds", "generator_cpu_seconds",
                              "endpoint", "overloaded")
# The error of a trial not run because a lower load of the sweep was overloaded (``overload``).
NOT_RUN = "not run: "


def resumable(study: LoadSweepStudy, checkpoint: pd.DataFrame) -> pd.DataFrame:
    """Checkpointed trials an interrupted run finished that the next run keeps: they succeeded,
    under the study's current load and server settings, on a point still in the study, and
    started at most ``resume_within_minutes`` ago (the server may have changed since)."""
    minutes = float(study.spec.resume_within_minutes)
    if checkpoint.empty or not minutes:
        return checkpoint.iloc[0:0]
    expected = pd.Series(study.fingerprint(), index=checkpoint.index, dtype=object)
    on_a_point = checkpoint["sweep_point"].map(study.is_point).astype(bool)
    keep = ((checkpoint["status"] == "ok") & is_current(checkpoint, expected, on_a_point)
            & (checkpoint["started_at"].astype(float) >= time.time() - 60 * minutes))
    return checkpoint[keep].reset_index(drop=True)


def metric_columns(trials: pd.DataFrame) -> list[str]:
    return [c for c in trials.columns if c not in TRIAL_COLUMNS]


def ordered(study: LoadSweepStudy, keys: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Repeated order: each trial sweeps every point before the next trial starts (drift over
    time spreads across all points); independent: each point runs all its trials in a row."""
    index = {key: i for i, key in enumerate(study.point_keys)}
    if study.spec.order == "repeated":
        return sorted(keys, key=lambda k: (k[1], index.get(k[0], len(index))))
    return sorted(keys, key=lambda k: (index.get(k[0], len(index)), k[1]))


@contextlib.contextmanager
def study_server(study: LoadSweepStudy) -> Iterator[None]:
    """The shipped mock server on the study's host and port while its trials run, if the study asks."""
    mock = study.spec.mock_server
    if mock is None:
        yield
        return
    parts = urlsplit(study.load.url)
    config = MockLLMConfig(ttft_ms=float(mock.ttft_ms), itl_ms=float(mock.itl_ms), capacity=mock.capacity,
                           error_rate=float(mock.error_rate), batch_cost=float(mock.batch_cost), model=study.load.model)
    with mock_llm_process(config, host=parts.hostname or "127.0.0.1", port=parts.port or 80):
        yield


def run_sweep_trials(
    study: LoadSweepStudy,
    keys: list[tuple[str, int]],
    *,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """One row per (sweep point, trial): every metric statistic, or the trial's error; with the
    study's cooldown between trials. One trial at a time, on a worker thread, so that Ctrl-C lets
    the running trial finish (``parallel.run_all``); ``on_row`` gets each row as it finishes."""
    known = {key for key, _ in keys if study.is_point(key)}
    removed = sorted({key for key, _ in keys if key not in known})
    if removed and log:
        # Dynamic partitions outlive the study file's lists; a point removed from it is skipped,
        # not run, and does not stop the points that are still there.
        log(f"skipping sweep points no longer in {study.path.name}: {removed}")
    run_order = ordered(study, [(key, trial) for key, trial in keys if key in known])
    fingerprint = study.fingerprint()
    overloaded: dict[str, str] = {}  # point -> why a trial of it showed it overloaded, in this run

    def one(index_key: tuple[int, tuple[str, int]]) -> dict:
        i, (key, trial) = index_key
        point = study.point(key)
        spec = study.load_spec(point, trial)
        row = {"sweep_point": key, "trial": int(trial), "parameters": json.dumps(point.params, sort_keys=True),
               "trial_seed": spec.seed, "endpoint": study.load.url, "fingerprint": fingerprint}
        below = next((k for k in overloaded if study.above(study.point(k), point)), None)
        if below is not None:  # a lower load was overloaded: this one would only queue and time out
            return {**row, "status": "failed", "error": f"{NOT_RUN}{below} was overloaded ({overloaded[below]})",
                    "started_at": time.time(), "wall_seconds": 0.0, "generator_cpu_seconds": 0.0, "overloaded": ""}
        started, started_at = time.perf_counter(), time.time()
        result = run_load_trial(spec)
        wall = time.perf_counter() - started
        # a failed trial too (every request may have failed), but not the generator's own crash
        why = "" if result.error.startswith(GENERATOR_FAILED) else study.overloaded(point, result.metrics)
        if why and study.spec.capacity is None:
            overloaded.setdefault(key, why)
        if i < len(run_order) - 1 and study.spec.cooldown_seconds:
            # After this trial, inside its job: Ctrl-C during a cooldown starts no new trial.
            time.sleep(float(study.spec.cooldown_seconds))
        return {**row, "status": result.status, "error": result.error, "started_at": started_at, "wall_seconds": wall,
                "generator_cpu_seconds": float(result.cpu_seconds), "overloaded": why, **result.metrics}

    def finished(row: dict) -> None:
        if log:
            throughput = row.get("request_throughput_avg", float("nan"))
            log(f"{row['sweep_point']} trial {row['trial']}: {row['status']}, {throughput:.2f} requests/s"
                + (f" ({row['error'][:200]})" if row["error"] else ""))
        if on_row:
            on_row(row)

    with study_server(study):
        rows = run_all(list(enumerate(run_order)), one, workers=1, on_result=finished, progress=progress)
    frame = pd.DataFrame(rows, columns=list(TRIAL_COLUMNS)) if not rows else pd.DataFrame(rows)
    for name in (*metric_names(study.load.streaming), *study.slo_columns):
        if name not in frame.columns:
            frame[name] = float("nan")
    return frame
