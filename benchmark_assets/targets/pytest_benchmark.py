"""Results of pytest-benchmark (``pytest --benchmark-json=FILE``, or the files ``--benchmark-autosave``
keeps one per run under ``.benchmarks/<machine>/NNNN_<commit>...json``), read as a side of an
acceptance suite. No Dagster.

Per-round times are in a file written with ``--benchmark-save-data`` (``stats.data``: one time per
round, each the mean over that round's iterations). Without them only summary figures exist
(mean, standard deviation, rounds) and a suite can judge only from those; it says so.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

LATEST, PREVIOUS = "latest", "previous"


class BenchmarkFileError(ValueError):
    """A file or folder that cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Result:
    """One benchmark of one file."""

    name: str
    rounds: tuple[float, ...]  # per-round seconds; empty when the file has summary figures only
    mean: float
    stddev: float
    n_rounds: int
    commit: str
    extra_info: dict

    @property
    def has_rounds(self) -> bool:
        return len(self.rounds) >= 2


GLOB = set("*?[")


def resolve_runs(path: Path, commit: str | None) -> tuple[Path, ...]:
    """The runs a side names, one file each: ``path`` itself; the files a glob pattern in its name
    matches (``runs/base_*.json``); or, in a folder of autosaved files, every file of ``commit`` (a
    prefix of the commit id in the file's name or its commit_info: each autosaved run of that
    commit is one run), or the newest or second newest file for ``latest`` or ``previous``.

    ``--benchmark-autosave`` writes into a machine-named subfolder (``.benchmarks/Linux-CPython-3.11-
    64bit/``); a folder holding one such subfolder is read as that subfolder."""
    if GLOB & set(path.name):
        if commit is not None:
            raise BenchmarkFileError(f"{path.name} is a pattern of files, so 'commit: {commit}' picks nothing; "
                                     "drop commit, or name the folder of autosaved files")
        files = tuple(sorted(f for f in path.parent.glob(path.name) if f.is_file()))
        if not files:
            raise BenchmarkFileError(f"no file matches {path}; give a pattern that matches the runs' JSON files")
        return files
    if path.is_file():
        if commit is not None:
            raise BenchmarkFileError(f"{path} is a file, so 'commit: {commit}' picks nothing; drop commit, or name "
                                     "the folder of autosaved files")
        return (path,)
    if not path.is_dir():
        raise BenchmarkFileError(f"{path} does not exist; give a pytest-benchmark JSON file or a folder of them")
    folder = _autosave_folder(path)
    files = sorted(folder.glob("*.json"))
    if commit is None:
        raise BenchmarkFileError(f"{folder} is a folder of {len(files)} files; say which with commit: <id prefix> "
                                 "(every file of that commit is one run), latest or previous")
    if commit in (LATEST, PREVIOUS):
        wanted = 1 if commit == LATEST else 2
        if len(files) < wanted:
            raise BenchmarkFileError(f"folder {folder} holds 1 file, so there is no previous one; run the benchmarks "
                                     "on another commit first")
        return (files[-wanted],)
    # autosave names files NNNN_<commit id>[_<date>...].json: the part after the number, or the
    # id in commit_info, must start with the prefix (a bare substring would let "01" match 0001_).
    found = tuple(f for f in files if f.name.partition("_")[2].startswith(commit) or _commit_of(f).startswith(commit))
    if not found:
        raise BenchmarkFileError(f"no file in {folder} is of commit {commit!r} (files: "
                                 f"{', '.join(f.name for f in files[-5:])}); give a commit id prefix that one holds")
    # A run with uncommitted changes carries its base commit's id, but not its code: after
    # "benchmark at X, edit, benchmark again" it is not a run of X.
    clean = tuple(f for f in found if not _dirty(f))
    if not clean:
        raise BenchmarkFileError(f"every file of commit {commit!r} in {folder} was run with uncommitted changes "
                                 f"({', '.join(f.name for f in found[-3:])}), so none is a run of that commit; commit "
                                 "and run again, or name those files with a pattern")
    return clean


def _dirty(path: Path) -> bool:
    """Whether an autosaved run had uncommitted changes (its name or its commit_info says so)."""
    # pytest-benchmark spells it 'uncommited-changes'
    return "uncommit" in path.name or bool(_commit_info(path).get("dirty"))


def _autosave_folder(path: Path) -> Path:
    """The folder whose JSON files are the runs: ``path``, or its one machine-named subfolder."""
    if any(path.glob("*.json")):
        return path
    machines = sorted(d for d in path.iterdir() if d.is_dir() and any(d.glob("*.json")))
    if len(machines) == 1:
        return machines[0]
    if machines:
        raise BenchmarkFileError(f"folder {path} holds autosaved runs of {len(machines)} machines "
                                 f"({', '.join(d.name for d in machines)}); name one, e.g. "
                                 f"pytest_benchmark: {path / machines[0].name}")
    raise BenchmarkFileError(f"folder {path} holds no .json files, nor a machine folder of them; run pytest with "
                             "--benchmark-autosave (or --benchmark-json) first")


def _commit_of(path: Path) -> str:
    return str(_commit_info(path).get("id") or "")


def _commit_info(path: Path) -> dict:
    """A file's commit_info ({} where it cannot be read: the file's own check says why later)."""
    try:
        info = json.loads(path.read_text()).get("commit_info")
    except (OSError, ValueError, AttributeError):
        return {}
    return info if isinstance(info, dict) else {}


def read(path: Path) -> dict[str, Result]:
    """Every benchmark of a pytest-benchmark JSON file by name (and by full name); raises
    BenchmarkFileError with what is wrong for a file that is not one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BenchmarkFileError(f"cannot read {path}: {error.strerror or error}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise BenchmarkFileError(f"{path} is not JSON ({error}); give the file pytest --benchmark-json "
                                 "wrote") from None
    if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
        raise BenchmarkFileError(f"{path} is JSON but not a pytest-benchmark file (no 'benchmarks' list); give the "
                                 "file pytest --benchmark-json wrote")
    commit = str((document.get("commit_info") or {}).get("id") or "unknown")
    out: dict[str, Result] = {}
    for i, entry in enumerate(document["benchmarks"]):
        try:
            figures = entry["stats"]
            rounds = tuple(float(v) for v in figures.get("data") or ())
            result = Result(name=str(entry["name"]), rounds=rounds, mean=float(figures["mean"]),
                            stddev=float(figures["stddev"]), n_rounds=int(figures["rounds"]), commit=commit,
                            extra_info=dict(entry.get("extra_info") or {}))
        except (KeyError, TypeError, ValueError) as error:
            raise BenchmarkFileError(f"{path}: benchmark #{i} lacks its stats ({type(error).__name__}: {error}); "
                                     "give an unedited pytest-benchmark file") from None
        if not all(math.isfinite(v) and v >= 0 for v in (result.mean, result.stddev, *result.rounds)):
            raise BenchmarkFileError(f"{path}: benchmark {result.name!r} has a negative or non-finite time")
        out[result.name] = result
        out.setdefault(str(entry.get("fullname") or result.name), result)
    return out


def find_runs(paths: tuple[Path, ...], name: str) -> tuple[tuple[Path, Result], ...]:
    """Benchmark ``name`` of each run. Of several files, those that lack it are left out (a run of
    other benchmarks on the same commit: ``pytest -k other``); BenchmarkFileError if none has it,
    or if a file is not a pytest-benchmark file at all."""
    if len(paths) == 1:
        return ((paths[0], find(paths[0], name)),)
    found = tuple((path, results[name]) for path in paths if name in (results := read(path)))
    if not found:
        raise BenchmarkFileError(f"none of the {len(paths)} files ({', '.join(p.name for p in paths[:3])}"
                                 f"{', ...' if len(paths) > 3 else ''}) has benchmark {name!r}; name the benchmark "
                                 "as pytest does (name:)")
    return found


def find(path: Path, name: str) -> Result:
    """Benchmark ``name`` of the file; BenchmarkFileError naming the benchmarks it has if absent."""
    results = read(path)
    if name not in results:
        names = sorted({r.name for r in results.values()})
        raise BenchmarkFileError(f"{path} has no benchmark {name!r} (it has: {', '.join(names[:10]) or 'none'}"
                                 f"{', ...' if len(names) > 10 else ''}); name one of those")
    return results[name]


def digest(path: Path) -> str:
    """What a side's trials depend on: the file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
