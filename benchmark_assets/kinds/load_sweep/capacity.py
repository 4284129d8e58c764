"""Capacity under the SLA: the highest load (concurrency or request rate) at which every SLO
still holds, searched one probe at a time; no Dagster.

The search doubles the load from ``low`` until a probe misses the SLA (at most ``high``), then
bisects between the highest load that met it and the lowest that did not, until the two are
within ``precision``. Each probe gets trials one at a time (``min_trials`` to ``max_trials``)
until every SLO statistic's mean is clearly on one side of its bound.

What a probe is called, and why the boundary's interval holds:
- ``met``: every SLO's upper confidence bound is within its bound; ``failed``: some SLO's lower
  bound is beyond its bound (or a trial failed outright); ``uncertain``: neither by
  ``max_trials``, the probe is near the boundary.
- Each call is one-sided at ``alpha / (K m)``: K the most probes the search can make (known from
  low, high and precision), m the SLOs; within a probe that share is spent over its looks
  (``stats.sequential.look_alpha``). A probe can be wrong only on one side of the true capacity
  (called met above it, failed at or below it), so by the union bound every call is right with
  chance at least ``1 - alpha``.
- When every call is right and the SLO statistics grow with load, the capacity lies in
  [the highest load called met, the lowest load called failed): that is the interval reported.
  Probes called failed below one called met contradict a monotone boundary; then no boundary
  is reported, only that.
- The estimate is where the search ended: the highest load met on the means, each lower probe too.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from benchmark_assets.kinds.load_sweep.stopping import metric_interval
from benchmark_assets.stats.lazy import scipy_stats
from benchmark_assets.stats.sequential import look_alpha
from benchmark_assets.sweep import format_value, point_key

MET, FAILED, UNCERTAIN, RUNNING = "met", "failed", "uncertain", "running"
REQUESTS = "request_count"  # per trial: what an error-rate SLO's bounds count over


@dataclass(frozen=True)
class Slo:
    column: str  # the trial statistic, e.g. time_to_first_token_p99, error_rate
    bound: float
    label: str
    metric: str


@dataclass(frozen=True)
class SearchPlan:
    parameter: str  # concurrency or request_rate
    low: float
    high: float
    precision: float
    first: int  # trials every probe gets
    last: int  # trials a probe may get
    alpha: float
    slos: tuple[Slo, ...]
    spending: str = "pocock"

    @property
    def whole(self) -> bool:
        return self.parameter == "concurrency"

    def value(self, x) -> float:
        return round(x) if self.whole else float(round(x, 6))

    def key(self, x) -> str:
        return point_key(self.parameter, self.value(x))

    def point_value(self, key: str) -> float:
        return self.value(float(key.partition("=")[2]))

    def bracket(self) -> list[float]:
        """The loads the doubling phase may probe: low, 2 low, 4 low, ..., high."""
        out, x = [], self.value(self.low)
        while x < self.high:
            out.append(x)
            x = self.value(x * 2)
        return [*out, self.value(self.high)]

    def _bisections(self, width: float) -> int:
        steps = 0
        while width > self.precision:
            width = math.ceil(width / 2) if self.whole else width / 2
            steps += 1
        return steps

    @property
    def max_probes(self) -> int:
        """K: the doubling phase's loads plus twice the bisections of its widest step (the gaps
        on either side of the loads too close to call are narrowed apart), and one load past the
        boundary to check it."""
        points = self.bracket()
        widest = max((self._bisections(b - a) for a, b in itertools.pairwise(points)), default=0)
        return len(points) + 2 * widest + 1

    def call_alpha(self, n: int) -> float:
        """One side's level for one SLO at a probe's look after ``n`` successful trials."""
        return look_alpha(n, self.first, self.last, self.alpha / (self.max_probes * len(self.slos)), self.spending)


@dataclass(frozen=True)
class Probe:
    key: str
    value: float
    trials: int
    failed: int
    verdict: str  # met, failed, uncertain, running
    met_on_means: bool
    binding: tuple[str, ...]  # the SLOs it was called failed on (or that its means miss)
    reason: str
    bounds: dict = field(default_factory=dict)  # column -> (mean, low, high) at the probe's call level


def error_rate_bounds(errors: float, requests: float, alpha: float) -> tuple[float, float]:
    """Clopper-Pearson bounds of a per-request error rate from the errors among the requests of
    every trial together, each side at ``alpha``: 0 errors in 96 requests is not an error rate of 0."""
    if requests <= 0:
        return 0.0, 1.0
    beta = scipy_stats().beta
    k, n = round(errors), round(requests)
    low = 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha, k + 1, n - k))
    return low, high


def judge(plan: SearchPlan, key: str, value: float, values: dict[str, np.ndarray], failed: int) -> Probe:
    """Call one probe from its successful trials' SLO statistics (``values``: column -> one value
    per successful trial, NaN where a trial has none; ``request_count`` too when an SLO bounds the
    error rate) and the number of its trials that failed outright. A trial that failed outright
    (the server refused its first request, or every one) is a miss of the SLA as a fact, outside
    the error budget of the calls."""
    n = max((np.asarray(v).size for v in values.values()), default=0)
    count = n + failed
    if failed:
        return Probe(key, value, count, failed, FAILED, False, ("trials failed",),
                     f"{failed} of {count} trials failed outright (no statistics): the SLA does not hold")
    if count < plan.first:
        return Probe(key, value, count, 0, RUNNING, False, (), f"{count} of its first {plan.first} trials measured")
    alpha = plan.call_alpha(n)
    bounds, missed, unsure, over = {}, [], [], []
    for slo in plan.slos:
        x = np.asarray(values.get(slo.column, []), float)
        x = x[np.isfinite(x)]
        if slo.metric == "error_rate" and REQUESTS in values:
            requests = np.asarray(values[REQUESTS], float)
            errors = float(np.nansum(np.asarray(values.get(slo.column), float) * requests))
            mean = errors / max(float(np.nansum(requests)), 1.0)
            low, high = error_rate_bounds(errors, float(np.nansum(requests)), alpha)
        elif x.size == 0:
            # no inter-token gap to be slow when every request had one token; anything else unmeasured misses
            mean = low = high = 0.0 if slo.metric == "inter_token_latency" else math.inf
        else:
            mean = float(x.mean())
            low, high = metric_interval(x, slo.column, 2 * alpha)  # each side at alpha
            if low != low:  # one trial: no interval
                low, high = -math.inf, math.inf
        bounds[slo.column] = (mean, low, high)
        if mean > slo.bound:
            over.append(slo.label)
        if low > slo.bound:
            missed.append(slo.label)
        elif not high <= slo.bound:
            unsure.append(slo.label)
    level = f"{1 - alpha:.4%} one-sided"
    if missed:
        return Probe(key, value, count, 0, FAILED, False, tuple(missed),
                     f"misses {', '.join(missed)} (lower bound beyond it at {level}, {count} trials)", bounds)
    if not unsure:
        return Probe(key, value, count, 0, MET, True, (), f"meets every SLO (upper bounds within, {level}, "
                     f"{count} trials)", bounds)
    if count >= plan.last:
        side = f"means miss {', '.join(over)}" if over else "means meet every SLO"
        return Probe(key, value, count, 0, UNCERTAIN, not over, tuple(over),
                     f"uncertain after max_trials {plan.last}: {', '.join(unsure)} too close to call ({side})", bounds)
    return Probe(key, value, count, 0, RUNNING, not over, tuple(over),
                 f"{', '.join(unsure)} not yet clear after {count} trials", bounds)


@dataclass(frozen=True)
class Search:
    """Where a capacity search stands: every probe (by load), what it does next (``next_key``, a
    probe that needs another trial or a new load; None when finished) and why, and what it found."""

    plan: SearchPlan
    probes: tuple[Probe, ...]
    next_key: str | None
    why: str
    estimate: float | None  # highest load met on the means (None: not even low)
    lower: float | None  # capacity >= lower (None: below low, or not known)
    upper: float | None  # capacity < upper (None: not found up to high)
    monotone: bool
    binding: tuple[str, ...]

    @property
    def done(self) -> bool:
        return self.next_key is None

    def headline(self) -> str:
        unit = "requests in flight" if self.plan.whole else "requests/s"
        name = self.plan.parameter
        if not self.monotone:
            return f"no {name} capacity reported, the loads are not monotone: {self.why}"
        if self.estimate is None:
            return f"the SLA does not hold even at {name}={format_value(self.plan.value(self.plan.low))}"
        low = format_value(self.lower) if self.lower is not None else f"below {format_value(self.plan.low)}"
        high = f"below {format_value(self.upper)}" if self.upper is not None else "beyond the search's high"
        binding = f"; binding: {', '.join(self.binding)}" if self.binding else ""
        reach = (" (the search's high: no load up to it failed the SLA)"
                 if self.upper is None and self.estimate >= self.plan.high else "")
        return (f"capacity under the SLA: {name}={format_value(self.estimate)} {unit}{reach}; "
                f"{1 - self.plan.alpha:.0%} interval: from {low}, {high}{binding}")


def search(plan: SearchPlan, measured: dict[float, tuple[dict[str, np.ndarray], int]],
           calls: dict | None = None) -> Search:
    """The search's state from every probe's trials so far (load -> (SLO column -> values,
    failed trials)), and its next step: another trial at a probe still running, else the next
    load to probe, else nothing.

    The loads called with confidence bound the capacity: L, the highest called met, and U, the
    lowest called failed. Until a load fails, the search doubles. Then it bisects the gaps: while
    no load between L and U is too close to call, (L, U) itself; once some are, the gaps between L
    and the lowest of them and between the highest of them and U, the wider first, so that the
    interval [L, U) ends within ``precision`` of the loads that are too close to call.

    ``calls``: a dict kept across calls of one search whose probes only gain trials (a
    simulation), so that a probe is judged again only when it has new ones."""
    calls = {} if calls is None else calls
    probes = []
    for x, (values, failed) in sorted(measured.items()):
        state = (x, failed, *(len(v) for v in values.values()))
        if state not in calls:
            calls[state] = judge(plan, plan.key(x), plan.value(x), values, failed)
        probes.append(calls[state])
    probes = tuple(probes)
    called_met = [p.value for p in probes if p.verdict == MET]
    called_failed = [p.value for p in probes if p.verdict == FAILED]
    lower = max(called_met) if called_met else None
    upper = min(called_failed) if called_failed else None
    estimate = None  # the highest load met on the means, every lower probe too
    for p in probes:
        if not p.met_on_means:
            break
        estimate = p.value
    if lower is not None and (estimate is None or estimate < lower):
        estimate = lower  # a load called met is met, whatever a lower load's means said
    inverted = [(f, m) for f in called_failed for m in called_met if f < m]
    running = [p for p in probes if p.verdict == RUNNING]
    if inverted:  # no boundary to narrow down: probing on would spend trials on nothing
        f, m = inverted[0]
        nxt, why = None, f"{plan.key(f)} failed the SLA while {plan.key(m)} above it met it"
    elif running:
        nxt, why = running[0].key, f"{running[0].key}: {running[0].reason}"
    else:
        nxt, why = _next_load(plan, probes, lower, upper)
    at = next((p for p in probes if p.value == upper), None) or next(
        (p for p in probes if not p.met_on_means), None)
    return Search(plan, probes, nxt, why, estimate, lower, upper, not inverted, at.binding if at else ())


def _next_load(plan: SearchPlan, probes: tuple[Probe, ...], lower, upper) -> tuple[str | None, str]:
    probed = {p.value for p in probes}
    if not probed:
        return plan.key(plan.low), "the search starts at low"
    zone = [p.value for p in probes if p.verdict == UNCERTAIN
            and (lower is None or p.value > lower) and (upper is None or p.value < upper)]
    top = max(zone) if zone else lower  # the highest load not called failed
    if upper is None:
        if top is None:
            return None, f"{probes[0].key} misses the SLA: the capacity is below the search's low"
        missing = [z for z in zone if not next(p for p in probes if p.value == z).met_on_means]
        if not missing:
            if top >= plan.high:
                return None, f"{plan.key(top)} does not fail the SLA at the search's high"
            return plan.key(min(top * 2, plan.high)), f"bracketing: nothing failed the SLA up to {plan.key(top)}, doubling"
        # Too close to call, and its means miss: past it a load may fail clearly; below it, narrow
        # down where the means cross.
        crossing = min(missing)
        if top < plan.high and not any(x > crossing for x in probed):
            x = plan.value(min(crossing * 2, plan.high))
            return plan.key(x), f"{plan.key(crossing)} misses the SLA on its means, too close to call: trying above it"
        below = [p.value for p in probes if p.met_on_means and p.value < crossing]
        gaps = [(lower, min(zone)), (max(below) if below else None, crossing)]
        for a, b in sorted(((a, b) for a, b in gaps if a is not None and b - a > plan.precision),
                           key=lambda gap: gap[0] - gap[1]):
            x = plan.value((a + b) / 2)
            if x not in probed:
                return plan.key(x), f"narrowing between {plan.key(a)} and {plan.key(b)} (no load failed clearly)"
        return None, (f"no load up to the search's high failed the SLA clearly; the means cross below "
                      f"{plan.key(crossing)}, too close to call with max_trials {plan.last}")
    if lower is None and not zone:
        return None, f"{plan.key(upper)} misses the SLA: the capacity is below the search's low"
    gaps = [(lower, min(zone)), (max(zone), upper)] if zone else [(lower, upper)]
    gaps = [(a, b) for a, b in gaps if a is not None and b - a > plan.precision]
    for a, b in sorted(gaps, key=lambda gap: gap[0] - gap[1]):  # the wider first
        x = plan.value((a + b) / 2)
        if x not in probed:
            return plan.key(x), f"narrowing between {plan.key(a)} and {plan.key(b)}"
    above = [x for x in probed if x > upper]
    if not above and upper < plan.high:  # one load past the boundary: does the SLA stay failed there?
        x = plan.value(min(upper * 2, plan.high))
        return plan.key(x), f"checking that the SLA still fails above {plan.key(upper)} (a monotone boundary)"
    if zone:
        return None, (f"narrowed to within {format_value(plan.precision)} of the loads too close to call "
                      f"({', '.join(plan.key(z) for z in zone)})")
    return None, f"narrowed to within {format_value(plan.precision)}: {plan.key(lower)} met, {plan.key(upper)} did not"


def simulate(plan: SearchPlan, means: Callable[[float], dict[str, float]], rng: np.random.Generator,
             sigma: float = 0.15, limit: int = 10_000) -> tuple[Search, int]:
    """A search against a known server: a trial at load x measures each SLO statistic as its
    mean ``means(x)[column]`` times log-normal noise of spread ``sigma`` (mean 1). Returns the
    finished search and the trials it took (for coverage checks and planning)."""
    measured: dict[float, tuple[dict[str, np.ndarray], int]] = {}
    calls: dict = {}
    for trials in range(limit):
        state = search(plan, measured, calls)
        if state.done:
            return state, trials
        x = float(plan.point_value(state.next_key))
        values, _ = measured.get(x, ({slo.column: np.empty(0) for slo in plan.slos}, 0))
        true = means(x)
        noise = rng.lognormal(-sigma**2 / 2, sigma)  # one trial's draw, shared by its statistics
        measured[x] = ({c: np.append(v, true[c] * noise) for c, v in values.items()}, 0)
    raise RuntimeError(f"the search did not finish within {limit} trials")
