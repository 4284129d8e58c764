"""The load-sweep study format: drive an OpenAI-compatible server at each load of a sweep, repeatedly."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, StrictBool, StrictFloat, StrictInt, field_validator, model_validator

from benchmark_assets.artifacts import safe_label
from benchmark_assets.study_file import Number, ScheduleSpec, Strict, StudyError, StudyFile, fingerprint
from benchmark_assets.sweep import SweepPoint, format_value, point_key, sweep_grid
from benchmark_assets.targets.http_load import (
    LATENCY_METRICS,
    LoadSpec,
    LoadSpecError,
    latency_metrics,
    metric_names,
    slo_metric_names,
    validate_load_spec,
)

# The finest request rate a capacity search sets (its loads are rounded to this many requests/s).
MIN_RATE = 0.001
# Load parameters a study may sweep (a list) or fix (a single value), with their kind.
SWEEPABLE = {"concurrency": int, "request_rate": float, "input_tokens": int, "output_tokens": int}
# Sane upper bounds: past these a typo (an extra zero) runs for minutes or leaves a server behind.
# A study that means it sets `allow_large: true`.
LIMITS = {"concurrency": 4096, "request_rate": 100_000, "input_tokens": 200_000, "output_tokens": 100_000,
          "requests": 1_000_000, "duration_seconds": 86_400, "warmup_requests": 100_000}


class HttpLoadSpec(Strict):
    url: str
    endpoint: Literal["chat", "completions"] = "chat"
    streaming: StrictBool = True
    model: str = "mock"
    # Sweepable: a value, or a list to sweep. Whole-number checks happen in _check_sweep, so that
    # 1.5 gets a message saying why it is refused rather than a generic type error.
    input_tokens: Number | list[Number] = 128
    output_tokens: Number | list[Number] = 64
    ignore_eos: StrictBool = True
    concurrency: Number | list[Number] | None = None
    request_rate: Number | list[Number] | None = None
    arrival: Literal["constant", "poisson", "gamma"] = "poisson"
    burstiness: Number | None = None  # gamma arrivals only: their shape (1 is Poisson, 0.25 bursty)
    requests: StrictInt | None = Field(default=None, ge=1)
    duration_seconds: Number | None = Field(default=None, gt=0)
    warmup_requests: StrictInt = Field(default=0, ge=0)
    request_timeout_seconds: Number = Field(default=60, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url {url!r} is not an http(s) URL; write it like http://127.0.0.1:8000")
        parts = urlsplit(url)
        if parts.username or parts.password:
            # A secret here would be copied into reports, exports, the pool name and run tags.
            raise ValueError(f"url for {parts.hostname} carries credentials (user:password@), which would be written "
                             "into reports, exports and run tags; remove them from the URL")
        if parts.hostname is None:
            raise ValueError(f"url {url!r} names no host; write it like http://127.0.0.1:8000")
        url = url.rstrip("/")
        # OpenAI clients take a base URL ending in /v1; the generator adds /v1/... itself.
        return url.removesuffix("/v1")

    @model_validator(mode="after")
    def _one_amount_and_one_mode(self) -> HttpLoadSpec:
        if (self.requests is None) == (self.duration_seconds is None):
            raise ValueError("give exactly one of requests and duration_seconds; set requests: 200 (or a duration)")
        if self.burstiness is not None and self.arrival != "gamma":
            raise ValueError(f"burstiness shapes gamma arrivals, and arrival is {self.arrival}; set arrival: gamma, "
                             "or remove burstiness")
        if self.burstiness is not None and not self.burstiness > 0:
            raise ValueError(f"burstiness {self.burstiness} is not above 0; give gamma's shape, e.g. 0.25 for bursts "
                             "or 1 for Poisson")
        return self


class ServerSpec(Strict):
    """Start the shipped mock server for the study's trials (demos and tests); None: use url as is."""

    ttft_ms: Number = Field(default=20, ge=0)
    itl_ms: Number = Field(default=5, ge=0)
    capacity: StrictInt = Field(default=8, ge=1)
    error_rate: Number = Field(default=0, ge=0, le=1)
    batch_cost: Number = Field(default=0, ge=0)  # how much slower each token gets as slots fill


class TargetSpec(Strict):
    http_load: HttpLoadSpec


class ObjectiveSpec(Strict):
    metric: str
    stat: Literal["avg", "min", "max", "std", "p50", "p90", "p95", "p99"] = "avg"
    direction: Literal["maximize", "minimize"]

    @property
    def column(self) -> str:
        return f"{self.metric}_{self.stat}"


class SloSpec(Strict):
    """A service-level objective: a latency statistic in ms (``time_to_first_token``,
    ``inter_token_latency``, ``request_latency``; p99 unless ``stat`` says otherwise) or the
    ``error_rate`` (a share), below ``below``. A latency SLO's bound is also each request's bound
    for goodput."""

    metric: str
    stat: Literal["avg", "p50", "p90", "p95", "p99", "max"] | None = None
    below: Number

    @property
    def column(self) -> str:
        return "error_rate" if self.metric == "error_rate" else f"{self.metric}_{self.stat or 'p99'}"

    @property
    def label(self) -> str:
        """'time_to_first_token p99 <= 200 ms', 'error_rate <= 1 %'."""
        if self.metric == "error_rate":
            return f"error_rate <= {100 * float(self.below):.4g} %"
        return f"{self.metric} {self.stat or 'p99'} <= {format_value(self.below)} ms"


class LoadDecisionSpec(Strict):
    confidence_level: StrictFloat = Field(default=0.95, gt=0.5, lt=1.0)
    # A point whose requests fail more often than this is left out of the best configurations
    # and the frontier: its latency and throughput count only the requests that succeeded.
    max_error_rate: Number = Field(default=0.01, ge=0, le=1)
    bootstrap_resamples: StrictInt = Field(default=2000, ge=100, le=1_000_000)
    rng_seed: StrictInt = 0


class StoppingSpec(Strict):
    """Trials added to each point one at a time, from ``min_trials`` up to ``max_trials``, until
    the interval of every decision metric is within ``precision`` of its mean (half-width over
    mean). The intervals hold when looked at after every trial: the study's error budget is spent
    across the looks (``stats.sequential.look_alpha``)."""

    min_trials: StrictInt = Field(default=3, ge=2, le=1000)
    max_trials: StrictInt = Field(default=10, ge=2, le=1000)
    precision: Number = 0.1
    spending: Literal["pocock", "obrien_fleming"] = "pocock"


class CapacitySpec(Strict):
    """Search for the highest load at which every SLO still holds: double from ``low`` until a
    load fails (at most ``high``), then bisect until the boundary is known to within
    ``precision`` (requests in flight, or requests/s)."""

    search: Literal["concurrency", "request_rate"]
    low: Number
    high: Number
    precision: Number | None = None  # default: 1 request in flight; required for request_rate


class OverloadSpec(Strict):
    """When a trial shows its point clearly overloaded, the higher loads of the sweep (the same
    other settings, more concurrency or a higher rate) are not run: their trials would only queue
    and time out. Clearly overloaded: more than ``max_error_rate`` of its requests failed, its
    request latency p99 is beyond ``max_latency_ms``, or (at a request rate) it achieved less
    than ``min_rate_ratio`` of the rate its schedule asked (a concurrency cap held requests back)."""

    max_error_rate: Number = Field(default=0.5, gt=0, le=1)
    max_latency_ms: Number | None = Field(default=None, gt=0)
    min_rate_ratio: Number | None = Field(default=0.8, gt=0, le=1)


class LoadSweepSpec(Strict):
    kind: Literal["load_sweep"]
    description: str = ""
    target: TargetSpec
    mock_server: ServerSpec | None = None
    trials: StrictInt = Field(default=3, ge=1, le=1000)
    order: Literal["repeated", "independent"] = "repeated"
    cooldown_seconds: Number = Field(default=0, ge=0)
    # A run that follows an interrupted one keeps the trials it finished this recently (0: never).
    resume_within_minutes: Number = Field(default=60, ge=0, le=10_080)
    same_seed: StrictBool = False
    seed: StrictInt = Field(default=0, ge=0, le=2**30)
    objectives: list[ObjectiveSpec] | None = None
    slos: list[SloSpec] = Field(default_factory=list)
    stopping: StoppingSpec | None = None
    capacity: CapacitySpec | None = None
    overload: OverloadSpec | None = None
    decision: LoadDecisionSpec = Field(default_factory=LoadDecisionSpec)
    allow_large: StrictBool = False  # lift the sane upper bounds (LIMITS) on load sizes
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)


def _check_sweep(path: Path, load: HttpLoadSpec, spec: LoadSweepSpec) -> dict[str, list]:
    """The swept parameters (name -> values) after the checks each list needs."""
    if spec.capacity is None and load.concurrency is None and load.request_rate is None:
        raise StudyError(path, "target.http_load", "no load given", "set concurrency (requests in flight) or "
                         "request_rate (requests/s), or search for one under capacity")
    swept: dict[str, list] = {}
    for name, kind in SWEEPABLE.items():
        value = getattr(load, name)
        if value is None:
            continue
        where = f"target.http_load.{name}"
        values = value if isinstance(value, list) else [value]
        if not values:
            raise StudyError(path, where, "empty list", "give one value, or a list of two or more to sweep")
        for i, v in enumerate(values):
            at = f"{where}[{i}]" if isinstance(value, list) else where
            if kind is int and not float(v).is_integer():
                raise StudyError(path, at, f"{name} takes whole numbers, got {v}",
                                 "use an integer (1.5 would silently become 1)")
            if v < 1 if kind is int else v <= 0:
                raise StudyError(path, at, f"{name} must be {'at least 1' if kind is int else 'above 0'}, got "
                                 f"{format_value(v)}", "use a positive value")
            if not spec.allow_large and v > LIMITS[name]:
                raise StudyError(path, at, f"{name} {format_value(v)} is above the sane limit {LIMITS[name]:,}",
                                 "use a smaller value, or set allow_large: true if you mean it")
        duplicates = sorted({format_value(v) for v in values if sum(float(w) == float(v) for w in values) > 1})
        if duplicates:
            raise StudyError(path, where, f"duplicate values {duplicates} (their trials would overwrite each other)",
                             "list each value once")
        if isinstance(value, list):
            swept[name] = [int(v) if kind is int else v for v in values]
    for name in ("requests", "duration_seconds", "warmup_requests"):
        value = getattr(load, name)
        if value is not None and not spec.allow_large and value > LIMITS[name]:
            raise StudyError(path, f"target.http_load.{name}", f"{name} {format_value(value)} is above the sane limit "
                             f"{LIMITS[name]:,}", "use a smaller value, or set allow_large: true if you mean it")
    if not swept:
        fields = [f for f in ("order", "cooldown_seconds", "same_seed") if f in spec.model_fields_set]
        if fields:
            raise StudyError(path, fields[0], "only applies to a sweep, and nothing is swept",
                             "give a list for concurrency, request_rate, input_tokens or output_tokens, or remove it")
    return swept


@dataclass(frozen=True, eq=False)
class LoadSweepStudy(StudyFile):
    spec: LoadSweepSpec
    swept: dict
    kind = "load_sweep"

    @property
    def load(self) -> HttpLoadSpec:
        return self.spec.target.http_load

    @cached_property
    def points(self) -> list[SweepPoint]:
        """Every combination of the swept lists (a grid), in the order the lists give; a capacity
        search starts from its lowest load alone (its follow-ups add the loads it probes)."""
        if self.spec.capacity is not None:
            return [self.probe(self.spec.capacity.low)]
        return sweep_grid(self.swept)

    @property
    def point_keys(self) -> list[str]:
        return [p.key for p in self.points]

    @property
    def trial_range(self) -> tuple[int, int]:
        """The fewest and the most trials a point gets (the same with a fixed ``trials``)."""
        stopping = self.spec.stopping
        return (stopping.min_trials, stopping.max_trials) if stopping else (self.spec.trials, self.spec.trials)

    @property
    def trial_keys(self) -> list[str]:
        """The trials every run measures at each point; ``stopping`` adds more one at a time."""
        return [str(t) for t in range(self.trial_range[0])]

    def probe(self, value) -> SweepPoint:
        """The sweep point of one load the capacity search probes."""
        name = self.spec.capacity.search
        value = int(value) if name == "concurrency" else float(value)
        return SweepPoint(key=point_key(name, value), params={name: value})

    def point(self, key: str) -> SweepPoint:
        for point in self.points:
            if point.key == key:
                return point
        capacity = self.spec.capacity
        if capacity is not None:
            name, _, text = key.partition("=")
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if name == capacity.search and capacity.low <= value <= capacity.high and self.probe(value).key == key:
                return self.probe(value)
        raise KeyError(f"sweep point {key!r} is no longer in {self.path.name}; it was removed from the study")

    def is_point(self, key: str) -> bool:
        """A point of the study's grid, or a load its capacity search may probe."""
        try:
            self.point(key)
        except KeyError:
            return False
        return True

    def ordered_points(self, keys) -> list[str]:
        """``keys`` that are the study's points: the grid's in its order, then probes by load."""
        keys = [k for k in dict.fromkeys(keys) if self.is_point(k)]
        grid = {k: i for i, k in enumerate(self.point_keys)}
        return sorted(keys, key=lambda k: (k not in grid, grid.get(k, 0), sum(self.point(k).params.values())))

    def trial_seed(self, point: SweepPoint, trial: int) -> int:
        """``same_seed``: every point's trial t uses the same prompts; else they differ by point,
        by a number derived from the point's key, so adding a value keeps the others' seeds."""
        base = self.spec.seed + 1000 * int(trial)
        if self.spec.same_seed:
            return base
        return base + 1_000_000 * (1 + int(hashlib.sha256(point.key.encode()).hexdigest()[:6], 16) % 1000)

    @property
    def objectives(self) -> list[ObjectiveSpec]:
        """The study's Pareto objectives; by default maximise request throughput and minimise
        TTFT p99 (request latency p99 without streaming: there is no first token to time)."""
        if self.spec.objectives:
            return list(self.spec.objectives)
        latency = "time_to_first_token" if self.load.streaming else "request_latency"
        return [ObjectiveSpec(metric="request_throughput", stat="avg", direction="maximize"),
                ObjectiveSpec(metric=latency, stat="p99", direction="minimize")]

    @property
    def slo_bounds(self) -> tuple[tuple[str, float], ...]:
        """The per-request bounds of the latency SLOs, for goodput (``LoadSpec.slo_bounds``)."""
        return tuple((s.metric, float(s.below)) for s in self.spec.slos if s.metric != "error_rate")

    @property
    def slo_columns(self) -> tuple[str, ...]:
        """What a trial measures for the latency SLOs: goodput, good requests and each bound's
        attainment; none without a latency SLO."""
        return slo_metric_names(self.slo_bounds)

    def slos_met(self, metrics: dict) -> float:
        """1.0 when every SLO's statistic is within its bound in a successful trial's ``metrics``
        (the study's SLOs now: worked out when aggregating, so an edited bound needs no new
        measurement), else 0.0. A trial whose requests all had one token has no inter-token gap to
        be slow: its missing ITL statistic meets the bound."""
        for slo in self.spec.slos:
            value = metrics.get(slo.column, math.nan)
            if value != value and slo.metric == "inter_token_latency" and metrics.get("successful_request_count", 0) > 0:
                continue
            if not value <= float(slo.below):  # NaN (not measured) is a miss
                return 0.0
        return 1.0

    def overloaded(self, point: SweepPoint, metrics: dict) -> str:
        """Why a successful trial at ``point`` shows it clearly overloaded (``overload``), or ''."""
        limits = self.spec.overload
        if limits is None:
            return ""
        errors = metrics.get("error_rate", math.nan)
        if errors > float(limits.max_error_rate):
            return f"{errors:.0%} of its requests failed (limit {float(limits.max_error_rate):.0%})"
        latency = metrics.get("request_latency_p99", math.nan)
        if limits.max_latency_ms is not None and latency > float(limits.max_latency_ms):
            return f"request latency p99 {latency:,.0f} ms (limit {format_value(limits.max_latency_ms)} ms)"
        # Against the rate this trial's schedule drew (not the nominal one: a Poisson schedule of a
        # few dozen starts runs 20 % slow by chance), and only where the sweep varies the rate.
        achieved = metrics.get("achieved_request_rate", math.nan)
        drawn = metrics.get("scheduled_request_rate", math.nan)
        if limits.min_rate_ratio is not None and "request_rate" in point.params and achieved < float(
                limits.min_rate_ratio) * drawn:
            return (f"it started {achieved:.3g} requests/s of the {drawn:.3g} its schedule asked "
                    f"({achieved / drawn:.0%}, limit {float(limits.min_rate_ratio):.0%})")
        return ""

    def above(self, lower: SweepPoint, point: SweepPoint) -> bool:
        """``point`` is a higher load than ``lower``: the same other settings, and at least as much
        concurrency and request rate, more of one."""
        loads = ("concurrency", "request_rate")
        if any(point.params.get(n) != lower.params.get(n) for n in point.params if n not in loads):
            return False
        pairs = [(lower.params[n], point.params[n]) for n in loads if n in point.params and n in lower.params]
        return bool(pairs) and all(b >= a for a, b in pairs) and any(b > a for a, b in pairs)

    @property
    def endpoint_pool(self) -> str:
        """The Dagster concurrency pool of this study's endpoint: one load trial at a time per server."""
        return "load_endpoint_" + safe_label(self.load.url.split("://", 1)[-1]).replace(".", "_")

    def fingerprint(self) -> str:
        """What every trial depends on; the swept lists are left out (their points are the partitions)."""
        unset = {"burstiness"} if self.load.burstiness is None else set()  # a study from before keeps its fingerprint
        return fingerprint({"target": self.load.model_dump(exclude=set(self.swept) | unset),
                            "server": self.spec.mock_server and self.spec.mock_server.model_dump(),
                            "seed": self.spec.seed, "same_seed": self.spec.same_seed,
                            # goodput and attainment are measured per request against these bounds
                            **({"slo_bounds": self.slo_bounds} if self.slo_bounds else {})})

    def load_spec(self, point: SweepPoint, trial: int) -> LoadSpec:
        """The load target's spec for one trial: the study's load with the point's swept values."""
        load = self.load.model_dump()
        load["burstiness"] = 1.0 if load["burstiness"] is None else float(load["burstiness"])
        load.update(point.params)
        return LoadSpec(**{**load, "seed": self.trial_seed(point, trial), "slo_bounds": self.slo_bounds})


def _check_objectives(path: Path, study: LoadSweepStudy) -> None:
    objectives = study.spec.objectives
    if objectives is not None and len(objectives) < 2:
        raise StudyError(path, "objectives", f"{len(objectives)} objective given; a Pareto frontier needs two or more",
                         "list at least two, e.g. request_throughput avg (maximize) and time_to_first_token p99 "
                         "(minimize)")
    reported = (*metric_names(study.load.streaming), *study.slo_columns)
    for i, objective in enumerate(study.objectives):
        if objective.metric == "goodput" and not study.slo_bounds:
            raise StudyError(path, f"objectives[{i}]", "goodput counts the requests within every latency SLO's bound, "
                             "and the study declares no latency SLO", "add one to slos, e.g. - {metric: "
                             "time_to_first_token, stat: p99, below: 200}")
        if objective.metric == "goodput" and objective.stat != "avg":
            raise StudyError(path, f"objectives[{i}].stat", f"goodput is one rate per trial, not a {objective.stat}",
                             "use stat: avg")
        if objective.column not in reported:
            latency = [n for n in reported if n.endswith(f"_{objective.stat}")]
            hint = ("time to first token and inter-token latency need streaming: true; "
                    if objective.metric in ("time_to_first_token", "inter_token_latency") and not study.load.streaming
                    else "")
            raise StudyError(path, f"objectives[{i}]", f"the load target reports no {objective.column}",
                             f"{hint}use one of {sorted({n.rsplit('_', 1)[0] for n in latency})} with stat "
                             f"{objective.stat}, or request_throughput / output_token_throughput with stat avg")


def _check_slos(path: Path, study: LoadSweepStudy) -> None:
    """One line per mistake: an SLO on a metric or statistic the target does not report, a bound
    that is not above 0 (or an error rate above 1), a metric bounded twice."""
    usable = latency_metrics(study.load.streaming)
    seen: set[str] = set()
    for i, slo in enumerate(study.spec.slos):
        where = f"slos[{i}]"
        if slo.metric == "error_rate":
            if slo.stat is not None:
                raise StudyError(path, f"{where}.stat", "error_rate is one share per trial and has no statistic",
                                 "remove stat from this SLO")
            if not 0 < float(slo.below) <= 1:
                raise StudyError(path, f"{where}.below", f"an error rate bound of {format_value(slo.below)}",
                                 "give a share above 0 and at most 1, e.g. below: 0.01 for 1 %")
        elif slo.metric not in usable:
            hint = ("time to first token and inter-token latency need streaming: true; "
                    if slo.metric in LATENCY_METRICS else "")
            raise StudyError(path, f"{where}.metric", f"the load target reports no {slo.metric!r}",
                             f"{hint}use one of {', '.join((*usable, 'error_rate'))}")
        elif float(slo.below) <= 0:
            raise StudyError(path, f"{where}.below", f"a latency bound of {format_value(slo.below)} ms",
                             "give a bound above 0 in milliseconds, e.g. below: 200")
        if slo.metric in seen:
            raise StudyError(path, f"{where}.metric", f"{slo.metric} has an SLO already",
                             "give each metric one SLO (its bound is also each request's bound for goodput)")
        seen.add(slo.metric)


def _check_stopping(path: Path, spec: LoadSweepSpec) -> None:
    stopping = spec.stopping
    if stopping is None:
        return
    if "trials" in spec.model_fields_set:
        raise StudyError(path, "trials", "a fixed count, and stopping sets the count (min_trials up to max_trials)",
                         "remove trials, or remove stopping")
    if stopping.min_trials > stopping.max_trials:
        raise StudyError(path, "stopping.min_trials", f"{stopping.min_trials} is above max_trials "
                         f"{stopping.max_trials}", "make min_trials at most max_trials")
    if not stopping.precision > 0:
        raise StudyError(path, "stopping.precision", f"{format_value(stopping.precision)} is not above 0",
                         "give the interval's half-width relative to the mean, e.g. 0.1 for +-10 %")


def _check_capacity(path: Path, spec: LoadSweepSpec, swept: dict) -> None:
    """A search needs SLOs, a load to search and nothing else swept, bounds low < high within the
    parameter's range and a precision above 0 (a whole number of requests for concurrency)."""
    load, capacity = spec.target.http_load, spec.capacity
    if capacity is None:
        return
    name = capacity.search
    if getattr(load, name) is not None:
        raise StudyError(path, f"target.http_load.{name}", f"capacity.search sets {name}, and it is given here too",
                         f"remove it: the search probes {name} from capacity.low up")
    for other in swept:
        raise StudyError(path, f"target.http_load.{other}", f"{other} is swept, and a capacity search runs at one "
                         "setting of everything else", "give one value, or one study per value")
    if not spec.slos:
        raise StudyError(path, "capacity", "searches for the highest load that meets the SLOs, and the study "
                         "declares none", "add slos, e.g. - {metric: time_to_first_token, stat: p99, below: 200}")
    if spec.stopping is None and spec.trials < 2:
        raise StudyError(path, "trials", f"{spec.trials} trial per load, and a capacity search calls a load from the "
                         "interval of its trials", "give trials: 2 or more, or stopping: {min_trials: 3, max_trials: 8}")
    whole = name == "concurrency"
    for field in ("low", "high"):
        value = getattr(capacity, field)
        if whole and not float(value).is_integer():
            raise StudyError(path, f"capacity.{field}", f"concurrency takes whole numbers, got {value}",
                             "use an integer")
        if value < 1 if whole else value < MIN_RATE:
            raise StudyError(path, f"capacity.{field}", f"{name} must be {'at least 1' if whole else f'at least {MIN_RATE}'}"
                             f", got {format_value(value)}", "use a positive value" + ("" if whole else
                                                                                      f" of at least {MIN_RATE}"))
        if not spec.allow_large and value > LIMITS[name]:
            raise StudyError(path, f"capacity.{field}", f"{name} {format_value(value)} is above the sane limit "
                             f"{LIMITS[name]:,}", "use a smaller value, or set allow_large: true if you mean it")
    if not capacity.low < capacity.high:
        raise StudyError(path, "capacity.low", f"low {format_value(capacity.low)} is not below high "
                         f"{format_value(capacity.high)}", "give the search a range: low below high")
    precision = capacity.precision
    if precision is None and not whole:
        raise StudyError(path, "capacity.precision", "a request_rate search needs a precision",
                         "give it in requests/s, e.g. precision: 0.5")
    if precision is not None and not precision > 0:
        raise StudyError(path, "capacity.precision", f"{format_value(precision)} is not above 0",
                         f"give how close the search narrows the boundary, in {'requests' if whole else 'requests/s'}")
    if precision is not None and not whole and precision < MIN_RATE:
        raise StudyError(path, "capacity.precision", f"{format_value(precision)} requests/s is finer than the loads "
                         f"are set ({MIN_RATE})", f"give at least {MIN_RATE}")
    if precision is not None and whole and not float(precision).is_integer():
        raise StudyError(path, "capacity.precision", f"concurrency moves in whole requests, got {precision}",
                         "use a whole number, e.g. precision: 1")


def load_load_sweep(path: Path, text: str, spec: LoadSweepSpec, name: str) -> LoadSweepStudy:
    swept = _check_sweep(path, spec.target.http_load, spec)
    _check_stopping(path, spec)
    _check_capacity(path, spec, swept)
    study = LoadSweepStudy(name=name, path=path, text=text, spec=spec, swept=swept)
    _check_slos(path, study)
    _check_objectives(path, study)
    probes = [study.probe(spec.capacity.high)] if spec.capacity else []
    for point in study.points + probes:  # the target's own checks, at load time rather than mid-sweep
        try:
            validate_load_spec(study.load_spec(point, 0))
        except LoadSpecError as error:
            problem, _, fix = str(error).partition("; ")
            raise StudyError(path, "target.http_load", f"{point.key}: {problem}", fix or "correct the load") from None
    return study
