"""`benchmark-assets new <kind> <name>`: the kind's template (``StudyKind.template``: commented,
valid, and it runs as written, in seconds to a minute) written as ``studies/<name>.yaml`` for a
person to edit into their own. No Dagster."""
from __future__ import annotations

from pathlib import Path

from benchmark_assets.study_file import StudyError, check_name

WHERE = "benchmark-assets new"


def study_text(kind: str, name: str, target: str | None = None) -> str:
    """The new study's YAML; StudyError for an unknown kind, or a template the kind refuses."""
    from benchmark_assets.kinds import get_kind, kind_names
    from benchmark_assets.kinds.base import TemplateRefused

    found = get_kind(kind)
    if found is None:
        raise StudyError(WHERE, "kind", f"no kind {kind!r}", f"choose one of {kind_names()}")
    try:
        return found.template(name, target)
    except TemplateRefused as refused:
        raise StudyError(WHERE, refused.argument, refused.problem, refused.fix) from None


def write_new_study(kind: str, name: str, folder: Path, target: str | None = None) -> Path:
    """Write ``folder/<name>.yaml`` (refusing to overwrite one) and return its path."""
    check_name(WHERE, "name", name, "study")
    path = folder / f"{name}.yaml"
    if path.exists():
        raise StudyError(path, "name", "a study of this name exists", "choose another name, or delete the file first")
    text = study_text(kind, name, target)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
