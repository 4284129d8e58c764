"""Where a study's files go and how they are written: safe names, the artifacts folder, exports, figures.

Each run writes its files in a folder of its own, ``artifacts/<study>/<run id>/``, so a past
materialisation still links to the files it made; ``artifacts/<study>/latest`` points at the
newest run's folder.
"""
from __future__ import annotations

import base64
import io
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


def artifacts_root() -> Path:
    """$BENCHMARK_ASSETS_ARTIFACTS, by default $DAGSTER_HOME/artifacts."""
    return Path(os.environ.get("BENCHMARK_ASSETS_ARTIFACTS") or Path(os.environ.get("DAGSTER_HOME", ".dagster_home")) / "artifacts")


ARTIFACTS_URL_ENV = "BENCHMARK_ASSETS_ARTIFACTS_URL"


def artifact_url(path: Path | str) -> str | None:
    """Where a browser opens an artifact: $BENCHMARK_ASSETS_ARTIFACTS_URL (the artifacts server
    `benchmark-assets ui` starts beside the UI, or a team's own) joined with the file's place in
    the artifacts folder; None when no server is configured or the file lies elsewhere."""
    base = os.environ.get(ARTIFACTS_URL_ENV, "").strip().rstrip("/")
    if not base:
        return None
    root, target = artifacts_root().resolve(), Path(path).resolve()
    if target != root and root not in target.parents:
        return None
    from urllib.parse import quote

    return f"{base}/{quote(target.relative_to(root).as_posix())}"


def artifacts_dir(study_name: str) -> Path:
    """$BENCHMARK_ASSETS_ARTIFACTS/<study>, by default $DAGSTER_HOME/artifacts/<study>."""
    root = artifacts_root()
    folder = (root / safe_label(study_name)).resolve()
    if root.resolve() not in folder.parents:
        raise ValueError(f"artifact folder {folder} escapes {root}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


LATEST = "latest"


def run_dir(study_name: str, run_id: str) -> Path:
    """``artifacts/<study>/<run id>/`` (created). ``latest`` moves to it once a report is written
    there (``write_files``), so it never points at a run that failed before its report."""
    folder = artifacts_dir(study_name) / safe_label(run_id)
    folder.mkdir(exist_ok=True)
    return folder


def _publish(folder: Path) -> None:
    """Point ``artifacts/<study>/latest`` at a run's folder (atomically: a reader sees the old run's
    folder or the new one)."""
    root, link = folder.parent, folder.parent / LATEST
    if link.is_symlink() and os.readlink(link) == folder.name:
        return
    staged = root / f".{LATEST}.{os.getpid()}"
    staged.unlink(missing_ok=True)
    staged.symlink_to(folder.name, target_is_directory=True)  # relative: the tree can be moved
    os.replace(staged, link)


def latest_dir(study_name: str) -> Path:
    """The newest run's folder of a study (``artifacts/<study>/latest``); may not exist yet."""
    return artifacts_dir(study_name) / LATEST


def png_markdown(images: dict[str, Path], *, width: int = 560, colors: int = 96) -> str:
    """Markdown that shows each PNG inline (a data URI: the Dagster UI renders it, and each event
    keeps its own picture), scaled down to ``width`` pixels and to a palette of ``colors`` so a
    plot costs tens of kilobytes, under a heading with its label and a note of the full file;
    with an artifacts server, full size from it."""
    return in_a_dialog("\n".join(_inline(label, path, width, colors) for label, path in images.items()))


# Dagster's UI shows Markdown metadata shorter than this in place, in the asset page's narrow
# value column, which clips a full-size plot; longer, it opens in a wide dialog.
UI_DIALOG_CHARS = 1000


def in_a_dialog(text: str) -> str:
    """Plots given as links make short Markdown: a comment (not rendered) that makes it long
    enough for the UI to open it in its dialog, where a plot is shown whole."""
    if len(text) >= UI_DIALOG_CHARS:
        return text
    text, note = text.rstrip("\n"), "\n\n[//]: # (long enough for the UI's dialog, where a plot is not clipped"
    return text + note + " " * max(0, UI_DIALOG_CHARS - len(text) - len(note) - 1) + ")"


def _inline(label: str, path: Path, width: int, colors: int) -> str:
    """The plot at full size from the artifacts server when there is one (the event keeps a link,
    not the picture), else a small copy inline."""
    if url := artifact_url(path):
        return f"**{label}** ([open full size]({url}))\n\n![{label}]({url})\n"
    from PIL import Image

    with Image.open(path) as image:
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        small = image.convert("RGB").quantize(colors=colors)
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"**{label}** (full size: `{path}`)\n\n![{label}](data:image/png;base64,{data})\n"


EVENT_PLOT_BUDGET = 240_000  # characters of inline plots per event: the event log keeps every event


def budgeted_markdown(images: list[tuple[str, Path]], *, budget: int = EVENT_PLOT_BUDGET, width: int = 1000,
                      colors: int = 24) -> str:
    """The plots inline in the order given (most important first) while they fit in ``budget``
    characters, then the rest by file: each run's event carries a bounded picture of the decision,
    not megabytes, however many subjects the study has."""
    parts, left, skipped = [], budget, []
    for label, path in images:
        text = "" if skipped else _inline(label, path, width, colors)
        if text and len(text) <= left:
            parts.append(text)
            left -= len(text)
        else:  # the first that does not fit ends the inline ones: the order is the importance
            skipped.append((label, path))
    if skipped:
        parts.append(f"**{len(skipped)} more plots**, in the run's artifacts (not inlined, to keep the event log "
                     "small):\n\n" + "\n".join(f"- {label}: `{path}`" for label, path in skipped) + "\n")
    return in_a_dialog("\n".join(parts))


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
    if "report.md" in files and folder.name != LATEST and folder.resolve().parent.parent == artifacts_root().resolve():
        _publish(folder)  # a run's folder with its report: the newest run to look at
    return paths


def figure(width: float, height: float, columns: int = 1, rows: int = 1):
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.subplots(rows, columns)


def _ignore_interrupts() -> None:
    """In a drawing worker: Ctrl-C is the parent's to handle (it inherited Dagster's handler)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def in_parallel(function, jobs: list, *, min_jobs: int = 4) -> list:
    """``[function(job) for job in jobs]``, on one forked worker process per core when there are
    enough jobs to pay for the workers (drawing figures is CPU-bound Python: threads would not
    help). Falls back to one process where fork is not available."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = min(len(jobs), os.cpu_count() or 1)
    if workers < 2 or len(jobs) < min_jobs or "fork" not in multiprocessing.get_all_start_methods():
        return [function(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=_ignore_interrupts) as pool:
        return list(pool.map(function, jobs, chunksize=max(1, len(jobs) // (2 * workers))))
