"""The acceptance suite's study format: benchmarks with a baseline and an optimised side, each
measured on shared seeds, and the criteria (bands) each must meet. No Dagster.

A criterion names a measure (``wall_time``, ``wall_time_p50``, ``wall_time_p95``, ``peak_memory``
or a metric the sides return) and exactly one region, in the words a spec would use:

==========================  =====================================================================
``reduction: [a, b]``       optimised / baseline in [1 - b, 1 - a] (a 45-55 % reduction: [0.45, 0.55])
``increase: [a, b]``        optimised / baseline in [1 + a, 1 + b]
``speedup_at_least: x``     optimised / baseline <= 1 / x (the measure is a time)
``max_loss: x``             optimised / baseline >= 1 - x (higher is better: accuracy loss < 2 %)
``max_increase: x``         optimised / baseline <= 1 + x (lower is better: at most 5 % slower)
``equivalent_within: x``    optimised / baseline in [1 - x, 1 + x] (two one-sided tests)
``below: x`` / ``above: x`` the optimised side's mean below / above x (either or both)
``difference: [a, b]``      mean(optimised - baseline) in [a, b] (``.inf`` for an open end)
==========================  =====================================================================
"""
from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Discriminator, Field, StrictFloat, StrictInt, StrictStr, Tag, field_validator, model_validator

from benchmark_assets.kinds.base import trial_columns
from benchmark_assets.stats.acceptance import Criterion
from benchmark_assets.study_file import (
    Number,
    ScheduleSpec,
    Strict,
    StudyError,
    StudyFile,
    check_name,
    fingerprint,
)
from benchmark_assets.targets.calls import CALLABLE_REFERENCE
from benchmark_assets.targets.command import CommandError, CommandSpec, validate_command
from benchmark_assets.targets.locate import callable_problem, problem_and_fix, program_problem
from benchmark_assets.targets.pytest_benchmark import BenchmarkFileError, digest, find_runs, resolve_runs

SIDES = ("baseline", "optimised")
WALL_TIME, PEAK_MEMORY = "wall_time", "peak_memory"
QUANTILES = {"wall_time_p50": 50.0, "wall_time_p95": 95.0}  # over the calls of one measurement
BUILTIN_MEASURES = (WALL_TIME, *QUANTILES, PEAK_MEMORY)
UNITS = {WALL_TIME: "s", "wall_time_p50": "s", "wall_time_p95": "s", PEAK_MEMORY: "bytes"}


SHOWN_UNITS = {"s": (1e3, "ms"), "bytes": (2.0**-20, "MiB")}  # a measure's unit -> (factor, unit shown)


def shown_unit(measure: str) -> tuple[float, str]:
    """How the report shows ``measure``: the factor to multiply by and the unit ('' for none)."""
    return SHOWN_UNITS.get(UNITS.get(measure), (1.0, ""))


def in_units(value: float, measure: str) -> str:
    """A value of ``measure`` as the report's tables show it: seconds in ms, bytes in MiB."""
    factor, unit = shown_unit(measure)
    return f"{value * factor:.4g} {unit}".rstrip()


# One row per (benchmark, repeat, side) measured here; an ingested pytest-benchmark side has a row
# per round (``round``) or one row of its summary figures. A returned metric may not take one of
# these names.
MEASURED, ROUNDS, SUMMARY = "measured", "pytest-benchmark rounds", "pytest-benchmark summary"
TRIAL_COLUMNS = trial_columns("benchmark", "repeat", "side", "round", "form", "position", "calls",
                              "git_commit", *BUILTIN_MEASURES, "summary_sd", "summary_rounds")
RATIO_FORMS = ("reduction", "increase", "speedup_at_least", "max_loss", "max_increase", "equivalent_within")
FORMS = (*RATIO_FORMS, "difference", "below", "above")


class CallSide(Strict):
    """A Python callable, ``module:function``, called with the repeat's seed; it returns None, a
    number (the metric ``value``) or a mapping of metric names to numbers."""

    call: StrictStr

    @field_validator("call")
    @classmethod
    def _module_colon_function(cls, call: str) -> str:
        if not CALLABLE_REFERENCE.fullmatch(call):
            raise ValueError(f"{call!r} is not module:function; write it like mypackage.bench:run_search")
        return call


class CommandSide(Strict):
    """A command (an argument list, never a shell string) run once per measurement with ``{seed}``,
    ``{output}``, ``{python}`` and ``{workdir}`` placeholders; it reports metrics as the
    comparison kind's commands do (a JSON object on its last stdout line or in ``{output}``)."""

    command: list[StrictStr] = Field(min_length=1)
    timeout_seconds: Number = Field(default=600, gt=0)
    cwd: str | None = None
    env: dict[str, StrictStr] = Field(default_factory=dict)


class PytestBenchmarkSide(Strict):
    """Results pytest-benchmark already has, each file one run of the side: a JSON file (``pytest
    --benchmark-json``), a pattern of files (``runs/base_*.json``), or a folder of autosaved ones
    (``.benchmarks``, or its machine folder) and the ``commit`` to take (an id prefix: every run
    of that commit; ``latest`` or ``previous``: one file). Relative paths start at the study
    file's folder. The benchmark is matched by ``name`` (default: the suite's benchmark name)."""

    pytest_benchmark: StrictStr
    commit: StrictStr | None = None
    name: StrictStr | None = None


def _side_kind(value) -> str:
    """Which kind of side a mapping describes, by its key: errors then come from that kind only."""
    if isinstance(value, dict):
        return ("CommandSide" if "command" in value else "PytestBenchmarkSide" if "pytest_benchmark" in value
                else "CallSide")
    # A model already built keeps its kind; anything else ("mod:fn", a list) is reported as not a mapping.
    return type(value).__name__ if isinstance(value, (CommandSide, PytestBenchmarkSide)) else "CallSide"


Side = Annotated[Annotated[CallSide, Tag("CallSide")] | Annotated[CommandSide, Tag("CommandSide")]
                 | Annotated[PytestBenchmarkSide, Tag("PytestBenchmarkSide")], Discriminator(_side_kind)]


class CriterionSpec(Strict):
    name: StrictStr | None = None
    measure: StrictStr
    reduction: tuple[Number, Number] | None = None
    increase: tuple[Number, Number] | None = None
    speedup_at_least: Number | None = Field(default=None, gt=0)
    max_loss: Number | None = Field(default=None, ge=0)
    max_increase: Number | None = Field(default=None, ge=0)
    equivalent_within: Number | None = Field(default=None, gt=0, lt=1)
    difference: tuple[float, float] | None = None
    below: Number | None = None
    above: Number | None = None

    model_config = Strict.model_config | {"allow_inf_nan": True}  # difference: [0, .inf]

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        if name is not None and (not name.strip() or any(c in name for c in "|\n\r")):
            raise ValueError(f"criterion name {name!r} is empty or holds '|' or a line break; "
                             "name it in one line without '|'")
        return name

    @field_validator("reduction", "increase", "speedup_at_least", "max_loss", "max_increase", "equivalent_within",
                     mode="before")
    @classmethod
    def _finite_ends(cls, value):
        """Only ``difference`` may have an open end; anywhere else .nan or .inf is a mistake."""
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ValueError(f"{value!r} holds .nan or .inf; give finite numbers (only difference takes .inf for an "
                             "open end)")
        return value

    @field_validator("reduction", "increase")
    @classmethod
    def _fraction_band(cls, band):
        if band is not None:
            low, high = band
            if low > high:
                raise ValueError(f"band low {low} is above high {high}; write the band as [low, high], "
                                 f"e.g. [{high}, {low}]")
            if low < 0:
                raise ValueError(f"band [{low}, {high}] starts below 0; bands are fractions of the baseline "
                                 "(0.45 for 45 %), give both ends as fractions >= 0")
            if low == high:
                raise ValueError(f"band [{low:g}, {high:g}] has no width: no interval of the effect fits inside it, so "
                                 f"it could never be met; give a range, e.g. [{max(0.0, low - 0.05):g}, {high + 0.05:g}]")
        return band

    @field_validator("increase", "max_increase")
    @classmethod
    def _increase_not_in_percent(cls, value, info):
        """An increase written in percent ([10, 20] for 10-20 %) reads as 1000-2000 %: whole numbers of 2
        or more are taken for percent; a study that means a many-fold increase writes them as
        decimals ([10.0, 20.0])."""
        ends = value if isinstance(value, (list, tuple)) else [value]
        if value is not None and any(type(v) is int and v >= 2 for v in ends):
            shown = f"[{ends[0]}, {ends[1]}]" if len(ends) == 2 else f"{ends[0]}"
            percent = "-".join(f"{100 * v:g}" for v in ends)
            fraction = ", ".join(f"{v / 100:g}" for v in ends)
            decimals = ", ".join(f"{float(v):.1f}" for v in ends)
            raise ValueError(f"{info.field_name} {shown} is {percent} % (increases are fractions of the baseline, "
                             f"0.10 for 10 %); write {'[' + fraction + ']' if len(ends) == 2 else fraction} for "
                             f"{'-'.join(f'{v:g}' for v in ends)} %, or "
                             f"{'[' + decimals + ']' if len(ends) == 2 else decimals} if you mean {percent} %")
        return value

    @field_validator("max_loss")
    @classmethod
    def _loss_below_one(cls, loss):
        if loss is not None and loss >= 1:
            raise ValueError(f"max_loss {loss:g} is a loss of {100 * loss:g} % or more (losses are fractions of the "
                             f"baseline, 0.02 for 2 %); give a fraction below 1, e.g. {loss / 100:g} for {loss:g} %")
        return loss

    @field_validator("reduction")
    @classmethod
    def _reduction_below_one(cls, band):
        if band is not None and band[1] >= 1:
            raise ValueError(f"reduction band [{band[0]:g}, {band[1]:g}] reaches 100 % or more (bands are fractions of "
                             "the baseline, 0.45 for 45 %); write fractions below 1, e.g. [0.45, 0.55] for 45-55 %")
        return band

    @field_validator("difference")
    @classmethod
    def _ordered(cls, band):
        if band is not None:
            low, high = band
            if any(math.isnan(v) for v in band):
                raise ValueError("a band end is NaN; give numbers, or .inf / -.inf for an open end")
            if low > high:
                raise ValueError(f"band low {low} is above high {high}; write the band as [low, high]")
            if math.isinf(low) and math.isinf(high):
                raise ValueError("both ends are open, so nothing is asked; give a finite low or high end")
        return band

    @field_validator("below", "above")
    @classmethod
    def _finite(cls, value):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"bound {value} is not finite; give a number")
        return value

    @model_validator(mode="after")
    def _one_region(self) -> CriterionSpec:
        given = [f for f in FORMS if getattr(self, f) is not None]
        bounds = {"below", "above"}
        if not given:
            raise ValueError(f"criterion on {self.measure!r} gives no region; add one of {', '.join(FORMS)}")
        if len(given) > 1 and not set(given) <= bounds:
            raise ValueError(f"criterion on {self.measure!r} gives {' and '.join(given)}; give exactly one region "
                             "(below and above may be combined)")
        if self.below is not None and self.above is not None and self.above > self.below:
            raise ValueError(f"above {self.above} is higher than below {self.below}, so no value can meet it; "
                             "swap them")
        return self

    @property
    def form(self) -> str:
        return next(f for f in FORMS if getattr(self, f) is not None)

    @property
    def effect(self) -> str:
        """What the statistics estimate: the paired ratio, the paired difference or the optimised mean."""
        return "ratio" if self.form in RATIO_FORMS else "difference" if self.form == "difference" else "mean"

    def region(self) -> tuple[float, float]:
        """The region of the effect (``effect``) the criterion asks for."""
        form = self.form
        if form == "reduction":
            return 1.0 - self.reduction[1], 1.0 - self.reduction[0]
        if form == "increase":
            return 1.0 + self.increase[0], 1.0 + self.increase[1]
        if form == "speedup_at_least":
            return 0.0, 1.0 / self.speedup_at_least
        if form == "max_loss":
            return 1.0 - self.max_loss, math.inf
        if form == "max_increase":
            return 0.0, 1.0 + self.max_increase
        if form == "equivalent_within":
            return 1.0 - self.equivalent_within, 1.0 + self.equivalent_within
        if form == "difference":
            return float(self.difference[0]), float(self.difference[1])
        return (-math.inf if self.above is None else float(self.above),
                math.inf if self.below is None else float(self.below))

    def asked(self) -> str:
        """The criterion in the words of a spec: 'reduction 45-55 %', 'speed-up >= 2x'."""
        form = self.form
        if form in ("reduction", "increase"):
            low, high = getattr(self, form)
            return f"{form} {100 * low:g}-{100 * high:g} %"
        if form == "speedup_at_least":
            return f"speed-up >= {self.speedup_at_least:g}x"
        if form == "max_loss":
            return f"loss < {100 * self.max_loss:g} %"
        if form == "max_increase":
            return f"increase < {100 * self.max_increase:g} %"
        if form == "equivalent_within":
            return f"within +-{100 * self.equivalent_within:g} %"
        if form == "difference":
            low, high = (in_units(v, self.measure) for v in self.difference)
            return f"difference in [{low}, {high}]"
        parts = ([f"{self.measure} mean >= {in_units(self.above, self.measure)}"] if self.above is not None else []) + (
            [f"{self.measure} mean <= {in_units(self.below, self.measure)}"] if self.below is not None else [])
        return " and ".join(parts)

    def shown(self, ratio_or_value: float) -> str:
        """An effect on the criterion's own scale: a reduction as a reduction, a speed-up as one."""
        v = ratio_or_value
        if not math.isfinite(v):
            return "n/a"
        form = self.form
        if form == "reduction" or (form == "max_loss"):
            return f"{100 * (1 - v):.2f} %"
        if form in ("increase", "max_increase"):
            return f"{100 * (v - 1):+.2f} %"
        if form == "speedup_at_least":
            return f"{1 / v:.3g}x" if v > 0 else "n/a"
        if form == "equivalent_within":
            return f"{100 * (v - 1):+.2f} %"
        return in_units(v, self.measure)  # a mean or a difference, in the measure's own unit

    @property
    def sides(self) -> tuple[str, ...]:
        """The sides the criterion's effect needs: a bound on the mean needs the optimised side only."""
        return ("optimised",) if self.effect == "mean" else SIDES

    @property
    def decreasing(self) -> bool:
        """Whether ``shown`` falls as the ratio rises (a reduction, a loss, a speed-up)."""
        return self.form in ("reduction", "max_loss", "speedup_at_least")

    @property
    def scale(self) -> str:
        """What ``shown`` expresses: the name of the effect in the report."""
        return {"reduction": "reduction", "max_loss": "loss", "increase": "increase", "max_increase": "increase",
                "speedup_at_least": "speed-up", "equivalent_within": "change", "difference": "difference"}.get(
            self.form, "optimised mean")


class BenchmarkSpec(Strict):
    description: StrictStr = ""
    baseline: Side | None = None
    optimised: Side | None = None
    number: StrictInt = Field(default=1, ge=1, le=1_000_000)  # calls per measurement
    warmup: StrictInt = Field(default=1, ge=0, le=1000)  # unmeasured calls before each measurement
    metrics: list[StrictStr] = Field(default_factory=list)  # what the sides return, for the criteria
    criteria: list[CriterionSpec] = Field(min_length=1)


class AcceptanceSpec(Strict):
    kind: Literal["acceptance"]
    description: StrictStr = ""
    # paired repeats of each benchmark measured here (call or command sides); a suite read only
    # from pytest-benchmark files needs none: its replicates are the files' runs
    repeats: StrictInt | None = Field(default=None, le=10_000)
    base_seed: StrictInt = Field(default=0, ge=0, le=2**31 - 10_001)
    confidence_level: StrictFloat = Field(default=0.95, gt=0.5, lt=1.0)
    # holm | bonferroni: the chance of any false met / not met in the suite stays below 1 -
    # confidence_level; none: each criterion alone (a false discovery rate is not offered: it
    # would not make "N of M met" mean what it says)
    correction: Literal["holm", "bonferroni", "none"] = "holm"
    # t: t-intervals (a ratio on the logs of the paired ratios); bootstrap: a paired percentile
    # bootstrap of the effect on its own scale (a ratio of means), claims agreeing with the t-test
    interval: Literal["t", "bootstrap"] = "t"
    bootstrap_resamples: StrictInt = Field(default=10_000, ge=1000, le=1_000_000)
    rng_seed: StrictInt = 0
    benchmarks: dict[str, BenchmarkSpec] = Field(min_length=1)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)

    @field_validator("repeats")
    @classmethod
    def _at_least_two(cls, repeats: int | None) -> int | None:
        if repeats is not None and repeats < 2:
            raise ValueError(f"repeats is {repeats}, but an interval needs at least 2 paired repeats; "
                             "set repeats: 2 or more (10 or more to settle bands a few % wide)")
        return repeats


@dataclass(frozen=True)
class SuiteCriterion:
    """One criterion of the suite, ready to judge."""

    benchmark: str
    name: str
    spec: CriterionSpec

    @property
    def subject(self) -> str:
        return f"{self.benchmark}: {self.name}"

    def criterion(self) -> Criterion:
        low, high = self.spec.region()
        return Criterion(self.subject, self.spec.effect, low, high)


@dataclass(frozen=True, eq=False)
class AcceptanceStudy(StudyFile):
    spec: AcceptanceSpec
    # (benchmark, side) -> its runs, ((file, what it holds of that benchmark), ...), for
    # pytest-benchmark sides, read when the study is loaded
    ingested: dict = field(default_factory=dict)
    kind = "acceptance"

    def is_ingested(self, benchmark: str) -> bool:
        return (benchmark, SIDES[0]) in self.ingested

    @property
    def benchmarks(self) -> list[str]:
        return list(self.spec.benchmarks)

    def repeats_of(self, benchmark: str) -> int:
        """A benchmark's replicates in the repeat partitions 0, 1, ...: its paired repeats, or for
        one read from pytest-benchmark its runs (of the side with more; the spec'd files' run k is
        in partition k, the inbox's runs beyond INBOX_BASE)."""
        if self.is_ingested(benchmark):
            return max(len(self.ingested[(benchmark, side)]) for side in SIDES)
        return int(self.spec.repeats or 0)

    @property
    def repeat_keys(self) -> list[str]:
        return [str(r) for r in range(max(self.repeats_of(b) for b in self.benchmarks))]

    def seed(self, repeat: int) -> int:
        """Both sides of a repeat run the same seed (a paired design)."""
        return self.spec.base_seed + int(repeat)

    @staticmethod
    def order(repeat: int) -> tuple[str, str]:
        """Which side runs first in a repeat: A B, then B A, ... (A B B A A B ...), so drift on a
        busy machine falls on both sides alike."""
        return SIDES if int(repeat) % 2 == 0 else SIDES[::-1]

    @cached_property
    def criteria(self) -> list[SuiteCriterion]:
        return [SuiteCriterion(name, c.name or f"{c.measure} {c.asked()}", c)
                for name, benchmark in self.spec.benchmarks.items() for c in benchmark.criteria]

    def measures_memory(self, benchmark: str) -> bool:
        return any(c.measure == PEAK_MEMORY for c in self.spec.benchmarks[benchmark].criteria)

    @cached_property
    def _side_fingerprints(self) -> dict[tuple[str, str], str]:
        """Every side's fingerprint, taken once per loaded study: trial rows and the stale-row
        filter ask for them row by row, and a pytest-benchmark side's hashes its file."""
        out = {}
        for benchmark, spec in self.spec.benchmarks.items():
            for side in SIDES:
                if (benchmark, side) in self.ingested:
                    payload = {"side": getattr(spec, side).model_dump(),
                               "files": [digest(path) for path, _ in self.ingested[(benchmark, side)]]}
                else:
                    payload = {"side": getattr(spec, side).model_dump(), "number": spec.number,
                               "warmup": spec.warmup, "metrics": sorted(spec.metrics),
                               "memory": self.measures_memory(benchmark), "base_seed": self.spec.base_seed}
                out[(benchmark, side)] = fingerprint(payload)
        return out

    def inbox_fingerprint(self, benchmark: str, side: str) -> str:
        """What a run of a side put in the inbox stands for: the side as the suite names it (a
        rewritten file or another number of repeats does not make an earlier run stale; another
        benchmark name or file does)."""
        return fingerprint({"side": getattr(self.spec.benchmarks[benchmark], side).model_dump(), "from": "inbox"})

    def side_fingerprint(self, benchmark: str, side: str) -> str:
        """What a side's measurements depend on; criteria and confidence change only the verdicts."""
        return self._side_fingerprints[(benchmark, side)]

    def benchmark_fingerprint(self, benchmark: str) -> str:
        return fingerprint([self.side_fingerprint(benchmark, side) for side in SIDES])

    def command(self, side: CommandSide) -> CommandSpec:
        return CommandSpec(argv=tuple(side.command), timeout_seconds=float(side.timeout_seconds), cwd=side.cwd,
                           env=dict(side.env))


def load_acceptance(path: Path, text: str, spec: AcceptanceSpec, name: str) -> AcceptanceStudy:
    """Cross-field checks, each one line naming the field and the fix; pytest-benchmark files are
    read here, so a missing file or benchmark is refused before anything runs."""
    ingested: dict = {}
    for benchmark, bench in spec.benchmarks.items():
        where = f"benchmarks.{benchmark}"
        check_name(path, where, benchmark, "benchmark")
        missing = [side for side in SIDES if getattr(bench, side) is None]
        if missing:
            raise StudyError(path, f"{where}.{missing[0]}", f"benchmark {benchmark!r} has only one side "
                             f"({'no side' if len(missing) == 2 else 'no ' + missing[0]}), so there is nothing to "
                             "compare", f"add {missing[0]}: {{call: module:function}} or {{command: [...]}}")
        for i, metric in enumerate(bench.metrics):
            check_name(path, f"{where}.metrics[{i}]", metric, "metric")
            if metric in TRIAL_COLUMNS:
                raise StudyError(path, f"{where}.metrics[{i}]", f"{metric!r} names a column of the trials table",
                                 "have the sides return the metric under another name")
        known = [*BUILTIN_MEASURES, *bench.metrics]
        names: set[str] = set()
        for i, criterion in enumerate(bench.criteria):
            field_path = f"{where}.criteria[{i}]"
            if criterion.measure not in known:
                close = difflib.get_close_matches(criterion.measure, known, n=1, cutoff=0.6)
                raise StudyError(path, f"{field_path}.measure", f"unknown measure {criterion.measure!r}",
                                 (f"did you mean {close[0]!r}? " if close else "")
                                 + f"use one of {', '.join(BUILTIN_MEASURES)}, or list a metric the sides return "
                                 f"under {where}.metrics")
            if criterion.measure in QUANTILES and bench.number < 2:
                raise StudyError(path, f"{field_path}.measure", f"{criterion.measure} is a quantile over the calls "
                                 "of one measurement, and each measurement makes 1 call",
                                 f"set {where}.number to 20 or more (calls per measurement)")
            try:
                SuiteCriterion(benchmark, "", criterion).criterion()
            except ValueError as error:
                raise StudyError(path, field_path, str(error).removeprefix(f"{benchmark}: : "),
                                 "give a region that a value can be in") from None
            label = criterion.name or f"{criterion.measure} {criterion.asked()}"
            if label in names:
                raise StudyError(path, f"{field_path}.name", f"two criteria of {benchmark!r} are named {label!r}",
                                 "give each criterion its own name")
            names.add(label)
        sorts = [type(getattr(bench, side)) for side in SIDES]
        if sorts[0] is not sorts[1] and PytestBenchmarkSide not in sorts:
            raise StudyError(path, f"{where}.optimised", "one side is a Python call and the other a command, so the "
                             "command's times would include starting a process and the call's would not",
                             "give both sides as call, or both as command (a command can run Python: "
                             "[\"{python}\", \"-m\", ...])")
        ingest = [isinstance(getattr(bench, side), PytestBenchmarkSide) for side in SIDES]
        if any(ingest) and not all(ingest):
            side = SIDES[ingest.index(False)]
            raise StudyError(path, f"{where}.{side}", "one side is read from pytest-benchmark and the other is measured "
                             "here, on another machine and at another time", "give both sides as pytest_benchmark "
                             "files (or both as call / command)")
        if all(ingest):
            for i, criterion in enumerate(bench.criteria):
                if criterion.measure != WALL_TIME:
                    raise StudyError(path, f"{where}.criteria[{i}].measure", f"pytest-benchmark records times per "
                                     f"round only, not {criterion.measure}", "use measure: wall_time")
            for side in SIDES:
                value = getattr(bench, side)
                file = Path(value.pytest_benchmark).expanduser()
                file = file if file.is_absolute() else path.parent / file
                try:
                    ingested[(benchmark, side)] = find_runs(resolve_runs(file, value.commit), value.name or benchmark)
                except BenchmarkFileError as error:
                    problem, _, fix = str(error).rpartition("; ")
                    raise StudyError(path, f"{where}.{side}.pytest_benchmark", problem or fix,
                                     fix if problem else "give a pytest-benchmark JSON file") from None
        for side in SIDES:
            value = getattr(bench, side)
            if isinstance(value, CommandSide):
                try:
                    validate_command(CommandSpec(argv=tuple(value.command)), [])
                except CommandError as error:
                    problem, _, fix = str(error).rpartition("; ")
                    raise StudyError(path, f"{where}.{side}.command", problem or fix,
                                     fix if problem else "correct the command") from None
                # checked before anything runs: a gate must not pass because a side could not start
                missing = program_problem(value.command[0], value.cwd, {**os.environ, **value.env})
                if missing:
                    field_name = "cwd" if missing.startswith("working folder") else "command"
                    raise StudyError(path, f"{where}.{side}.{field_name}", *problem_and_fix(missing))
            elif isinstance(value, CallSide):
                missing = callable_problem(value.call)
                if missing:
                    raise StudyError(path, f"{where}.{side}.call", *problem_and_fix(missing))
    measured = [b for b in spec.benchmarks if (b, SIDES[0]) not in ingested]
    if measured and spec.repeats is None:
        raise StudyError(path, "repeats", f"benchmark {measured[0]!r} is measured here (call or command sides), and "
                         "nothing says how many paired repeats to measure", "set repeats: 10 (at least 2)")
    return AcceptanceStudy(name=name, path=path, text=text, spec=spec, ingested=ingested)
