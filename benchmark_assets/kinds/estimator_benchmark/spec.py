"""The estimator benchmark's study format: which template catalog, which treatment-effect
estimators, how many seeds, and how the leaderboard decides. No Dagster.

A trial is one estimator fitted on one data set: a catalog entry generated with one seed. The
data set is the same for every estimator (it depends on the entry and the seed only), so the
estimators are compared on identical data: a paired design across the catalog.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator, model_validator

from benchmark_assets.kinds.base import trial_columns
from benchmark_assets.scenarios.templates import PROFILES, CatalogEntry, CoverageError, TemplateError, build_catalog
from benchmark_assets.study_file import Number, ScheduleSpec, Strict, StudyError, StudyFile, check_name, fingerprint
from benchmark_assets.targets.calls import CALLABLE_REFERENCE
from benchmark_assets.targets.locate import callable_problem, problem_and_fix
from benchmark_assets.targets.uplift import BUILTIN

# The metrics of a trial (stats.uplift.uplift_metrics) where higher is better; errors are lower.
HIGHER_IS_BETTER = ("qini", "auuc", "sign_accuracy")
# Aggregated per estimator and star point.
AGGREGATED = ("pehe_normalised", "ate_error_normalised", "ate_bias", "qini", "sign_accuracy", "ate_covered", "coverage",
              "fit_seconds")
# A pair of estimators judged on the decision metric, from the first one's side.
BETTER, WORSE, NO_DIFFERENCE, NOT_JUDGED = "better", "worse", "no_difference_shown", "not_judged"
VERDICTS = (BETTER, WORSE, NO_DIFFERENCE, NOT_JUDGED)
TRIAL_COLUMNS = trial_columns("estimator", "dataset", "entry_id", "seed", "template", "metric_id", "family",
                              "memberships", "entry_fingerprint", "n_rows", "fit_seconds")
SEPARATOR = "~s"  # a data set's key: <entry id>~s<seed>


class CatalogSpec(Strict):
    """A named profile, or a star sweep spelled out (the fields of ``scenarios.templates.build_catalog``)."""

    profile: StrictStr | None = None
    templates: list[StrictStr] | None = None
    metric_ids: list[StrictStr] | None = None
    effect_scale_grid: list[Number] | None = None
    knob_grids: dict[StrictStr, list[Any]] = Field(default_factory=dict)
    defaults: dict[StrictStr, Any] = Field(default_factory=dict)
    default_effect_scale: Number = Field(default=1.0, gt=0)
    categorical_driver: StrictStr | None = None

    @model_validator(mode="after")
    def _profile_or_grid(self) -> CatalogSpec:
        spelled = [f for f in ("templates", "metric_ids", "effect_scale_grid", "knob_grids", "defaults",
                               "default_effect_scale", "categorical_driver") if f in self.model_fields_set]
        if self.profile is not None and spelled:
            raise ValueError(f"give a profile or a grid, not both (profile {self.profile!r} with {spelled[0]}); "
                             "remove the profile to spell out the grid, or remove the grid fields")
        if self.profile is None and self.effect_scale_grid is None:
            raise ValueError(f"no catalog given; write profile: validate (or one of {sorted(PROFILES)}), or list "
                             "effect_scale_grid: [0.5, 1.0, 2.0]")
        return self

    def arguments(self) -> dict:
        """The keyword arguments of ``build_catalog`` this spec stands for."""
        if self.profile is not None:
            return dict(PROFILES[self.profile])
        return {"templates": self.templates, "metric_ids": self.metric_ids,
                "effect_scale_grid": list(self.effect_scale_grid), "knob_grids": dict(self.knob_grids) or None,
                "defaults": dict(self.defaults) or None, "default_effect_scale": float(self.default_effect_scale),
                "categorical_driver": self.categorical_driver}


class EstimatorSpec(Strict):
    """One estimator: a shipped one by name, or ``module:function`` of the user's own; ``options``
    are passed to it as keyword arguments."""

    name: StrictStr
    function: StrictStr | None = None  # default: the shipped estimator called ``name``
    options: dict[StrictStr, Any] = Field(default_factory=dict)

    @property
    def reference(self) -> str:
        return self.function or self.name


class SeedRangeSpec(Strict):
    count: StrictInt = Field(ge=1, le=1000)
    base_seed: StrictInt = Field(default=0, ge=0, le=2**31 - 1000)


class DecisionSpec(Strict):
    metric: Literal["pehe_normalised", "ate_error_normalised", "qini"] = "pehe_normalised"
    confidence_level: StrictFloat = Field(default=0.95, gt=0.5, lt=1.0)
    correction: Literal["holm", "bonferroni", "none"] = "holm"
    bootstrap_resamples: StrictInt = Field(default=2000, ge=200, le=100_000)
    rng_seed: StrictInt = 0


class EstimatorBenchmarkSpec(Strict):
    kind: Literal["estimator_benchmark"]
    description: str = ""
    catalog: CatalogSpec
    seeds: StrictInt | list[StrictInt] | SeedRangeSpec = 2
    estimators: list[EstimatorSpec] = Field(min_length=1)
    decision: DecisionSpec = Field(default_factory=DecisionSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    allow_large: StrictBool = False  # lift the sane upper bounds (LIMITS) on knobs that size a data set

    @field_validator("estimators", mode="before")
    @classmethod
    def _names_are_shipped_estimators(cls, estimators):
        """``- t_learner`` is short for ``- {name: t_learner}``."""
        if isinstance(estimators, list):
            return [{"name": item} if isinstance(item, str) else item for item in estimators]
        return estimators

    @field_validator("seeds")
    @classmethod
    def _seed_values(cls, seeds):
        if isinstance(seeds, int) and not 1 <= seeds <= 1000:
            raise ValueError(f"seeds: {seeds} is not a count from 1 to 1000; write seeds: 2, or a list of seeds")
        if isinstance(seeds, list):
            if not seeds:
                raise ValueError("empty list of seeds; give at least one, e.g. [0, 1]")
            if any(s < 0 for s in seeds):
                raise ValueError("seeds must be 0 or more; use non-negative seeds")
            if len(set(seeds)) != len(seeds):
                raise ValueError("a seed is listed twice (its trials would overwrite each other); list each once")
        return seeds


@dataclass(frozen=True)
class Estimator:
    """An estimator of a loaded study: its name, what it refers to, its options."""

    name: str
    reference: str
    options: dict

    def fingerprint(self) -> str:
        return fingerprint({"reference": self.reference, "options": self.options})


@dataclass(frozen=True, eq=False)
class EstimatorBenchmarkStudy(StudyFile):
    spec: EstimatorBenchmarkSpec
    entries: tuple[CatalogEntry, ...]
    estimators: tuple[Estimator, ...]
    kind = "estimator_benchmark"

    @cached_property
    def seeds(self) -> list[int]:
        seeds = self.spec.seeds
        if isinstance(seeds, int):
            return list(range(seeds))
        if isinstance(seeds, SeedRangeSpec):
            return [seeds.base_seed + i for i in range(seeds.count)]
        return list(seeds)

    @property
    def estimator_names(self) -> list[str]:
        return [e.name for e in self.estimators]

    def estimator(self, name: str) -> Estimator:
        for estimator in self.estimators:
            if estimator.name == name:
                return estimator
        raise KeyError(f"estimator {name!r} is no longer in {self.path.name}")

    @cached_property
    def entry_by_id(self) -> dict[str, CatalogEntry]:
        return {e.entry_id: e for e in self.entries}

    @property
    def entry_ids(self) -> list[str]:
        return [e.entry_id for e in self.entries]

    @cached_property
    def dataset_keys(self) -> list[str]:
        """One key per generated data set: every catalog entry with every seed."""
        return [dataset_key(e.entry_id, s) for e in self.entries for s in self.seeds]

    @cached_property
    def entry_fingerprints(self) -> dict[str, str]:
        """What an entry's data sets depend on: its template and its knobs (the seed is in the key)."""
        return {e.entry_id: fingerprint({"template": e.template, "kwargs": e.kwargs}) for e in self.entries}

    @cached_property
    def star_points(self) -> dict[str, list[tuple[str, Any]]]:
        """Per entry, the (knob, value) points of the catalog's star it stands for: its own axis and
        value; the centre entry (every knob at its default) is also the default point of every knob
        swept for its template and metric, so each knob's curve passes through it. Worked out from
        the catalog as it is now (trials of an entry stay valid when other entries come and go)."""
        swept: dict[tuple[str, str], set[str]] = {}
        for entry in self.entries:
            if entry.axis != "effect_scale":
                swept.setdefault((entry.template, entry.kwargs["metric_id"]), set()).add(entry.axis)
        out = {}
        for entry in self.entries:
            points = [(entry.axis, entry.axis_value)]
            if entry.centre:
                _, metadata = entry.build(self.seeds[0])
                points += [(knob, metadata[knob])
                           for knob in sorted(swept.get((entry.template, entry.kwargs["metric_id"]), ()))
                           if knob != entry.axis]
            out[entry.entry_id] = points
        return out

    @cached_property
    def estimator_fingerprints(self) -> dict[str, str]:
        return {e.name: e.fingerprint() for e in self.estimators}

    def decision_fingerprint(self) -> str:
        return fingerprint(self.spec.decision.model_dump())


def dataset_key(entry_id: str, seed: int) -> str:
    return f"{entry_id}{SEPARATOR}{int(seed)}"


def split_dataset_key(key: str) -> tuple[str, int]:
    entry_id, _, seed = key.rpartition(SEPARATOR)
    return entry_id, int(seed)


def _estimators(path: Path, spec: EstimatorBenchmarkSpec) -> tuple[Estimator, ...]:
    estimators, seen = [], {}
    for i, given in enumerate(spec.estimators):
        where = f"estimators[{i}]"
        check_name(path, f"{where}.name", given.name, "estimator")
        if given.name in seen:
            raise StudyError(path, where, f"estimator {given.name!r} is listed twice (also at estimators["
                             f"{seen[given.name]}])",
                             "give the second one its own name: {name: t_learner_deep, function: t_learner, options: "
                             "{...}}")
        seen[given.name] = i
        reference = given.reference
        if reference not in BUILTIN and not CALLABLE_REFERENCE.fullmatch(reference):
            field_path = f"{where}.function" if given.function else f"{where}.name"
            raise StudyError(path, field_path, f"{reference!r} is neither a shipped estimator nor module:function",
                             f"use one of {', '.join(BUILTIN)}, or a function as package.module:function")
        if reference not in BUILTIN:
            missing = callable_problem(reference)  # before anything runs, without importing it
            if missing:
                raise StudyError(path, f"{where}.function" if given.function else f"{where}.name",
                                 *problem_and_fix(missing))
        estimators.append(Estimator(given.name, reference, dict(given.options)))
    return tuple(estimators)


def _catalog_field(catalog: CatalogSpec, problem: str) -> str:
    """The catalog field holding the value a template error names (``'reversl'``, ``n_visitors=10``)."""
    if catalog.profile is not None:
        return "catalog.profile"
    for field in ("templates", "metric_ids"):
        for i, value in enumerate(getattr(catalog, field) or ()):
            if repr(value) in problem:
                return f"catalog.{field}[{i}]"
    for field in ("knob_grids", "defaults"):
        for knob, values in getattr(catalog, field).items():
            for i, value in enumerate(values if isinstance(values, list) else [values]):
                if f"{knob}={value!r}" in problem:
                    return f"catalog.{field}.{knob}" + (f"[{i}]" if isinstance(values, list) else "")
            if repr(knob) in problem or f"for {knob} " in problem:
                return f"catalog.{field}.{knob}"
    if catalog.categorical_driver is not None and repr(catalog.categorical_driver) in problem:
        return "catalog.categorical_driver"
    if problem.startswith("effect_scale") or "effect_scale " in problem:
        for i, value in enumerate(catalog.effect_scale_grid or ()):
            if f"effect_scale={value!r}" in problem:
                return f"catalog.effect_scale_grid[{i}]"
        return ("catalog.default_effect_scale" if f"effect_scale={catalog.default_effect_scale!r}" in problem
                else "catalog.effect_scale_grid")
    return "catalog"


# Sane upper bounds on the knobs that size a data set (every visitor is a row held in memory and
# fitted on): past these a typo (an extra zero or three) tries to allocate gigabytes or more. A
# study that means it sets `allow_large: true`, as a load sweep does for its load sizes.
LIMITS = {"n_visitors": 2_000_000}


def _check_sizes(path: Path, spec: EstimatorBenchmarkSpec) -> None:
    catalog = spec.catalog
    for knob, limit in LIMITS.items():
        given = [(f"catalog.defaults.{knob}", catalog.defaults.get(knob))]
        given += [(f"catalog.knob_grids.{knob}[{i}]", v) for i, v in enumerate(catalog.knob_grids.get(knob) or [])]
        for where, value in given:
            if (not spec.allow_large and isinstance(value, int | float) and not isinstance(value, bool)
                    and value > limit):
                raise StudyError(path, where, f"{knob} {value:,} is above the sane limit {limit:,} (each data set "
                                 "holds every visitor in memory)", "use a smaller value, or set allow_large: true "
                                 "if you mean it")


def load_estimator_benchmark(path: Path, text: str, spec: EstimatorBenchmarkSpec, name: str) -> EstimatorBenchmarkStudy:
    """Cross-field checks, each one line: the catalog is built here (an unknown template or knob,
    an empty grid, a catalog that fails the coverage gate is refused before anything runs)."""
    catalog = spec.catalog
    if catalog.profile is not None and catalog.profile not in PROFILES:
        raise StudyError(path, "catalog.profile", f"no profile {catalog.profile!r}",
                         f"use one of {', '.join(PROFILES)}, or spell out the grid (effect_scale_grid, knob_grids)")
    _check_sizes(path, spec)
    try:
        entries = tuple(build_catalog(**catalog.arguments()))
    except CoverageError as error:
        raise StudyError(path, "catalog", str(error), "widen the catalog as the gate says") from None
    except TemplateError as error:
        problem, _, fix = str(error).partition("; ")
        raise StudyError(path, _catalog_field(catalog, problem), problem, fix or "correct the catalog") from None
    if not entries:
        raise StudyError(path, "catalog", "the catalog has no entries", "list at least one template and metric id")
    estimators = _estimators(path, spec)
    study = EstimatorBenchmarkStudy(name=name, path=path, text=text, spec=spec, entries=entries, estimators=estimators)
    if len(study.seeds) < 2:
        raise StudyError(path, "seeds", "one seed per catalog entry leaves no spread between seeds for the intervals "
                         "(they resample seeds within each entry)", "use seeds: 2 or more")
    return study
