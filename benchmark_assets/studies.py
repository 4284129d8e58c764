"""Study files: YAML -> the validated study of its kind, with one clear line for every mistake."""
from __future__ import annotations

from pathlib import Path

from benchmark_assets.kinds import KindError, get_kind, kind_names
from benchmark_assets.study_file import StudyError, read_study_file, resolve_study_path, studies_dir, validate_model


def load_study(name_or_path: str | Path, directory: Path | None = None):
    """Load and validate a study by name (``memory_ratchet``) or path; raise ``StudyError``.

    Returns the study object of the file's kind (``RatchetStudy``, ``ComparisonStudy``, ...)."""
    path = resolve_study_path(name_or_path, directory)
    text, raw = read_study_file(path)
    try:
        kind = get_kind(raw["kind"]) if isinstance(raw.get("kind"), str) else None
    except KindError as error:
        raise StudyError(path, "kind", str(error), "fix or reinstall the package that provides this kind") from None
    if kind is None:
        raise StudyError(path, "kind", f"unknown study kind {raw.get('kind')!r}", f"use kind: {' or '.join(kind_names())}")
    spec = validate_model(kind.spec_model, path, raw)
    return kind.load(path, text, spec, path.stem)


def discover_studies(directory: Path | None = None) -> list:
    directory = directory or studies_dir()
    return [load_study(path) for path in sorted(directory.glob("*.yaml"))]


__all__ = ["StudyError", "discover_studies", "load_study", "resolve_study_path", "studies_dir"]
