"""The ratchet study format: tiered constants, their candidates, scenarios and decision rules."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, StrictFloat, StrictInt, field_validator, model_validator

from benchmark_assets.kinds.ratchet.rules import DecisionRules
from benchmark_assets.scenarios.parametric import AxisRanges, ScenarioSeed, default_seeds, split_seed_ids
from benchmark_assets.study_file import Number, ScheduleSpec, Strict, StudyError, StudyFile, check_name, fingerprint
from benchmark_assets.sweep import CURRENT_POINT, ConstantSweep, SweepPoint, format_value, point_key
from benchmark_assets.targets import Target, TargetError, resolve_target


class ConstantSpec(Strict):
    tier: StrictInt = Field(ge=1, le=9)
    current: Number
    candidates: list[Number] | None = Field(default=None, min_length=1)
    # Instead of candidates: a range the study's Optuna search explores (log: on a log scale).
    range: tuple[Number, Number] | None = None
    log: bool = False

    @model_validator(mode="after")
    def _candidates_or_range(self) -> ConstantSpec:
        if (self.candidates is None) == (self.range is None):
            raise ValueError("give either candidates (a list to sweep) or range (low, high for the search); "
                             "e.g. candidates: [0.1, 0.3] or range: [0.05, 0.9]")
        if self.range is not None:
            low, high = self.range
            if not low < high:
                raise ValueError(f"range {list(self.range)} is not low < high; write the smaller value first")
            if not low <= self.current <= high:
                raise ValueError(f"current {self.current} is outside range {list(self.range)}; widen the range")
            if self.log and low <= 0:
                raise ValueError(f"a log range needs low > 0, got {low}; raise low or drop log: true")
        elif self.log:
            raise ValueError("log applies to a range; drop log: true or give a range")
        return self

    @field_validator("candidates")
    @classmethod
    def _no_duplicates(cls, values: list | None) -> list | None:
        if values is None:
            return values
        seen = []
        for value in values:
            if any(float(value) == float(other) for other in seen):
                raise ValueError(
                    f"duplicate candidate {format_value(value)} (its trials would overwrite each other); "
                    "list each value once"
                )
            seen.append(value)
        return values


class AxesSpec(Strict):
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


class ScenariosSpec(Strict):
    factory: Literal["parametric"] = "parametric"
    count: StrictInt = Field(default=50, ge=2, le=100_000)
    train_fraction: StrictFloat = Field(default=0.7, gt=0.0, lt=1.0)
    base_seed: StrictInt = 42
    axes: AxesSpec = Field(default_factory=AxesSpec)


_RULES = DecisionRules()  # the one place decision defaults are set


class DecisionSpec(Strict):
    improvement_threshold: Number = Field(default=_RULES.improvement_threshold, ge=0)
    sensitivity_threshold: Number = Field(default=_RULES.sensitivity_threshold, ge=0)
    cliff_safety_margin: Number = Field(default=_RULES.cliff_safety_margin, ge=0, le=1)
    cliff_drop: Number = Field(default=_RULES.cliff_drop, gt=0)
    cliff_steepness: Number = Field(default=_RULES.cliff_steepness, ge=1)
    confidence_level: StrictFloat = Field(default=_RULES.confidence_level, gt=0.5, lt=1.0)
    correction: Literal["max_t", "holm", "bonferroni", "bh", "none"] = _RULES.correction
    train_weight: Number = Field(default=_RULES.train_weight, ge=0, le=2)
    bootstrap_resamples: StrictInt = Field(default=_RULES.bootstrap_resamples, ge=100, le=1_000_000)
    rng_seed: StrictInt = _RULES.rng_seed


class SequentialSpec(Strict):
    """Further rounds of validation scenarios for verdicts that stay inconclusive (0: none)."""

    rounds: StrictInt = Field(default=0, ge=0, le=20)
    scenarios_per_round: StrictInt = Field(default=15, ge=1, le=10_000)
    spending: Literal["pocock", "obrien_fleming"] = "obrien_fleming"


class SearchSpec(Strict):
    """Optuna as the proposer for the constants given a ``range``: it explores them together on the
    train scenarios; its best point is then judged on validation like any constant's proposal."""

    sampler: Literal["tpe", "nsga2"] = "tpe"
    trials: StrictInt = Field(default=40, ge=2, le=2000)
    batch: StrictInt = Field(default=8, ge=1, le=256)  # proposals measured together between Optuna's looks
    seed: StrictInt = 0
    # nsga2: the metrics it trades off, each with its direction (the study's metric among them).
    objectives: dict[str, Literal["maximize", "minimize"]] = Field(default_factory=dict)


class RatchetSpec(Strict):
    kind: Literal["ratchet"]
    description: str = ""
    target: str
    metric: str
    direction: Literal["maximize", "minimize"] = "maximize"
    scenarios: ScenariosSpec = Field(default_factory=ScenariosSpec)
    trials_per_scenario: StrictInt = Field(default=1, ge=1, le=1000)
    constants: dict[str, ConstantSpec] = Field(min_length=1)
    decision: DecisionSpec = Field(default_factory=DecisionSpec)
    # Pairs of constants swept together as a grid on train and judged against each one's best alone.
    interactions: list[tuple[str, str]] = Field(default_factory=list)
    sequential: SequentialSpec = Field(default_factory=SequentialSpec)
    search: SearchSpec | None = None
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)

    @field_validator("interactions", mode="before")
    @classmethod
    def _pairs(cls, value):
        if not isinstance(value, list) or not all(isinstance(pair, list) and len(pair) == 2 for pair in value):
            raise ValueError("expected a list of pairs of constants; write each pair as two names, "
                             "e.g. interactions: [[decay_rate, recency_weight]]")
        return value


@dataclass(frozen=True, eq=False)
class RatchetStudy(StudyFile):
    """A loaded ratchet study: everything its assets, decisions and the CLI need from it."""

    spec: RatchetSpec
    target: Target = field(repr=False)
    kind = "ratchet"

    @cached_property
    def all_scenario_seeds(self) -> list[ScenarioSeed]:
        """The study's scenarios, then those of every further validation round it may spend."""
        scenarios, sequential = self.spec.scenarios, self.spec.sequential
        return default_seeds(scenarios.count + sequential.rounds * sequential.scenarios_per_round,
                             base_seed=scenarios.base_seed, axes=AxisRanges(**scenarios.axes.ranges()))

    @property
    def scenario_seeds(self) -> list[ScenarioSeed]:
        """The scenarios every run covers (train and the first validation set)."""
        return self.all_scenario_seeds[: self.spec.scenarios.count]

    @property
    def validation_rounds(self) -> list[list[int]]:
        """Seed ids of each further validation round (the seeds continue past ``count``; the
        train/validation split of the first ``count`` never changes)."""
        count, per_round = self.spec.scenarios.count, self.spec.sequential.scenarios_per_round
        return [list(range(count + r * per_round, count + (r + 1) * per_round))
                for r in range(self.spec.sequential.rounds)]

    def round_of(self, seed_id: int) -> int:
        """0 for the study's own scenarios, r for those of validation round r."""
        count = self.spec.scenarios.count
        return 0 if int(seed_id) < count else 1 + (int(seed_id) - count) // self.spec.sequential.scenarios_per_round

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
            if c.candidates is None:  # searched, not swept
                continue
            if tiers and c.tier not in tiers:
                continue
            if names and name not in names:
                continue
            values = sorted({float(v) for v in c.candidates} | {float(c.current)})
            values = [int(v) if isinstance(c.current, int) and float(v).is_integer() else v for v in values]
            chosen.append(ConstantSweep(name=name, tier=c.tier, current=c.current, values=tuple(values)))
        return chosen

    def sweep_points(self, *, tiers=None, names=None) -> list[SweepPoint]:
        """``current`` first, then each constant's other values, then the inner cells of each
        interaction grid whose two constants are both selected; the registration order of partitions."""
        base = self.current_params
        chosen = self.constant_sweeps(tiers=tiers, names=names)
        points = [SweepPoint(CURRENT_POINT, dict(base))]
        for sweep in chosen:
            for value in sweep.values:
                if value != sweep.current:
                    points.append(SweepPoint(point_key(sweep.name, value), {**base, sweep.name: value}, sweep.name, value))
        for first, second in self.interaction_sweeps({s.name for s in chosen}):
            points += [self.point_for_changes({first.name: a, second.name: b})
                       for a in first.values if a != first.current for b in second.values if b != second.current]
        return points

    @property
    def searched(self) -> list[str]:
        """The constants the Optuna search explores (those given a range), in the file's order."""
        return [name for name, c in self.spec.constants.items() if c.range is not None]

    @property
    def search(self) -> SearchSpec | None:
        """The search's settings (the defaults when constants have ranges but the file says no
        more); None without ranged constants."""
        return self.spec.search or (SearchSpec() if self.searched else None)

    def search_fingerprint(self) -> str:
        """What the search's results depend on: a change starts a new Optuna study."""
        # Not the budget (trials) nor the batch size: raising them continues the same search.
        return fingerprint({"search": self.search.model_dump(exclude={"trials", "batch"}) if self.search else None,
                            "space": {n: self.spec.constants[n].model_dump() for n in self.searched},
                            "current": self.current_params, "target": self.spec.target,
                            "target_version": self.target.version, "scenarios": self.spec.scenarios.model_dump(),
                            "trials_per_scenario": self.spec.trials_per_scenario, "metric": self.spec.metric,
                            "direction": self.spec.direction})

    def interaction_sweeps(self, names=None) -> list[tuple[ConstantSweep, ConstantSweep]]:
        """The study's interaction pairs (both constants among ``names`` if given) as sweeps."""
        sweeps = {s.name: s for s in self.constant_sweeps()}
        return [(sweeps[a], sweeps[b]) for a, b in self.spec.interactions
                if names is None or (a in names and b in names)]

    def change_key(self, changes: dict) -> str:
        """The point key of the current constants with ``changes`` applied: ``current`` for none,
        ``name=value`` for one, ``a=1,b=2`` (in the file's order of constants) for several."""
        moved = {name: value for name, value in changes.items() if float(value) != float(self.current_params[name])}
        order = list(self.spec.constants)
        return ",".join(point_key(n, moved[n]) for n in sorted(moved, key=order.index)) or CURRENT_POINT

    def point_for_changes(self, changes: dict) -> SweepPoint:
        moved = {name: value for name, value in changes.items() if float(value) != float(self.current_params[name])}
        names = [n for n in self.spec.constants if n in moved]
        single = len(names) == 1
        return SweepPoint(self.change_key(moved), {**self.current_params, **moved},
                          ",".join(names) or None, moved[names[0]] if single else None)

    def changes_of(self, key: str) -> dict:
        """The constants ``key``'s point moves from today's values, with their values."""
        params = self.point_for(key).params
        return {name: value for name, value in params.items() if float(value) != float(self.current_params[name])}

    def point_for(self, key: str) -> SweepPoint:
        """The sweep point a key names, declared or not (a combination the ratchet asked to
        validate): ``current``, ``a=0.5`` or ``a=0.5,b=2``; a key naming no constant raises KeyError."""
        if key == CURRENT_POINT:
            return SweepPoint(CURRENT_POINT, dict(self.current_params))
        changes = {}
        for part in key.split(","):
            name, _, text = part.partition("=")
            if name not in self.spec.constants or not text:
                raise KeyError(key)
            try:
                value = float(text)
            except ValueError:
                raise KeyError(key) from None
            current = self.spec.constants[name].current
            changes[name] = int(value) if isinstance(current, int) and value.is_integer() else value
        point = self.point_for_changes(changes)
        if point.key != key:  # not the canonical spelling (order, format) of these changes
            raise KeyError(key)
        return point

    def point_fingerprints(self, extra_keys=()) -> dict[str, str]:
        """What each sweep point's trials depend on (the declared points and ``extra_keys``, such
        as registered combinations); a change means its partitions must rerun."""
        points = self.sweep_points() + [self.point_for(k) for k in extra_keys]
        return {p.key: self.point_fingerprint(p) for p in points}

    def point_fingerprint(self, point: SweepPoint) -> str:
        """What one point's trials depend on: the target and its version, the scenarios, the
        repeats and the point's parameters. Stored with every trial row, so rows measured under an
        older target or scenario set are never mistaken for current ones."""
        return fingerprint({"target": self.spec.target, "target_version": self.target.version,
                            "scenarios": self.spec.scenarios.model_dump(),
                            "trials_per_scenario": self.spec.trials_per_scenario, "params": point.params})

    def decision_fingerprint(self) -> str:
        payload = {"decision": self.spec.decision.model_dump(), "metric": self.spec.metric, "method": "screened",
                   "direction": self.spec.direction, "sequential": self.spec.sequential.model_dump()}
        return fingerprint(payload)


def check_against_target(path: Path, spec: RatchetSpec, target: Target) -> None:
    """The study against what its target declares: metrics, constants, whole-number constants."""
    if target.metrics is not None and spec.metric not in target.metrics:
        raise StudyError(path, "metric", f"unknown metric {spec.metric!r} for target {spec.target!r}",
                         f"use one of {list(target.metrics)}")
    if target.constants is not None:
        for name in spec.constants:
            if name not in target.constants:
                close = difflib.get_close_matches(name, sorted(target.constants), n=1)
                known = sorted(target.constants)
                listed = f"{known[:8]}{' and more' if len(known) > 8 else ''}"
                raise StudyError(path, f"constants.{name}", f"unknown constant for target {spec.target!r}",
                                 f"did you mean {close[0]!r}?" if close else f"use one of {listed}")
        missing = sorted(target.constants - spec.constants.keys())
        if missing:
            raise StudyError(path, "constants", f"target {spec.target!r} also needs {missing}",
                             "declare each with its tier, current value and candidates")
    for name in target.integer_constants & spec.constants.keys():
        constant = spec.constants[name]
        for label, value in [("current", constant.current)] + [
            (f"candidates[{i}]", v) for i, v in enumerate(constant.candidates or [])
        ]:
            if not float(value).is_integer():
                raise StudyError(path, f"constants.{name}.{label}", f"{name} takes whole numbers, got {value}",
                                 "use an integer such as 3 (a fraction would be silently truncated)")


MAX_GRID_CELLS = 400  # per interaction pair: each cell is a sweep point run on every scenario


def check_search(path: Path, spec: RatchetSpec, target: Target) -> None:
    searched = [name for name, c in spec.constants.items() if c.range is not None]
    if spec.search is not None and not searched:
        raise StudyError(path, "search", "no constant has a range to search",
                         "give the constants to search a range: [low, high] instead of candidates")
    for name in searched:
        if name in target.integer_constants and not all(float(v).is_integer() for v in spec.constants[name].range):
            raise StudyError(path, f"constants.{name}.range", f"{name} takes whole numbers",
                             "give whole-number ends, e.g. range: [1, 8]")
    search = spec.search
    if search is None:  # ranged constants without a search section: the defaults (tpe)
        return
    if search.sampler == "nsga2":
        if len(search.objectives) < 2 or spec.metric not in search.objectives:
            raise StudyError(path, "search.objectives", "nsga2 trades off several metrics",
                             f"list at least two with their directions, {spec.metric!r} among them, e.g. "
                             f"objectives: {{{spec.metric}: {spec.direction}, cost: minimize}}")
        if search.objectives[spec.metric] != spec.direction:
            raise StudyError(path, f"search.objectives.{spec.metric}", "differs from the study's direction",
                             f"use {spec.direction}, as `direction:` says")
        if target.metrics is not None:
            unknown = sorted(set(search.objectives) - set(target.metrics))
            if unknown:
                raise StudyError(path, "search.objectives", f"unknown metrics {unknown} for target {spec.target!r}",
                                 f"use some of {list(target.metrics)}")
    elif search.objectives:
        raise StudyError(path, "search.objectives", "only the nsga2 sampler takes several objectives",
                         "use sampler: nsga2, or drop objectives (tpe optimises the study's metric)")


def check_interactions(path: Path, spec: RatchetSpec) -> None:
    seen = set()
    for i, (first, second) in enumerate(spec.interactions):
        field_name = f"interactions[{i}]"
        for name in (first, second):
            if name not in spec.constants:
                close = difflib.get_close_matches(name, sorted(spec.constants), n=1)
                raise StudyError(path, field_name, f"{name!r} is not a constant of this study",
                                 f"did you mean {close[0]!r}?" if close else "list two of the study's constants")
            if spec.constants[name].candidates is None:
                raise StudyError(path, field_name, f"{name!r} has a range, not candidates",
                                 "pair constants with candidates; the search already explores ranged ones together")
        if first == second:
            raise StudyError(path, field_name, f"pairs {first!r} with itself", "list two different constants")
        if frozenset((first, second)) in seen:
            raise StudyError(path, field_name, f"the pair {first}, {second} is listed twice", "list each pair once")
        seen.add(frozenset((first, second)))
        cells = (len(set(spec.constants[first].candidates) - {spec.constants[first].current}) *
                 len(set(spec.constants[second].candidates) - {spec.constants[second].current}))
        if cells > MAX_GRID_CELLS:
            raise StudyError(path, field_name, f"the {first} x {second} grid has {cells} cells to run",
                             f"keep it to {MAX_GRID_CELLS} cells: fewer candidates for either constant")


def load_ratchet(path: Path, text: str, spec: RatchetSpec, name: str) -> RatchetStudy:
    for constant in spec.constants:
        check_name(path, f"constants.{constant}", constant, "constant")
        if constant == "search":
            raise StudyError(path, "constants.search", "'search' names the search's own verdict",
                             "rename the constant")
    try:
        target = resolve_target(spec.target)
    except TargetError as error:
        problem, _, fix = str(error).rpartition("; ")
        raise StudyError(path, "target", problem, fix) from None
    check_against_target(path, spec, target)
    check_interactions(path, spec)
    check_search(path, spec, target)
    study = RatchetStudy(name=name, path=path, text=text, spec=spec, target=target)
    try:
        empty = [split for split, ids in zip(("train", "validation"), study.split) if not ids]
    except ValueError:  # the split itself refuses an empty side
        empty = ["train or validation"]
    if empty:
        scenarios = spec.scenarios
        raise StudyError(path, "scenarios.train_fraction", f"{scenarios.train_fraction} of {scenarios.count} "
                         f"scenarios leaves no {empty[0]} scenario",
                         "use a fraction that leaves at least one scenario on each side, or more scenarios")
    return study
