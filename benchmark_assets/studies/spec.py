"""The ratchet study format (pydantic models) and the loader that turns mistakes into one line each."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError, field_validator, model_validator

from benchmark_assets.decisions.ratchet import DecisionRules
from benchmark_assets.scenarios.parametric import AXIS_DOMAINS, AxisRanges, ScenarioSeed, default_seeds, split_seed_ids
from benchmark_assets.stats.multiple import CORRECTIONS
from benchmark_assets.sweep import CURRENT_POINT, ConstantSweep, SweepPoint, format_value, point_key
from benchmark_assets.targets import Target, TargetError, resolve_target

Number = StrictInt | StrictFloat


class StudyError(ValueError):
    """A study that cannot be used; ``str()`` is one line naming the file, the field and the fix."""

    def __init__(self, path: str | Path, field_path: str, problem: str, fix: str):
        self.path, self.field_path, self.problem, self.fix = str(path), field_path, problem, fix
        super().__init__(f"{path}: {field_path}: {problem}. Fix: {fix}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConstantSpec(_Strict):
    tier: StrictInt = Field(ge=1, le=9)
    current: Number
    candidates: list[Number] = Field(min_length=1)

    @field_validator("candidates")
    @classmethod
    def _no_duplicates(cls, values: list) -> list:
        seen = []
        for value in values:
            if any(float(value) == float(other) for other in seen):
                raise ValueError(
                    f"duplicate candidate {format_value(value)} (its trials would overwrite each other); "
                    "list each value once"
                )
            seen.append(value)
        return values


class AxesSpec(_Strict):
    record_count: tuple[StrictInt, StrictInt] | None = None
    importance_shapes: list[str] | None = None
    access_patterns: list[str] | None = None
    outcome_frequency: tuple[Number, Number] | None = None
    noise_ratio: tuple[Number, Number] | None = None
    link_density: tuple[Number, Number] | None = None
    age_spread_days: tuple[StrictInt, StrictInt] | None = None

    @model_validator(mode="after")
    def _within_domains(self) -> AxesSpec:
        AxisRanges(**self.ranges())  # raises ValueError naming the axis
        return self

    def ranges(self) -> dict:
        return {k: tuple(v) for k, v in self.model_dump().items() if v is not None}


class ScenariosSpec(_Strict):
    factory: Literal["parametric"] = "parametric"
    count: StrictInt = Field(default=50, ge=2, le=100_000)
    train_fraction: StrictFloat = Field(default=0.7, gt=0.0, lt=1.0)
    base_seed: StrictInt = 42
    axes: AxesSpec = Field(default_factory=AxesSpec)


_RULES = DecisionRules()  # the one place decision defaults are set


class DecisionSpec(_Strict):
    improvement_threshold: Number = Field(default=_RULES.improvement_threshold, ge=0)
    sensitivity_threshold: Number = Field(default=_RULES.sensitivity_threshold, ge=0)
    cliff_safety_margin: Number = Field(default=_RULES.cliff_safety_margin, ge=0, le=1)
    cliff_drop: Number = Field(default=_RULES.cliff_drop, gt=0)
    cliff_steepness: Number = Field(default=_RULES.cliff_steepness, ge=1)
    confidence_level: StrictFloat = Field(default=_RULES.confidence_level, gt=0.5, lt=1.0)
    correction: Literal["holm", "bh", "none"] = _RULES.correction
    bootstrap_resamples: StrictInt = Field(default=_RULES.bootstrap_resamples, ge=100, le=1_000_000)
    rng_seed: StrictInt = _RULES.rng_seed


class ScheduleSpec(_Strict):
    cron: str = "0 3 * * *"
    enabled: bool = False


class RatchetSpec(_Strict):
    kind: Literal["ratchet"]
    description: str = ""
    target: str
    metric: str
    direction: Literal["maximize", "minimize"] = "maximize"
    scenarios: ScenariosSpec = Field(default_factory=ScenariosSpec)
    trials_per_scenario: StrictInt = Field(default=1, ge=1, le=1000)
    constants: dict[str, ConstantSpec] = Field(min_length=1)
    decision: DecisionSpec = Field(default_factory=DecisionSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)


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


class StudyFile:
    """What every kind of loaded study has from its file: ``text`` and the hash that names it in
    the ledger and in code versions."""

    text: str

    @property
    def spec_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class Study(StudyFile):
    """A loaded, validated study: everything the assets, decisions and CLI need from it."""

    name: str
    path: Path
    text: str
    spec: RatchetSpec
    target: Target = field(repr=False)
    kind = "ratchet"

    @cached_property
    def scenario_seeds(self) -> list[ScenarioSeed]:
        scenarios = self.spec.scenarios
        return default_seeds(scenarios.count, base_seed=scenarios.base_seed, axes=AxisRanges(**scenarios.axes.ranges()))

    @cached_property
    def split(self) -> tuple[list[int], list[int]]:
        return split_seed_ids([s.seed_id for s in self.scenario_seeds], self.spec.scenarios.train_fraction)

    @cached_property
    def _train_ids(self) -> frozenset[int]:
        return frozenset(self.split[0])

    def split_of(self, seed_id: int) -> str:
        return "train" if int(seed_id) in self._train_ids else "validation"

    @property
    def seed_keys(self) -> list[str]:
        return [str(s.seed_id) for s in self.scenario_seeds]

    @property
    def current_params(self) -> dict:
        return {name: c.current for name, c in self.spec.constants.items()}

    @property
    def rules(self) -> DecisionRules:
        return DecisionRules(**self.spec.decision.model_dump())

    @property
    def maximize(self) -> bool:
        return self.spec.direction == "maximize"

    def constant_sweeps(self, *, tiers=None, names=None) -> list[ConstantSweep]:
        """Constants in tier order, then file order; optionally only some tiers or names."""
        chosen = []
        for name, c in sorted(self.spec.constants.items(), key=lambda item: item[1].tier):
            if tiers and c.tier not in tiers:
                continue
            if names and name not in names:
                continue
            values = sorted({float(v) for v in c.candidates} | {float(c.current)})
            values = [int(v) if isinstance(c.current, int) and float(v).is_integer() else v for v in values]
            chosen.append(ConstantSweep(name=name, tier=c.tier, current=c.current, values=tuple(values)))
        return chosen

    def sweep_points(self, *, tiers=None, names=None) -> list[SweepPoint]:
        """``current`` first, then each constant's other values; the registration order of partitions."""
        base = self.current_params
        points = [SweepPoint(CURRENT_POINT, None, None, dict(base))]
        for sweep in self.constant_sweeps(tiers=tiers, names=names):
            for value in sweep.values:
                if value != sweep.current:
                    points.append(SweepPoint(point_key(sweep.name, value), sweep.name, value, {**base, sweep.name: value}))
        return points

    def point_fingerprints(self) -> dict[str, str]:
        """What each sweep point's trials depend on; a change means its partitions must rerun."""
        shared = {
            "target": self.spec.target,
            "target_version": self.target.version,
            "scenarios": self.spec.scenarios.model_dump(),
            "trials_per_scenario": self.spec.trials_per_scenario,
        }
        return {
            p.key: hashlib.sha256(json.dumps({**shared, "params": p.params}, sort_keys=True).encode()).hexdigest()[:16]
            for p in self.sweep_points()
        }

    def decision_fingerprint(self) -> str:
        payload = {"decision": self.spec.decision.model_dump(), "metric": self.spec.metric, "direction": self.spec.direction}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _check_against_target(path: Path, spec: RatchetSpec, target: Target) -> None:
    if target.metrics is not None and spec.metric not in target.metrics:
        raise StudyError(path, "metric", f"unknown metric {spec.metric!r} for target {spec.target!r}",
                         f"use one of {list(target.metrics)}")
    if target.constants is not None:
        for name in spec.constants:
            if name not in target.constants:
                raise StudyError(path, f"constants.{name}", f"unknown constant for target {spec.target!r}",
                                 f"use one of {sorted(target.constants)}")
        missing = sorted(target.constants - spec.constants.keys())
        if missing:
            raise StudyError(path, "constants", f"target {spec.target!r} also needs {missing}",
                             "declare each with its tier, current value and candidates")
    for name in target.integer_constants & spec.constants.keys():
        constant = spec.constants[name]
        for label, value in [("current", constant.current)] + [
            (f"candidates[{i}]", v) for i, v in enumerate(constant.candidates)
        ]:
            if not float(value).is_integer():
                raise StudyError(path, f"constants.{name}.{label}", f"{name} takes whole numbers, got {value}",
                                 "use an integer such as 3 (a fraction would be silently truncated)")


def validate_model(model: type[BaseModel], path: Path, raw: dict):
    """``model.model_validate(raw)``, with the first problem as a one-line StudyError."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise _error_from_validation(path, error) from None


def _load_ratchet(path: Path, text: str, raw: dict, name: str) -> Study:
    spec = validate_model(RatchetSpec, path, raw)
    try:
        target = resolve_target(spec.target)
    except TargetError as error:
        raise StudyError(path, "target", str(error).split("; ")[0], str(error).split("; ", 1)[-1]) from None
    _check_against_target(path, spec, target)
    return Study(name=name, path=path, text=text, spec=spec, target=target)


def _loaders() -> dict:
    from benchmark_assets.studies.comparison import load_comparison
    from benchmark_assets.studies.load_sweep import load_load_sweep

    return {"ratchet": _load_ratchet, "comparison": load_comparison, "load_sweep": load_load_sweep}


def load_study(name_or_path: str | Path, directory: Path | None = None):
    """Load and validate a study by name (``memory_ratchet``) or path; raise ``StudyError``.

    Returns a ``Study`` (kind ratchet) or a ``ComparisonStudy`` (kind comparison)."""
    path = resolve_study_path(name_or_path, directory)
    text = path.read_text()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise StudyError(path, where, f"not valid YAML ({getattr(error, 'problem', error)})",
                         "fix the indentation or quoting there") from error
    loaders = _loaders()
    if not isinstance(raw, dict):
        raise StudyError(path, "(top level)", "a study must be a mapping of fields", "start with 'kind: ratchet'")
    kind = raw.get("kind")
    if kind not in loaders:
        raise StudyError(path, "kind", f"unknown study kind {kind!r}", f"use kind: {' or '.join(loaders)}")
    name = path.stem
    if not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise StudyError(path, "file name", f"study name {name!r} is not a valid asset key prefix",
                         "rename the file with letters, digits and underscores, starting with a letter")
    return loaders[kind](path, text, raw, name)


def discover_studies(directory: Path | None = None) -> list:
    directory = directory or studies_dir()
    return [load_study(path) for path in sorted(directory.glob("*.yaml"))]


__all__ = ["AXIS_DOMAINS", "CORRECTIONS", "Study", "StudyError", "discover_studies", "load_study"]
