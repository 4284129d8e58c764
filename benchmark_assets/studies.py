"""Study files: YAML -> the validated study of its kind, with one clear line for every mistake."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from benchmark_assets.extras import install_hint, missing_extra_message
from benchmark_assets.kinds import KindError, get_kind, kind_names
from benchmark_assets.study_file import StudyError, read_study_file, resolve_study_path, studies_dir, validate_model


class MissingExtraStudyError(StudyError):
    """A valid study that needs an optional install (a pip extra) that is not there."""

    needs_extra = True


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
    for extra, field in kind.extras(spec).items():
        if message := missing_extra_message(extra):
            raise MissingExtraStudyError(path, field, message, install_hint(extra))
    return kind.load(path, text, spec, path.stem)


@dataclass(frozen=True)
class Discovery:
    """The studies of a folder that load, and one error per file that does not."""

    studies: tuple = ()
    broken: tuple[StudyError, ...] = ()


def discover(directory: Path | None = None) -> Discovery:
    """Every study in the folder, each loaded on its own: a file that does not load (a mistake,
    a kind that does not import, a missing extra) is kept as its error, with its one line on the
    ``benchmark_assets`` logger, and the others load."""
    directory = directory or studies_dir()
    studies, broken = [], []
    for path in sorted(directory.glob("*.yaml")):
        try:
            studies.append(load_study(path))
        except StudyError as error:
            broken.append(error)
        except Exception as error:  # noqa: BLE001 - a kind's bug in one file must not hide the others
            broken.append(StudyError(path, "(whole file)", f"loading it failed: {type(error).__name__}: {error}",
                                     "fix the file, or report the error to the kind's authors"))
        else:
            continue
        logging.getLogger("benchmark_assets").warning("left out: %s", broken[-1])
    return Discovery(tuple(studies), tuple(broken))


def discover_studies(directory: Path | None = None) -> list:
    """Every study in the folder. One that needs a missing extra is left out, with its one line on
    the ``benchmark_assets`` logger; any other mistake in a file raises (the CLI's and tests' strict
    view; the UI's definitions use ``discover``, which leaves every broken file out)."""
    found = discover(directory)
    for error in found.broken:
        if not getattr(error, "needs_extra", False):
            raise error
    return list(found.studies)


__all__ = ["Discovery", "MissingExtraStudyError", "StudyError", "discover", "discover_studies", "load_study", "resolve_study_path", "studies_dir"]
