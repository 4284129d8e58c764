"""An acceptance suite's trials from pytest-benchmark runs put in its inbox:
``<inbox>/<study>/baseline/*.json`` and ``.../optimised/*.json`` (``pytest --benchmark-json``, or
the files ``--benchmark-autosave`` keeps). Each file is one more run of that side for the suite's
benchmarks whose sides are pytest-benchmark files: one more replicate, its rounds' mean (or,
without ``--benchmark-save-data``, its summary mean). A copy of a run the study names is refused:
it would count twice. Benchmarks measured here (call or
command sides) are paired repeat by repeat and take no rows from files. No Dagster."""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pandas as pd

from benchmark_assets.kinds.acceptance.spec import (
    PEAK_MEMORY,
    QUANTILES,
    ROUNDS,
    SIDES,
    SUMMARY,
    WALL_TIME,
    AcceptanceStudy,
)
from benchmark_assets.kinds.base import IngestError
from benchmark_assets.targets.pytest_benchmark import BenchmarkFileError, digest, read

PATTERNS = ("*.json",)
HELP = "pytest-benchmark JSON files, in baseline/ or optimised/"


def ingest_benchmark_file(study: AcceptanceStudy, path: Path, relative: PurePosixPath,
                          new_replicate: Callable[[], int]) -> pd.DataFrame:
    """The rows one pytest-benchmark file adds to its side; IngestError with what to fix."""
    side = relative.parts[0] if len(relative.parts) > 1 else None
    if side not in SIDES:
        raise IngestError(f"say which side it is: put it in baseline/ or optimised/ of the study's inbox"
                          f"{f', not in {side}/' if side else ''}")
    try:
        results = read(path)
    except BenchmarkFileError as error:
        raise IngestError(str(error).replace(str(path), path.name)) from None
    from_files = [b for b in study.benchmarks if study.is_ingested(b)]
    if not from_files:
        raise IngestError(f"{study.name} measures every benchmark itself (call or command sides), and files add "
                          "only to benchmarks whose sides are pytest_benchmark files; give those sides as "
                          "pytest_benchmark, or remove the file")
    matched = {}
    for benchmark in from_files:
        spec = getattr(study.spec.benchmarks[benchmark], side)
        name = getattr(spec, "name", None) or benchmark
        if name in results:
            matched[benchmark] = results[name]
    named = {digest(run): (benchmark, run) for benchmark in matched for run, _ in study.ingested[(benchmark, side)]}
    copy_of = named.get(digest(path))
    if copy_of:  # the same run twice would count as two independent ones
        benchmark, run = copy_of
        raise IngestError(f"it is the same file as {run.name}, a run of the {side} side the study names for "
                          f"{benchmark}, and would count twice; put only other runs in the inbox")
    if not matched:
        names = sorted({r.name for r in results.values()})
        raise IngestError(f"it has none of the suite's benchmarks {from_files} (it has: {', '.join(names[:8])}); "
                          "give the file of a run of those benchmarks")
    repeat = int(new_replicate())
    rows = []
    for benchmark, result in matched.items():
        common = {"benchmark": benchmark, "repeat": repeat, "side": side, "position": -1, "calls": 1, "status": "ok",
                  "error": "", "fingerprint": study.inbox_fingerprint(benchmark, side),
                  "git_commit": result.commit, PEAK_MEMORY: math.nan, **dict.fromkeys(QUANTILES, math.nan)}
        if result.has_rounds:
            rows += [{**common, "round": i, "form": ROUNDS, "trial_seed": i, WALL_TIME: value,
                      "summary_sd": math.nan, "summary_rounds": -1} for i, value in enumerate(result.rounds)]
        else:
            rows.append({**common, "round": 0, "form": SUMMARY, "trial_seed": 0, WALL_TIME: result.mean,
                         "summary_sd": result.stddev, "summary_rounds": result.n_rounds})
    return pd.DataFrame(rows)
