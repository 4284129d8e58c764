"""Measures an acceptance suite's trials: per (benchmark, repeat), both sides on the repeat's seed,
in alternating order (A B, B A, ...); one row per side. No Dagster.

Measurements run one at a time, never concurrently: two measurements at once would each time the
other's load. A side that fails (cannot be imported, raises, exits non-zero, does not return a
metric the suite needs) is a failed row with its error; the other side and the rest of the suite
still run.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark_assets.kinds.acceptance.spec import (
    MEASURED,
    PEAK_MEMORY,
    QUANTILES,
    ROUNDS,
    SUMMARY,
    TRIAL_COLUMNS,
    WALL_TIME,
    AcceptanceStudy,
    CallSide,
)
from benchmark_assets.provenance import git_commit
from benchmark_assets.targets.calls import Measurement, load_callable, measure_call
from benchmark_assets.targets.command import run_command_trial


def _measure_command(study: AcceptanceStudy, side, seed: int, *, number: int, warmup: int,
                     memory: bool) -> Measurement:
    """A command side: ``warmup`` unmeasured runs, ``number`` timed runs (wall time of the whole
    process, start-up included), one more run sampling its process tree's memory if asked."""
    spec = study.command(side)
    for _ in range(warmup):
        trial = run_command_trial(spec, seed=seed, params={})
        if trial.status != "ok":
            return Measurement(error=f"warm-up run failed: {trial.error}")
    seconds, trial = [], None
    for _ in range(number):
        trial = run_command_trial(spec, seed=seed, params={})
        if trial.status != "ok":
            return Measurement(error=trial.error)
        seconds.append(trial.duration_seconds)
    peak = math.nan
    if memory:
        traced = run_command_trial(spec, seed=seed, params={}, memory=True)
        if traced.status != "ok":
            return Measurement(error=f"memory run failed: {traced.error}")
        if traced.peak_rss_bytes is None:
            return Measurement(error=f"the command ended after {traced.duration_seconds * 1000:.0f} ms, before its "
                               "memory could be sampled (every 10 ms); measure the peak memory of a longer run, or "
                               "of a callable (traced exactly)")
        peak = float(traced.peak_rss_bytes)
    return Measurement(tuple(seconds), peak, dict(trial.scalars))


class _Sides:
    """Each callable side imported once per batch; an import that fails is every trial's error."""

    def __init__(self):
        self._loaded: dict[str, Callable | str] = {}

    def function(self, call: str) -> Callable | str:
        if call not in self._loaded:
            try:
                self._loaded[call] = load_callable(call)
            except ValueError as error:
                self._loaded[call] = str(error)
        return self._loaded[call]


def measure_side(study: AcceptanceStudy, benchmark: str, side: str, repeat: int, sides: _Sides) -> dict:
    """One side of one repeat of a benchmark, as a trial row."""
    bench = study.spec.benchmarks[benchmark]
    spec = getattr(bench, side)
    seed = study.seed(repeat)
    memory = study.measures_memory(benchmark)
    if isinstance(spec, CallSide):
        function = sides.function(spec.call)
        measurement = (Measurement(error=function) if isinstance(function, str) else
                       measure_call(function, seed, number=bench.number, warmup=bench.warmup, memory=memory))
    else:
        measurement = _measure_command(study, spec, seed, number=bench.number, warmup=bench.warmup, memory=memory)
    error = measurement.error
    metrics = dict(measurement.metrics)
    if not error:
        clashes = sorted(set(metrics) & set(TRIAL_COLUMNS))
        missing = [m for m in bench.metrics if m not in metrics]
        if clashes:
            error = (f"the {side} side returned metrics named {clashes}, which are this table's own columns; "
                     "return them under other names")
        elif missing:
            error = (f"the {side} side returned no metric {missing[0]!r} (it returned: "
                     f"{', '.join(sorted(metrics)) or 'nothing'}); return it, or remove it from "
                     f"benchmarks.{benchmark}.metrics and the criteria that use it")
    if error:
        metrics = {}
    times = np.asarray(measurement.seconds, dtype=float)
    ok = not error and times.size > 0
    row = {
        "benchmark": benchmark, "repeat": int(repeat), "side": side, "round": 0, "form": MEASURED,
        "position": study.order(repeat).index(side), "calls": int(bench.number),
        "trial_seed": seed, "status": "failed" if error else "ok", "error": error,
        "fingerprint": study.side_fingerprint(benchmark, side),
        WALL_TIME: float(times.mean()) if ok else math.nan,
        **{name: float(np.percentile(times, q)) if ok else math.nan for name, q in QUANTILES.items()},
        PEAK_MEMORY: float(measurement.peak_memory) if not error else math.nan,
        "summary_sd": math.nan, "summary_rounds": -1,
        **{name: value for name, value in metrics.items() if name in bench.metrics},
    }
    return row


def ingested_rows(study: AcceptanceStudy, benchmark: str, repeat: int) -> list[dict]:
    """A pytest-benchmark side's rows for one repeat partition: run ``repeat`` of each side (the
    file of that run, where the side has that many): its rounds, or, for a file with summary
    figures only, one row of them. A run is one replicate: its rounds stay together."""
    rows = []
    for side in study.order(0):
        runs = study.ingested[(benchmark, side)]
        if int(repeat) >= len(runs):
            continue
        _path, result = runs[int(repeat)]
        common = {"benchmark": benchmark, "repeat": int(repeat), "side": side, "position": -1, "calls": 1,
                  "status": "ok", "error": "", "fingerprint": study.side_fingerprint(benchmark, side),
                  "git_commit": result.commit, PEAK_MEMORY: math.nan,
                  **dict.fromkeys(QUANTILES, math.nan)}
        if result.has_rounds:
            rows += [{**common, "round": i, "form": ROUNDS, "trial_seed": i, WALL_TIME: value,
                      "summary_sd": math.nan, "summary_rounds": -1} for i, value in enumerate(result.rounds)]
        else:
            rows.append({**common, "round": 0, "form": SUMMARY, "trial_seed": 0, WALL_TIME: result.mean,
                         "summary_sd": result.stddev, "summary_rounds": result.n_rounds})
    return rows


def run_acceptance_trials(
    study: AcceptanceStudy,
    keys: list[tuple[str, int]],
    *,
    progress: Callable[[int, int], None] | None = None,
    on_pair: Callable[[list[dict]], None] | None = None,
) -> pd.DataFrame:
    """Rows of the (benchmark, repeat) keys, two per key, measured benchmark by benchmark and
    repeat by repeat (pytest-benchmark sides: their rounds or figures); ``on_pair`` gets each key's
    rows as soon as both sides are measured."""
    order = {name: i for i, name in enumerate(study.benchmarks)}
    keys = sorted({(b, int(r)) for b, r in keys}, key=lambda k: (order.get(k[0], len(order)), k[1]))
    commit = git_commit(Path.cwd())
    sides = _Sides()
    rows: list[dict] = []
    for done, (benchmark, repeat) in enumerate(keys):
        if study.is_ingested(benchmark):
            pair = ingested_rows(study, benchmark, repeat)
        elif repeat >= study.repeats_of(benchmark):
            pair = []  # a partition beyond this benchmark's repeats (another one has more runs)
        else:
            pair = [measure_side(study, benchmark, side, repeat, sides) for side in study.order(repeat)]
            for row in pair:
                row["git_commit"] = commit
        rows.extend(pair)
        if on_pair is not None and pair:
            on_pair(pair)
        if progress is not None:
            progress(done + 1, len(keys))
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(TRIAL_COLUMNS))
    return frame.reindex(columns=[*TRIAL_COLUMNS, *[c for c in frame.columns if c not in TRIAL_COLUMNS]])
