"""The comparison study format: a control and a candidate arm run by a command on the same seeds."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator, model_validator

from benchmark_assets.kinds.base import trial_columns
from benchmark_assets.stats.aggregate import stable_seed
from benchmark_assets.study_file import Number, ScheduleSpec, Strict, StudyError, StudyFile, check_name, fingerprint
from benchmark_assets.sweep import SweepPoint
from benchmark_assets.targets.command import CommandError, CommandSpec, validate_command
from benchmark_assets.targets.locate import problem_and_fix, program_problem

ARMS = ("control", "candidate")
# The columns of a comparison trial row; a metric may not take one of these names.
TRIAL_COLUMNS = trial_columns("arm", "seed", "exit_code", "stderr_tail", "duration_seconds", "command", "git_commit",
                              "curves_json")
ParamValue = StrictBool | StrictInt | StrictFloat | StrictStr


class CommandTargetSpec(Strict):
    command: list[StrictStr] = Field(min_length=1)
    timeout_seconds: Number = Field(default=600, gt=0)
    metrics_from: Literal["auto", "file", "stdout"] = "auto"
    cwd: str | None = None
    env: dict[str, StrictStr] = Field(default_factory=dict)
    parallel: StrictInt = Field(default=1, ge=1, le=64)  # trials run at once (subprocesses)


class SummarySpec(Strict):
    """How a curve becomes one number per trial (scalar metrics need none)."""

    type: Literal["auc", "last_n", "slope"]
    window: Number = Field(default=0.25, gt=0, le=1)  # fraction of the steps at the end (auc, slope)
    n: StrictInt = Field(default=5, ge=1)  # points at the end (last_n)

    @property
    def label(self) -> str:
        if self.type == "last_n":
            return f"last{self.n}"
        return f"{self.type}_last{round(100 * float(self.window))}pct"


class ComparisonDecisionSpec(Strict):
    confidence_level: StrictFloat = Field(default=0.95, gt=0.5, lt=1.0)
    method: Literal["percentile", "basic", "bca"] = "bca"
    bootstrap_resamples: StrictInt = Field(default=10_000, ge=100, le=1_000_000)
    rng_seed: StrictInt = 0
    power: StrictFloat = Field(default=0.8, gt=0.0, lt=1.0)
    target_effect: Number | None = Field(default=None, gt=0)  # smallest effect worth finding, metric units
    variance_threshold: StrictFloat = Field(default=0.05, gt=0.0, lt=1.0)


MAX_SEED = 2**31 - 1  # what numpy and most training scripts accept as a seed


class SeedRangeSpec(Strict):
    count: StrictInt = Field(ge=2, le=100_000)
    base_seed: StrictInt = Field(default=1000, ge=0, le=MAX_SEED - 100_000)


class ComparisonSpec(Strict):
    kind: Literal["comparison"]
    description: str = ""
    target: CommandTargetSpec
    arms: dict[str, dict[str, ParamValue]]
    seeds: list[StrictInt] | SeedRangeSpec
    design: Literal["paired", "unpaired"] = "paired"
    metric: str
    summary: SummarySpec | None = None
    direction: Literal["maximize", "minimize"] = "maximize"
    decision: ComparisonDecisionSpec = Field(default_factory=ComparisonDecisionSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)

    @field_validator("arms")
    @classmethod
    def _two_arms_same_parameters(cls, arms: dict) -> dict:
        if sorted(arms) != sorted(ARMS):
            raise ValueError(f"arms are {sorted(arms)}, expected exactly control and candidate; "
                             "name the two arms control and candidate")
        control, candidate = (set(arms[a]) for a in ARMS)
        if control != candidate:
            raise ValueError(f"arms set different parameters ({sorted(control ^ candidate)} in one only); "
                             "give both arms a value for every parameter")
        if arms["control"] == arms["candidate"]:
            raise ValueError("control and candidate are identical; change at least one parameter of the candidate")
        return arms

    @field_validator("seeds")
    @classmethod
    def _unique_non_negative_seeds(cls, seeds):
        if isinstance(seeds, list):
            if len(seeds) < 2:
                raise ValueError("at least two seeds are needed for an interval; list two or more seeds")
            duplicates = sorted({s for s in seeds if seeds.count(s) > 1})
            if duplicates:
                raise ValueError(f"duplicate seeds {duplicates} (their trials would overwrite each other); "
                                 "list each seed once")
            if min(seeds) < 0 or max(seeds) > MAX_SEED:
                raise ValueError(f"seeds must be between 0 and {MAX_SEED}; use smaller non-negative integers")
        return seeds

    @field_validator("metric")
    @classmethod
    def _not_a_bookkeeping_column(cls, metric: str) -> str:
        if metric in TRIAL_COLUMNS:
            raise ValueError(f"{metric!r} names a column of the trials table, not a metric; "
                             "have the command report the metric under another name")
        return metric

    @model_validator(mode="after")
    def _summary_fits(self) -> ComparisonSpec:
        if self.summary is not None and self.summary.type == "last_n" and "window" in self.summary.model_fields_set:
            raise ValueError("summary.window does not apply to last_n; give n instead")
        return self


@dataclass(frozen=True, eq=False)
class ComparisonStudy(StudyFile):
    """A loaded comparison study: everything its assets, decisions and the CLI need."""

    spec: ComparisonSpec
    kind = "comparison"

    @cached_property
    def seeds(self) -> list[int]:
        seeds = self.spec.seeds
        if isinstance(seeds, SeedRangeSpec):
            return list(range(seeds.base_seed, seeds.base_seed + seeds.count))
        return list(seeds)

    @property
    def seed_keys(self) -> list[str]:
        return [str(s) for s in self.seeds]

    @property
    def paired(self) -> bool:
        return self.spec.design == "paired"

    @property
    def maximize(self) -> bool:
        return self.spec.direction == "maximize"

    @cached_property
    def command(self) -> CommandSpec:
        target = self.spec.target
        return CommandSpec(argv=tuple(target.command), timeout_seconds=float(target.timeout_seconds),
                           metrics_from=target.metrics_from, cwd=target.cwd, env=dict(target.env))

    def params(self, arm: str) -> dict:
        return dict(self.spec.arms[arm])

    @property
    def points(self) -> list[SweepPoint]:
        """The two arms are the comparison's sweep points."""
        return [SweepPoint(arm, self.params(arm)) for arm in ARMS]

    def trial_seed(self, arm: str, seed: int) -> int:
        """Paired: both arms run the listed seed. Unpaired: the candidate runs an independent seed
        derived from it, so the groups share nothing but the list's length."""
        if self.paired or arm == "control":
            return int(seed)
        return stable_seed("unpaired", arm, seed) % (2**31 - 1)

    @property
    def decision_metric(self) -> str:
        """The column the decision is made on: the metric, or its curve summary."""
        summary = self.spec.summary
        return self.spec.metric if summary is None else f"{self.spec.metric}_{summary.label}"

    def inbox_fingerprint(self, arm: str) -> str:
        """What a curve file put in the inbox stands for: the arm's parameters (not the command or
        its timeout, which ran elsewhere). Another parameter makes the file's trial stale."""
        return fingerprint({"params": self.params(arm), "from": "inbox"})

    def arm_fingerprint(self, arm: str) -> str:
        """What an arm's trials depend on; a changed fingerprint means its trials must rerun."""
        # `parallel` only says how many trials run at once, not what a trial computes.
        return fingerprint({"target": self.spec.target.model_dump(exclude={"parallel"}), "params": self.params(arm),
                            "design": self.spec.design})


def load_comparison(path: Path, text: str, spec: ComparisonSpec, name: str) -> ComparisonStudy:
    for parameter in spec.arms["control"]:
        check_name(path, f"arms.control.{parameter}", parameter, "parameter")
    try:
        validate_command(CommandSpec(argv=tuple(spec.target.command), timeout_seconds=float(spec.target.timeout_seconds),
                                     metrics_from=spec.target.metrics_from), spec.arms["control"])
    except CommandError as error:
        problem, _, fix = str(error).rpartition("; ")  # the fix is the last clause; the problem may quote "; "
        raise StudyError(path, "target.command", problem or fix, fix if problem else "correct the command") from None
    missing = program_problem(spec.target.command[0], spec.target.cwd, {**os.environ, **spec.target.env})
    if missing:  # before anything runs: every trial would fail the same way
        raise StudyError(path, "target.cwd" if missing.startswith("working folder") else "target.command",
                         *problem_and_fix(missing))
    return ComparisonStudy(name=name, path=path, text=text, spec=spec)
