"""Overload: a trial that shows its point clearly overloaded stops the sweep's higher loads, which
the report names; what counts as overloaded and as a higher load."""
import json
import math

import pytest

from benchmark_assets.artifacts import latest_dir
from benchmark_assets.defs.runner import run_study
from benchmark_assets.studies import StudyError, load_study
from benchmark_assets.sweep import SweepPoint
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.conftest import free_port, write_study
from benchmark_assets_tests.kinds.load_sweep.test_assets import sweep_text


def study_with(study_dir, extra: str, concurrency: str = "[1, 4]"):
    text = sweep_text(8000, extra=extra).replace("concurrency: [1, 4]", f"concurrency: {concurrency}")
    return load_study(write_study(study_dir, "over", text))


def test_what_counts_as_overloaded(study_dir):
    study = study_with(study_dir, "overload: {max_error_rate: 0.2, max_latency_ms: 500}\n")
    point = study.points[0]
    assert study.overloaded(point, {"error_rate": 0.2, "request_latency_p99": 500.0}) == ""  # at the limits
    assert study.overloaded(point, {"error_rate": 0.25}) == "25% of its requests failed (limit 20%)"
    assert study.overloaded(point, {"error_rate": 0.0, "request_latency_p99": 812.4}) == \
        "request latency p99 812 ms (limit 500 ms)"
    assert study.overloaded(point, {"error_rate": math.nan}) == ""  # not measured is not overloaded
    rate = study_with(study_dir, "overload: {}\n", concurrency="4\n    request_rate: [5, 50]")
    slow = SweepPoint("request_rate=50", {"request_rate": 50})
    # against the rate the trial's own schedule drew, so a slow Poisson draw is not overload
    assert rate.overloaded(slow, {"error_rate": 0.0, "achieved_request_rate": 31.0, "scheduled_request_rate": 40.0}) \
        == "it started 31 requests/s of the 40 its schedule asked (78%, limit 80%)"
    assert rate.overloaded(slow, {"error_rate": 0.0, "achieved_request_rate": 39.0, "scheduled_request_rate": 40.0}) \
        == ""
    capped = SweepPoint("concurrency=4", {"concurrency": 4})  # the rate is fixed here: not what the sweep varies
    assert rate.overloaded(capped, {"error_rate": 0.0, "achieved_request_rate": 1.0,
                                    "scheduled_request_rate": 40.0}) == ""
    assert study_with(study_dir, "").overloaded(point, {"error_rate": 1.0}) == ""  # no overload section: never


def test_a_higher_load_is_more_of_the_load_at_the_same_other_settings(study_dir):
    study = study_with(study_dir, "")

    def p(**params):
        return SweepPoint(",".join(f"{k}={v}" for k, v in params.items()), params)

    assert study.above(p(concurrency=4, output_tokens=8), p(concurrency=16, output_tokens=8))
    assert not study.above(p(concurrency=4, output_tokens=8), p(concurrency=16, output_tokens=64))
    assert not study.above(p(concurrency=4), p(concurrency=4))
    assert not study.above(p(concurrency=16), p(concurrency=4))
    assert study.above(p(concurrency=4, request_rate=5), p(concurrency=4, request_rate=10))
    assert not study.above(p(concurrency=8, request_rate=5), p(concurrency=4, request_rate=10))


@pytest.mark.parametrize(("overload", "field"), [
    ("{max_error_rate: 0}", "overload.max_error_rate"),
    ("{max_latency_ms: -5}", "overload.max_latency_ms"),
    ("{min_rate_ratio: 1.5}", "overload.min_rate_ratio"),
])
def test_bad_overload_limits_are_refused_naming_the_field(study_dir, overload, field):
    with pytest.raises(StudyError) as raised:
        study_with(study_dir, f"overload: {overload}\n")
    assert f": {field}: " in str(raised.value) and "Fix:" in str(raised.value)


def test_an_overloaded_point_stops_the_higher_loads_and_the_report_says_so(instance, study_dir):
    # Two slots, a request takes about 19 ms: at 16 in flight a request waits for 7 others, its
    # latency p99 about 150 ms, past the 100 ms limit; at 4 it is about 40 ms.
    text = sweep_text(free_port(), extra="overload: {max_latency_ms: 100}\n").replace(
        "concurrency: [1, 4]", "concurrency: [1, 4, 16, 32]")
    write_study(study_dir, "over", text)
    run_study("over", quiet=True, instance=instance)
    trials = Warehouse().read("over__trials").set_index(["sweep_point", "trial"]).sort_index()
    assert (trials.loc["concurrency=16", "overloaded"].str.startswith("request latency p99")).any()
    assert (trials.loc["concurrency=4", "status"] == "ok").all()
    skipped = trials.loc["concurrency=32"]
    assert (skipped["status"] == "failed").all() and (skipped["wall_seconds"] == 0).all()
    assert skipped["error"].str.startswith("not run: concurrency=16 was overloaded (request latency p99").all()
    report = (latest_dir("over") / "report.md").read_text()
    assert "## Overload" in report and "concurrency=16 was overloaded in trial 0" in report
    assert "Not run, as higher loads of an overloaded point: concurrency=32 (2 trials saved)" in report
    assert "## Failed trials" not in report  # not run is not failed
    summary = json.loads((latest_dir("over") / "sweep_aggregate.json").read_text())
    assert summary["metadata"]["overload"]["not_run"] == {"concurrency=32": 2}
