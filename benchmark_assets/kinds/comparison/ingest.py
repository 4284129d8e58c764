"""A comparison study's trials from CSV files of training curves (``targets.curves_csv``) put in its
inbox: ``<inbox>/<study>/control/*.csv`` and ``.../candidate/*.csv`` (or an ``arm`` column).
Each file (or each seed of it) is one trial of that arm. Its seed comes from a ``seed`` column or
the last number in the file's name (``seed_3.csv``), and its replicate key is ``INBOX_BASE + seed``,
so a control and a candidate file of one seed make a pair, apart from the seeds measured here. No
Dagster."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pandas as pd

from benchmark_assets.kinds.base import INBOX_BASE, IngestError
from benchmark_assets.kinds.comparison.spec import ARMS, ComparisonStudy
from benchmark_assets.targets.curves_csv import CurveFileError, read_curves

PATTERNS = ("*.csv",)
COMMAND_PREFIX = '["inbox"'  # an ingested trial's command: ["inbox", "<its file in the inbox>"]
HELP = "CSV files of training curves, in control/ or candidate/"


def _seed_from_name(relative: PurePosixPath) -> int | None:
    """``seed_3``, ``seed-3`` or ``seed3`` in the name, else its only number (``run8.csv``); None
    when the name holds several numbers and no ``seed`` (``run_2024_05_01.csv``): a guess could pair
    the wrong trials."""
    named = re.findall(r"seed[_-]?(\d+)", relative.stem, flags=re.IGNORECASE)
    if named:
        return int(named[-1])
    numbers = re.findall(r"\d+", relative.stem)
    return int(numbers[0]) if len(numbers) == 1 else None


def ingest_curves(study: ComparisonStudy, path: Path, relative: PurePosixPath,
                  new_replicate: Callable[[], int]) -> pd.DataFrame:
    """The trial rows of one curves CSV; IngestError with what to fix."""
    folder = relative.parts[0] if len(relative.parts) > 1 else None
    try:
        trials = read_curves(path, single_metric=study.spec.metric)
    except CurveFileError as error:
        raise IngestError(str(error)) from None
    rows = []
    for trial in trials:
        arm = (trial.arm or folder or "").strip().lower()
        if arm not in ARMS:
            raise IngestError(f"say which arm it is: put it in control/ or candidate/ of the study's inbox (or give an "
                              f"arm column){f', not in {folder}/' if folder else ''}")
        seed = trial.seed if trial.seed is not None else (_seed_from_name(relative) if len(trials) == 1 else None)
        if seed is None or seed < 0:
            raise IngestError("say which seed it ran: a seed column, or seed_<n> in the file's name (seed_3.csv)")
        if study.spec.metric not in trial.curves:
            raise IngestError(f"it has curves {', '.join(sorted(trial.curves))} but not {study.spec.metric!r}, the "
                              f"study's metric; export that curve (a column named {study.spec.metric})")
        if study.spec.summary is None:
            raise IngestError(f"the study decides on the scalar {study.spec.metric!r}, and a CSV holds curves; give "
                              "the study a summary (summary: {type: auc}) to decide on the curve")
        curves = {name: {"steps": steps.tolist(), "values": values.tolist()}
                  for name, (steps, values) in trial.curves.items()}
        rows.append({
            "arm": arm, "seed": INBOX_BASE + int(seed), "trial_seed": int(seed), "status": "ok", "error": "",
            "exit_code": 0, "stderr_tail": "", "duration_seconds": float(trial.duration_seconds),
            "command": json.dumps(["inbox", relative.as_posix()]), "git_commit": trial.commit or "unknown",
            "fingerprint": study.inbox_fingerprint(arm), "curves_json": json.dumps(curves, separators=(",", ":")),
        })
    return pd.DataFrame(rows)
