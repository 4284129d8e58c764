"""Capacity under the SLA: the search's calls and interval checked by simulation against a known
boundary, its bad input refused at load, and a search of the mock server over loopback whose
slot count sets the capacity."""
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from benchmark_assets.artifacts import latest_dir
from benchmark_assets.defs.runner import run_study
from benchmark_assets.kinds.load_sweep.capacity import SearchPlan, Slo, error_rate_bounds, judge, search, simulate
from benchmark_assets.ledger import Ledger
from benchmark_assets.studies import StudyError, load_study
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.conftest import free_port, write_study

# The mock server serves 8 requests at once; each takes 20 ms to its first token and 5 ms per
# token after, 55 ms in all. Up to 8 in flight, a first token comes after about 20-30 ms; from 9,
# some request of every trial waits about 55 ms for a slot, so TTFT p99 jumps past 75 ms. The
# SLO's 45 ms sits far from both: the capacity the configuration implies is 8.
CAPACITY = """\
kind: load_sweep
description: capacity search for tests
target:
  http_load:
    url: http://127.0.0.1:{port}
    output_tokens: 8
    input_tokens: 16
    requests: 16
    warmup_requests: 2
    request_timeout_seconds: 10
mock_server: {{ttft_ms: 20, itl_ms: 5, capacity: 8}}
slos:
  - {{metric: time_to_first_token, stat: p99, below: 45}}
  - {{metric: error_rate, below: 0.25}}  # judged over every request: 32 without an error show it
stopping: {{min_trials: 2, max_trials: 4}}
capacity: {{search: concurrency, low: 4, high: 16}}
"""


def test_the_search_finds_the_capacity_the_mock_server_implies(instance, study_dir):
    write_study(study_dir, "cap", CAPACITY.format(port=free_port()))
    run_study("cap", quiet=True, instance=instance)
    folder = latest_dir("cap")
    capacity = json.loads((folder / "sweep_aggregate.json").read_text())["capacity"]
    assert capacity["finished"] and capacity["monotone"]
    # On a quiet machine the misses are clear (p99 about 75 ms against 45) and the interval is
    # [8, 9). On a busy one (the suite's 3 workers on 2 cores) the load generator itself can fall
    # behind just above the capacity, so 9 or 10 may be too scattered to call by max_trials: the
    # interval then widens (the fresh-clone CI of 4a62a4e gave [8, 11)) but still holds the truth.
    upper = capacity["upper"]
    assert capacity["estimate"] == 8 and 9 <= upper <= 12 and (capacity["lower"] is None or capacity["lower"] <= 8)
    assert capacity["binding"] == ["time_to_first_token p99 <= 45 ms"]
    probes = {p["load"]: p for p in capacity["probes"]}
    # doubled from 4 until 16 missed the SLA, then bisected down towards 8
    assert {4, 8, 16, 12, upper} <= set(probes)
    # far from the bound every call is clear; on a busy machine a low load's trials may scatter
    # too much to call by max_trials, which is then said rather than guessed
    assert all(probes[x]["verdict"] in ("met", "uncertain") and probes[x]["met_on_means"] for x in (4, 8))
    assert all(probes[x]["verdict"] == "failed" for x in {upper, 12, 16})
    assert all(p["verdict"] in ("failed", "uncertain") for x, p in probes.items() if x > 8)  # never met above it
    assert all(2 <= p["trials"] <= 4 for p in probes.values())
    # every probe is a partition with its trials stored; the stopping node says why each stopped
    # each probe is a partition of the study's trials, registered as the search reached it
    assert {f"concurrency={int(x)}" for x in probes} <= set(instance.get_dynamic_partitions("cap__load_points"))
    trials = Warehouse().read("cap__trials")
    counts = trials.groupby("sweep_point")["trial"].nunique().to_dict()
    assert counts == {f"concurrency={int(x)}": p["trials"] for x, p in probes.items()}
    stopping = Warehouse().read("cap__stopping").set_index("sweep_point")
    assert stopping.loc[f"concurrency={upper}", "verdict"] == "failed"
    assert "misses time_to_first_token p99 <= 45 ms" in stopping.loc[f"concurrency={upper}", "reason"]
    report = (folder / "report.md").read_text()
    assert "## Capacity under the SLA" in report and "**capacity under the SLA: concurrency=8" in report
    assert (folder / "plots" / "capacity.png").stat().st_size > 10_000
    entry = Ledger(Warehouse()).read(study="cap").set_index("subject").loc["capacity_under_sla"]
    assert (entry["decision"], entry["effect"], entry["ci_high"]) == ("capacity", 8, upper)
    assert pd.isna(entry["ci_low"]) if capacity["lower"] is None else entry["ci_low"] == capacity["lower"]


TTFT = Slo("time_to_first_token_p99", 200.0, "time_to_first_token p99 <= 200 ms", "time_to_first_token")


def plan(**changes) -> SearchPlan:
    return SearchPlan(**{"parameter": "concurrency", "low": 1, "high": 256, "precision": 1, "first": 3, "last": 10,
                         "alpha": 0.05, "slos": (TTFT,), **changes})


def knee(capacity: float, power: float = 1.5, step: float = 1.0):
    """TTFT p99 that grows with load and crosses the bound halfway between ``capacity`` and the
    next load ``step`` above it."""
    return lambda x: {TTFT.column: TTFT.bound * (x / (capacity + step / 2)) ** power}


def test_the_capacity_interval_covers_a_known_boundary_and_calling_on_means_does_not():
    """Searches of servers whose capacity is known (drawn from 3 to 200), each trial's TTFT p99
    off its mean by 15 % (log-normal). The reported interval [lower, upper) must hold the true
    capacity in at least 95 % of searches; the interval a rule reads off the means (the last load
    met, the first missed) holds it less often than it claims. And the search must find something: both
    ends in nearly every search, the interval a fraction of the capacity wide."""
    rng = np.random.default_rng(7)
    runs, covered, naive, both, widths, errors = 150, 0, 0, 0, [], []
    for _ in range(runs):
        capacity = int(rng.integers(3, 200))
        state, _ = simulate(plan(), knee(capacity), rng)
        assert state.done and state.monotone
        lower, upper = state.lower or 0, state.upper or np.inf
        covered += lower <= capacity < upper
        above = [p.value for p in state.probes if p.value > state.estimate and not p.met_on_means]
        naive += state.estimate <= capacity < min(above)
        both += state.lower is not None and state.upper is not None
        widths.append((upper - lower) / capacity)
        errors.append(abs(state.estimate - capacity) / capacity)
    assert covered / runs >= 0.95  # the union bound promises 95 %; it is conservative
    assert naive / runs <= 0.9, naive / runs  # 0.81 here: 3 standard errors below what it claims
    assert both / runs >= 0.95
    assert np.median(widths) <= 0.5 and np.median(errors) <= 0.1, (np.median(widths), np.median(errors))


def test_a_load_that_fails_below_one_that_meets_is_reported_as_not_monotone():
    # a server slow at 8 in flight (a cache thrashing at that size, say) and fine at 16
    def spiky(x):
        return {TTFT.column: 600.0 if x == 8 or x >= 64 else 50.0}

    state, _ = simulate(plan(), spiky, np.random.default_rng(1), sigma=0.05)
    assert not state.monotone and state.done
    assert state.why == "concurrency=8 failed the SLA while concurrency=16 above it met it"
    assert state.headline().startswith("no concurrency capacity reported, the loads are not monotone")


@pytest.mark.parametrize(("level", "estimate", "lower", "upper", "headline"), [
    (600.0, None, None, 1, "the SLA does not hold even at concurrency=1"),
    (50.0, 256, 256, None, "capacity under the SLA: concurrency=256 requests in flight (the search's high: no "
                           "load up to it failed the SLA)"),
])
def test_a_search_says_when_the_capacity_lies_outside_its_range(level, estimate, lower, upper, headline):
    state, trials = simulate(plan(), lambda x: {TTFT.column: level}, np.random.default_rng(2), sigma=0.05)
    assert (state.estimate, state.lower, state.upper) == (estimate, lower, upper)
    assert state.headline().startswith(headline)
    assert trials <= 4 * len(state.probes)  # far from the bound, a probe is called at its first looks


def test_a_request_rate_search_narrows_to_its_precision():
    rate = plan(parameter="request_rate", low=0.5, high=64.0, precision=0.25)
    state, _ = simulate(rate, knee(10.3, step=0.01), np.random.default_rng(3), sigma=0.02)
    assert state.done and state.lower <= 10.3 < state.upper
    assert state.upper - state.lower <= 0.25 + 1e-9 or any(p.verdict == "uncertain" for p in state.probes)
    assert all(p.key == f"request_rate={p.value:g}" for p in state.probes)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (("high: 16", "high: 0"), "capacity.high", "must be at least 1"),
        (("low: 4, high: 16", "low: 32, high: 16"), "capacity.low", "low 32 is not below high 16"),
        (("low: 4", "low: 1.5"), "capacity.low", "whole numbers"),
        (("high: 16}", "high: 16, precision: 0}"), "capacity.precision", "0 is not above 0"),
        (("high: 16}", "high: 16, precision: 1.5}"), "capacity.precision", "whole requests"),
        (("search: concurrency", "search: request_rate"), "capacity.precision", "needs a precision"),
        (("output_tokens: 8", "output_tokens: 8\n    concurrency: 4"), "target.http_load.concurrency",
         "capacity.search sets concurrency"),
        (("output_tokens: 8", "output_tokens: [8, 16]"), "target.http_load.output_tokens", "is swept"),
        (("high: 16", "high: 9000"), "capacity.high", "above the sane limit"),
        (("stopping: {min_trials: 2, max_trials: 4}", "stopping: {min_trials: 5, max_trials: 4}"),
         "stopping.min_trials", "5 is above max_trials 4"),
        (("max_trials: 4}", "max_trials: 4, precision: 0}"), "stopping.precision", "0 is not above 0"),
        (("max_trials: 4}", "max_trials: 4, precision: -0.1}"), "stopping.precision", "-0.1 is not above 0"),
        (("stopping: {", "trials: 3\nstopping: {"), "trials", "stopping sets the count"),
    ],
)
def test_a_bad_search_is_one_line_naming_the_field(study_dir, change, field, message):
    path = write_study(study_dir, "bad", CAPACITY.format(port=8000).replace(*change))
    with pytest.raises(StudyError) as raised:
        load_study(path)
    text = str(raised.value)
    assert f": {field}: " in text and message in text and "Fix:" in text and "\n" not in text, text


def test_a_search_needs_slos_and_a_load_needs_a_search_or_a_value(study_dir):
    no_slos = CAPACITY.format(port=8000).split("slos:")[0] + "capacity: {search: concurrency, low: 2, high: 8}\n"
    with pytest.raises(StudyError, match=r": capacity: searches for the highest load that meets the SLOs"):
        load_study(write_study(study_dir, "bad", no_slos))
    no_load = CAPACITY.format(port=8000).replace("capacity: {search: concurrency, low: 4, high: 16}", "")
    with pytest.raises(StudyError, match=r": target.http_load: no load given. Fix: set concurrency"):
        load_study(write_study(study_dir, "bad", no_load))


@settings(max_examples=60, deadline=None)
@given(errors=st.integers(0, 40), requests=st.integers(1, 400), alpha=st.floats(1e-5, 0.2))
def test_the_error_rate_bounds_are_clopper_pearsons(errors, requests, alpha):
    errors = min(errors, requests)
    low, high = error_rate_bounds(errors, requests, alpha)
    ci = binomtest(errors, requests).proportion_ci(confidence_level=1 - 2 * alpha, method="exact")
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_no_errors_in_a_few_requests_do_not_show_a_low_error_rate():
    errors = Slo("error_rate", 0.01, "error_rate <= 1 %", "error_rate")
    search_plan = plan(slos=(errors,), last=3)
    few = {"error_rate": np.zeros(3), "request_count": np.full(3, 32.0)}  # 96 requests, none failed
    assert judge(search_plan, "concurrency=4", 4, few, 0).verdict == "uncertain"
    many = {"error_rate": np.zeros(3), "request_count": np.full(3, 1000.0)}
    assert judge(search_plan, "concurrency=4", 4, many, 0).verdict == "met"
    some = {"error_rate": np.full(3, 0.05), "request_count": np.full(3, 200.0)}  # 30 of 600 failed
    assert judge(search_plan, "concurrency=4", 4, some, 0).verdict == "failed"


def test_a_load_called_met_is_never_below_the_estimate():
    # 1 too close to call with its means over the bound, 2 met, 3 and 4 failed
    values = {1: 205.0, 2: 100.0, 3: 400.0, 4: 400.0}
    measured = {x: ({TTFT.column: np.array([v, v * 1.02, v * 0.98])}, 0) for x, v in values.items()}
    state = search(plan(last=3, high=4), measured)
    assert (state.lower, state.upper, state.estimate) == (2, 3, 2)


def test_a_searching_study_refuses_trials_measured_elsewhere(study_dir, tmp_path):
    from benchmark_assets.kinds.base import IngestError
    from benchmark_assets.kinds.load_sweep.ingest import ingest_export

    study = load_study(write_study(study_dir, "cap", CAPACITY.format(port=8000)))
    with pytest.raises(IngestError, match=r"adds its own trials one at a time \(capacity\)"):
        ingest_export(study, tmp_path / "profile_export_aiperf.json", None, lambda: 1_000_000)


def test_when_nothing_fails_clearly_the_search_narrows_where_the_means_cross():
    # a request-rate search: 20 and 40 met; 80 and 160 too close to call at max_trials (trials in
    # overload scatter), 80 meeting the bound on its means and 160 missing it
    rate = plan(parameter="request_rate", low=20.0, high=160.0, precision=2.0, last=3)
    spread = {20.0: (20.0, 0.01), 40.0: (22.0, 0.01), 80.0: (100.0, 1.2), 160.0: (260.0, 1.2)}
    measured = {x: ({TTFT.column: mean * np.exp(np.array([-s, 0.0, s]))}, 0) for x, (mean, s) in spread.items()}
    state = search(rate, measured)
    assert [p.verdict for p in state.probes] == ["met", "met", "uncertain", "uncertain"]
    assert (state.lower, state.upper, state.estimate) == (40.0, None, 80.0)
    assert state.next_key == "request_rate=120" and "no load failed clearly" in state.why
