"""What every study file has, whatever its kind: the one-line StudyError, strict pydantic models,
the translation of validation errors into that line, and where study files are found."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, ValidationError

Number = StrictInt | StrictFloat


class StudyError(ValueError):
    """A study that cannot be used; ``str()`` is one line naming the file, the field and the fix."""

    def __init__(self, path: str | Path, field_path: str, problem: str, fix: str):
        self.path, self.field_path, self.problem, self.fix = str(path), field_path, problem, fix
        super().__init__(f"{path}: {field_path}: {problem}. Fix: {fix}")


class Strict(BaseModel):
    """Unknown fields are errors (a typo must not be silently ignored); loaded specs never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleSpec(Strict):
    cron: str = "0 3 * * *"
    enabled: bool = False


_FIXES = {
    "missing": "add this field",
    "extra_forbidden": "remove it or correct its spelling",
    "literal_error": "use one of the allowed values",
    "int_type": "write a whole number without quotes",
    "float_type": "write a plain number without quotes, e.g. 0.5",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than": "use a smaller value",
    "less_than_equal": "use a smaller value",
    "too_short": "give at least one entry",
    "string_type": "write text",
    "dict_type": "write a mapping of name: {...}",
    "list_type": "write a list like [0.1, 0.3]",
    "tuple_type": "write a [low, high] pair",
    "value_error": "see the problem stated",
}


_UNION_KINDS = {"bool": "true/false", "int": "a whole number", "float": "a number", "str": "text",
                "list[int]": "a list of whole numbers", "SeedRangeSpec": "{count: N, base_seed: N}"}


def _is_union_tag(part) -> bool:
    """Pydantic names the member of a union it tried (``int``, ``list[int]``, ``SeedRangeSpec``,
    ``function-after[...]``) inside an error's location; those are not fields."""
    text = str(part)
    return (text in _UNION_KINDS or text in {"constrained-int", "constrained-float"} or "[" in text
            or text.startswith("function-") or (text[:1].isupper() and text.isidentifier()))


def _field_path(loc) -> str:
    parts = []
    for part in loc:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
        elif not _is_union_tag(part):
            parts.append(str(part))
    return ".".join(parts) or "(top level)"


def _error_from_validation(path: Path, error: ValidationError) -> StudyError:
    errors = error.errors()
    where = _field_path(errors[0]["loc"])
    alternatives = [e for e in errors if _field_path(e["loc"]) == where or _field_path(e["loc"]).startswith(where + ".")]
    # A union reports one error per member. A value error from the member that fits the input
    # (a negative base_seed inside {count, base_seed}) says more than "not a list"; when every
    # member rejects the input's type, name the kinds that would be accepted.
    specific = [e for e in alternatives if not e["type"].endswith("_type")]
    first = specific[0] if specific else errors[0]
    message = first["msg"].removeprefix("Value error, ")
    fix = _FIXES.get(first["type"], "correct the value")
    kinds = [_UNION_KINDS[str(p)] for e in alternatives for p in e["loc"] if str(p) in _UNION_KINDS]
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif not specific and len(set(kinds)) > 1 and not set(kinds) <= {"a whole number", "a number"}:
        message = f"expected {' or '.join(dict.fromkeys(kinds))}, got {first.get('input')!r}"
        fix = "write one value of those kinds"
    elif first["type"] in {"int_type", "float_type"}:
        message = f"expected a number, got {first.get('input')!r}"
        fix = _FIXES["float_type"]
    if first["type"] == "value_error":
        message, _, given_fix = message.partition("; ")
        fix = given_fix or fix
    return StudyError(path, _field_path(first["loc"]), message, fix)


def studies_dir() -> Path:
    """Where shipped and user studies live: $BENCHMARK_ASSETS_STUDIES or ./studies."""
    return Path(os.environ.get("BENCHMARK_ASSETS_STUDIES", "studies")).resolve()


def resolve_study_path(name_or_path: str | Path, directory: Path | None = None) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} and candidate.exists():
        return candidate.resolve()
    directory = directory or studies_dir()
    for suffix in (".yaml", ".yml"):
        path = directory / f"{name_or_path}{suffix}"
        if path.exists():
            return path.resolve()
    known = ", ".join(p.stem for p in sorted(directory.glob("*.y*ml"))) or "none"
    raise StudyError(
        name_or_path, "study", f"no such study file (looked in {directory})",
        f"pass a path to a .yaml file or one of: {known}",
    )


@dataclass(frozen=True, eq=False)
class StudyFile:
    """What every kind of loaded study has from its file: ``name`` (the file's stem: asset group
    and key prefix), ``path``, ``text``, its ``kind`` and the hash that names it in the ledger.
    A kind's study subclasses it (a frozen dataclass) and adds its validated ``spec``."""

    name: str
    path: Path
    text: str
    kind: ClassVar[str]

    @property
    def spec_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def fingerprint(payload) -> str:
    """A short stable hash of a JSON-able payload: what a set of trials or an analysis depends on."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def validate_model(model: type[BaseModel], path: Path, raw: dict):
    """``model.model_validate(raw)``, with the first problem as a one-line StudyError."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise _error_from_validation(path, error) from None


def read_study_file(path: Path) -> tuple[str, dict]:
    """The file's text and its YAML mapping; bad YAML or a non-mapping is one StudyError line."""
    text = path.read_text()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise StudyError(path, where, f"not valid YAML ({getattr(error, 'problem', error)})",
                         "fix the indentation or quoting there") from error
    if not isinstance(raw, dict):
        raise StudyError(path, "(top level)", "a study must be a mapping of fields", "start with 'kind: ratchet'")
    name = path.stem
    if not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise StudyError(path, "file name", f"study name {name!r} is not a valid asset key prefix",
                         "rename the file with letters, digits and underscores, starting with a letter")
    return text, raw
