"""Where a study's files go and how they are written: safe names, the artifacts folder, exports, figures."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def safe_label(text: str) -> str:
    """A file-name-safe label: letters, digits, dot, dash, underscore; never a path."""
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "unnamed"
    return label[:120]


def artifacts_dir(study_name: str) -> Path:
    """$BENCHMARK_ASSETS_ARTIFACTS/<study>, by default $DAGSTER_HOME/artifacts/<study>."""
    root = Path(os.environ.get("BENCHMARK_ASSETS_ARTIFACTS") or Path(os.environ.get("DAGSTER_HOME", ".dagster_home")) / "artifacts")
    folder = (root / safe_label(study_name)).resolve()
    if root.resolve() not in folder.parents:
        raise ValueError(f"artifact folder {folder} escapes {root}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_files(folder: Path, files: dict[str, object]) -> dict[str, Path]:
    """Write each named file in ``folder``: text as is, a DataFrame as CSV (``.csv``) or JSON
    records (``.json``), anything else as JSON. Returns {``report_md``-style name: path}."""
    paths = {}
    for name, content in files.items():
        path = folder / safe_label(name)
        if isinstance(content, str):
            path.write_text(content)
        elif isinstance(content, pd.DataFrame):
            if path.suffix == ".csv":
                content.to_csv(path, index=False)
            else:
                path.write_text(content.to_json(orient="records", indent=2))
        else:
            path.write_text(json.dumps(content, indent=2, default=str))
        paths[path.name.replace(".", "_")] = path
    return paths


def figure(width: float, height: float, columns: int = 1):
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.subplots(1, columns)
