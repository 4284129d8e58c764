"""What every study file has, whatever its kind: the one-line StudyError, strict pydantic models,
the translation of validation errors into that line, and where study files are found."""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import yaml
from croniter import croniter
from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, ValidationError, field_validator

Number = StrictInt | StrictFloat


class StudyError(ValueError):
    """A study that cannot be used; ``str()`` is one line naming the file, the field and the fix."""

    def __init__(self, path: str | Path, field_path: str, problem: str, fix: str):
        self.path, self.field_path, self.problem, self.fix = str(path), field_path, problem, fix
        super().__init__(f"{path}: {field_path}: {problem}. Fix: {fix}")


class Strict(BaseModel):
    """Unknown fields are errors (a typo must not be silently ignored), NaN and infinities are
    refused (``.nan`` would pass every range check); loaded specs never change."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ScheduleSpec(Strict):
    cron: str = "0 3 * * *"
    enabled: bool = False

    @field_validator("cron")
    @classmethod
    def _five_field_cron(cls, cron: str) -> str:
        # Checked here: Dagster refuses a bad cron only when it loads the definitions, and then for every study.
        if len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise ValueError(f"{cron!r} is not a five-field cron expression; write minute hour day month weekday, "
                             "e.g. '0 3 * * *' for 03:00 every day")
        return cron


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
    "model_type": "write a mapping of field: value, {...}",
    "list_type": "write a list like [0.1, 0.3]",
    "finite_number": "write an ordinary number (not .nan or .inf)",
    "tuple_type": "write a [low, high] pair",
    "value_error": "see the problem stated",
}


_UNION_KINDS = {"bool": "true/false", "int": "a whole number", "float": "a number", "str": "text",
                "list[int]": "a list of whole numbers", "SeedRangeSpec": "{count: N, base_seed: N}"}


def _is_union_tag(part) -> bool:
    """Pydantic names the member of a union it tried (``int``, ``list[int]``, ``SeedRangeSpec``,
    ``function-after[...]``) inside an error's location; those are not fields."""
    text = str(part)
    camel_case = text[:1].isupper() and text.isidentifier() and "_" not in text and not text.isupper()
    return (text in _UNION_KINDS or text in {"constrained-int", "constrained-float"} or "[" in text
            or text.startswith("function-") or camel_case)


def _field_path(loc) -> str:
    parts = []
    for part in loc:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
        elif not _is_union_tag(part):
            parts.append(str(part))
    return ".".join(parts) or "(top level)"


def _shown(value, limit: int = 80) -> str:
    """A value as it appears in a message: its repr, cut short (a YAML alias bomb is megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _fields_at(model: type[BaseModel] | None, loc) -> list[str]:
    """The field names of the model that holds location ``loc`` (for a did-you-mean), or []."""
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int) or part not in model.model_fields:
            continue  # a list index, a dict key or a union tag: stay with the model found so far
        model = _model_in(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


def _model_in(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in reversed(getattr(annotation, "__args__", ()) or ()):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _error_from_validation(path: Path, error: ValidationError, model: type[BaseModel] | None = None) -> StudyError:
    errors = error.errors()
    # An unknown key says more than the required key it was probably meant to be ("candidate:"
    # for "candidates:" gives both errors; name the typo and the field it resembles).
    extra = [e for e in errors if e["type"] == "extra_forbidden"]
    if extra:
        where = _field_path(extra[0]["loc"])
        known = _fields_at(model, extra[0]["loc"][:-1])
        close = difflib.get_close_matches(str(extra[0]["loc"][-1]), known, n=1, cutoff=0.6)
        fix = f"did you mean {close[0]!r}? Correct its spelling" if close else _FIXES["extra_forbidden"]
        return StudyError(path, where, "unknown field", fix)
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
    if not specific and len(set(kinds)) > 1 and not set(kinds) <= {"a whole number", "a number"}:
        message = f"expected {' or '.join(dict.fromkeys(kinds))}, got {_shown(first.get('input'))}"
        fix = "write one value of those kinds"
    elif first["type"] in {"int_type", "float_type"}:
        message = f"expected a number, got {_shown(first.get('input'))}"
        fix = _FIXES["float_type"]
    elif first["type"] == "list_type" and isinstance(first.get("input"), str):
        message = f"expected a list, got the text {_shown(first['input'])}"
        fix = ("write one item per entry, e.g. [python, train.py, --seed, '{seed}'] for a command "
               "(it is never run through a shell)")
    elif first["type"].endswith("_type") and "input" in first:
        message = f"{message}, got {_shown(first['input'])}"
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


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def check_name(path: Path, field_path: str, name: str, what: str) -> None:
    """A user-chosen name that ends up in partition keys, file names and SQL: plain characters only
    (``|`` and ``,`` split Dagster's partition keys; ``/`` would make two names share one file)."""
    if not _NAME.fullmatch(name):
        raise StudyError(path, field_path, f"{what} name {name!r} may hold only ASCII letters, digits, '_', '.' "
                         "and '-', start with a letter or '_', and be at most 64 characters",
                         f"rename it, e.g. {re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_')[:64] or 'x'!r}")


def fingerprint(payload) -> str:
    """A short stable hash of a JSON-able payload: what a set of trials or an analysis depends on."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def validate_model(model: type[BaseModel], path: Path, raw: dict):
    """``model.model_validate(raw)``, with the first problem as a one-line StudyError."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise _error_from_validation(path, error, model) from None


MAX_STUDY_BYTES = 1_000_000  # a study is a page of YAML; more is a mistake (or an attack)
MAX_YAML_NODES = 100_000  # nodes after aliases are expanded: refuses a "billion laughs" alias bomb


class _StudyLoader(yaml.SafeLoader):
    """YAML as a study needs it: a key written twice is an error (YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key] + 1}; YAML would keep only the last)",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node, memo: dict, limit: int) -> int:
    """How many nodes a composed YAML tree stands for once its aliases are expanded."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a node that contains itself counts once
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo, limit) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo, limit) + _expanded_size(v, memo, limit) for k, v in node.value)
    memo[id(node)] = min(size, limit + 1)
    return memo[id(node)]


def read_study_file(path: Path) -> tuple[str, dict]:
    """The file's text and its YAML mapping; anything unusable is one StudyError line."""
    name = path.stem
    if not (name.isascii() and name.replace("_", "").isalnum() and name[0].isalpha()):
        raise StudyError(path, "file name", f"study name {name!r} is not a valid asset key prefix",
                         "rename the file with ASCII letters, digits and underscores, starting with a letter")
    if path.is_dir():
        raise StudyError(path, "(file)", "this is a folder, not a study file", "pass the .yaml file inside it")
    if path.stat().st_size > MAX_STUDY_BYTES:
        raise StudyError(path, "(file)", f"{path.stat().st_size:,} bytes is too large for a study file "
                         f"(limit {MAX_STUDY_BYTES:,})", "keep the study to its settings; put data elsewhere")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise StudyError(path, "(file)", f"not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
                         f"{error.start})", "save the file as UTF-8") from None
    try:
        document = yaml.compose(text, Loader=_StudyLoader)
        if document is not None and _expanded_size(document, {}, MAX_YAML_NODES) > MAX_YAML_NODES:
            raise StudyError(path, "(file)", f"its aliases expand to more than {MAX_YAML_NODES:,} values",
                             "write the values out instead of nesting aliases")
        raw = yaml.load(text, Loader=_StudyLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        problem = str(getattr(error, "problem", None) or error).splitlines()[0][:200]
        raise StudyError(path, where, f"not valid YAML ({problem})", "fix the indentation, quoting or keys there") from None
    if not isinstance(raw, dict):
        raise StudyError(path, "(top level)", "a study must be a mapping of fields", "start with 'kind: ratchet'")
    if "kind" not in raw:
        raise StudyError(path, "kind", "missing: a study names its kind first",
                         "start the file with kind: ratchet (or comparison, load_sweep)")
    return text, raw
