"""SLOs and goodput of a load sweep: the per-request arithmetic against a brute-force count, the
study file's checks, and a sweep of the mock server over loopback where one point meets the SLO
and the other, queueing behind the server's two slots, does not."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark_assets.artifacts import latest_dir
from benchmark_assets.defs.runner import run_study
from benchmark_assets.ledger import Ledger
from benchmark_assets.studies import StudyError, load_study
from benchmark_assets.targets.http_load import goodput_metrics, summarise_requests
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.conftest import free_port, write_study
from benchmark_assets_tests.kinds.load_sweep.test_assets import sweep_text

latencies = st.lists(st.one_of(st.floats(0.1, 500), st.just(math.nan)), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(ttft=latencies, itl_seed=st.integers(0, 10_000), failed=st.integers(0, 10),
       ttft_bound=st.floats(1, 400), itl_bound=st.floats(1, 400), duration=st.floats(0.1, 100))
def test_goodput_counts_each_request_against_every_bound(ttft, itl_seed, failed, ttft_bound, itl_bound, duration):
    ttft = np.array([v if v == v else 1.0 for v in ttft])  # a successful request has a first token
    rng = np.random.default_rng(itl_seed)
    itl = np.where(rng.random(ttft.size) < 0.2, np.nan, rng.uniform(0.1, 500, ttft.size))  # NaN: one token
    count = ttft.size + failed
    out = goodput_metrics({"time_to_first_token": ttft, "inter_token_latency": itl}, count, duration,
                          (("time_to_first_token", ttft_bound), ("inter_token_latency", itl_bound)))
    good = sum(1 for t, i in zip(ttft, itl) if t <= ttft_bound and (math.isnan(i) or i <= itl_bound))
    assert out["good_request_count"] == good
    assert out["goodput_avg"] == pytest.approx(good / duration)
    assert out["time_to_first_token_attainment"] == pytest.approx(sum(t <= ttft_bound for t in ttft) / count)
    assert out["inter_token_latency_attainment"] == pytest.approx(
        sum(math.isnan(i) or i <= itl_bound for i in itl) / count)
    assert out["goodput_avg"] * duration <= ttft.size  # never more good requests than successful ones


def test_a_trial_counts_failed_requests_as_misses():
    # four measured requests (one warmup left out): TTFTs 10, 30 and 50 ms, and one failure
    requests = pd.DataFrame({
        "index": range(5), "warmup": [True, False, False, False, False], "scheduled_s": math.nan,
        "start_s": [0.0, 0.0, 0.1, 0.2, 0.3], "first_token_s": [0.001, 0.010, 0.130, 0.250, math.nan],
        "end_s": [0.1, 0.5, 0.6, 1.0, 2.0], "output_tokens": [4, 4, 4, 4, 0],
        "error": ["", "", "", "", "HTTP 500"]})
    metrics = summarise_requests(requests, streaming=True, slo_bounds=(("time_to_first_token", 40.0),))
    assert metrics["good_request_count"] == 2
    assert metrics["time_to_first_token_attainment"] == pytest.approx(2 / 4)
    assert metrics["goodput_avg"] == pytest.approx(2 / 2.0)  # the measured requests span 0.0 to 2.0 s
    assert metrics["request_throughput_avg"] == pytest.approx(3 / 2.0)
    assert "goodput_avg" not in summarise_requests(requests, streaming=True)  # no SLOs, no goodput


# The mock server holds two requests at once; a request takes about 20 + 7 x 30 = 230 ms. At
# concurrency 1 a first token comes after about 20 ms (60 ms on a loaded machine); at 4, half the
# requests wait about 230 ms for a slot first. The bound sits far from both.
SLOS = """\
mock_server: {ttft_ms: 20, itl_ms: 30, capacity: 2}
slos:
  - {metric: time_to_first_token, stat: p99, below: 150}
  - {metric: error_rate, below: 0.01}
objectives:
  - {metric: goodput, stat: avg, direction: maximize}
  - {metric: time_to_first_token, stat: p99, direction: minimize}
"""


def test_a_sweep_reports_goodput_and_which_points_meet_the_slos(instance, study_dir):
    text = sweep_text(free_port(), mock=False).replace("trials: 2", SLOS + "trials: 2").replace("requests: 12",
                                                                                               "requests: 8")
    write_study(study_dir, "slo", text)
    run_study("slo", quiet=True, instance=instance)
    trials = Warehouse().read("slo__trials").set_index(["sweep_point", "trial"])
    calm, queued = trials.loc["concurrency=1"], trials.loc["concurrency=4"]
    # whether a trial met the SLOs is worked out from its statistics when aggregating (the SLOs as
    # they are now); the trials hold what was measured per request
    assert "slos_met" not in trials
    met = Warehouse().read("slo__aggregates").set_index(["sweep_point", "metric"])
    assert met.loc[("concurrency=1", "slos_met"), "mean"] == 1, trials["time_to_first_token_p99"]
    assert met.loc[("concurrency=4", "slos_met"), "mean"] == 0, trials["time_to_first_token_p99"]
    assert (calm["time_to_first_token_attainment"] == 1).all()
    assert (queued["time_to_first_token_attainment"] < 0.75).all()  # about half wait for a slot
    # goodput: the good requests per second of the same duration throughput is counted over
    for _, row in trials.iterrows():
        assert row["goodput_avg"] == pytest.approx(row["good_request_count"] / row["duration_seconds"])
        assert row["goodput_avg"] <= row["request_throughput_avg"] + 1e-9
    # queueing raises throughput but not goodput: the best goodput is the calm point's
    summary = json.loads((latest_dir("slo") / "sweep_aggregate.json").read_text())
    best = summary["best_configurations"]
    assert best["best_goodput"]["sweep_point"] == "concurrency=1"
    assert best["best_throughput"]["sweep_point"] == "concurrency=4"
    assert summary["pareto_sweep_points"] == ["concurrency=1"]  # best on both goodput and TTFT
    report = (latest_dir("slo") / "report.md").read_text()
    assert "## SLOs" in report and "time_to_first_token p99 <= 150 ms; error_rate <= 1 %" in report
    rows = {line.split(" | ")[0]: line for line in report.split("## SLOs")[1].splitlines() if line.startswith("| conc")}
    assert rows["| concurrency=1"].endswith("| 2 of 2 |") and rows["| concurrency=4"].endswith("| 0 of 2 |")
    ledger = Ledger(Warehouse()).read(study="slo").set_index("subject")
    assert ledger.loc["best_goodput", "decision"] == "best" and "highest mean goodput_avg" in \
        ledger.loc["best_goodput", "reason"]


@pytest.mark.parametrize(
    ("slos", "field", "message"),
    [
        ("- {metric: time_to_frist_token, below: 200}", "slos[0].metric", "reports no 'time_to_frist_token'"),
        ("- {metric: time_to_first_token, stat: p42, below: 200}", "slos[0].stat", "p99"),
        ("- {metric: request_latency, below: 0}", "slos[0].below", "a latency bound of 0 ms"),
        ("- {metric: error_rate, below: 5}", "slos[0].below", "an error rate bound of 5"),
        ("- {metric: error_rate, stat: p99, below: 0.01}", "slos[0].stat", "has no statistic"),
        ("- {metric: request_latency, below: 200}\n  - {metric: request_latency, stat: p50, below: 90}",
         "slos[1].metric", "request_latency has an SLO already"),
    ],
)
def test_a_bad_slo_is_one_line_naming_the_field(study_dir, slos, field, message):
    path = write_study(study_dir, "bad", sweep_text(8000) + f"slos:\n  {slos}\n")
    with pytest.raises(StudyError) as raised:
        load_study(path)
    text = str(raised.value)
    assert f": {field}: " in text and message in text and "Fix:" in text and "\n" not in text, text


def test_goodput_as_an_objective_needs_slos_and_latency_slos_need_streaming(study_dir):
    objectives = ("objectives:\n  - {metric: goodput, stat: avg, direction: maximize}\n"
                  "  - {metric: request_latency, stat: p99, direction: minimize}\n")
    with pytest.raises(StudyError, match=r"objectives\[0\]: goodput counts the requests within every latency SLO"):
        load_study(write_study(study_dir, "no_slos", sweep_text(8000) + objectives))
    with pytest.raises(StudyError, match=r"objectives\[0\]: goodput counts"):  # an error-rate SLO bounds no request
        load_study(write_study(study_dir, "errors_only", sweep_text(8000) + objectives
                               + "slos:\n  - {metric: error_rate, below: 0.01}\n"))
    plain = sweep_text(8000).replace("    requests: 12", "    streaming: false\n    requests: 12")
    with pytest.raises(StudyError, match=r"slos\[0\]\.metric: .*need streaming: true"):
        load_study(write_study(study_dir, "plain", plain + "slos:\n  - {metric: time_to_first_token, below: 50}\n"))
    fine = load_study(write_study(study_dir, "fine", plain + objectives + "slos:\n  - {metric: request_latency, below: 90}\n"))
    assert fine.slo_bounds == (("request_latency", 90.0),)
    assert fine.fingerprint() != load_study(write_study(study_dir, "other", plain + objectives.replace(
        "goodput", "request_throughput") + "slos:\n  - {metric: request_latency, below: 80}\n")).fingerprint()
    # What is counted per request is the bounds: a statistic or an error-rate SLO changes nothing measured.
    same = plain + objectives + "slos:\n  - {metric: request_latency, stat: p50, below: 90.0}\n  - {metric: error_rate, below: 0.05}\n"
    assert load_study(write_study(study_dir, "same", same)).fingerprint() == fine.fingerprint()
    assert load_study(write_study(study_dir, "none", sweep_text(8000))).fingerprint() == \
        load_study(write_study(study_dir, "none_again", sweep_text(8000) + "slos: []\n")).fingerprint()


def test_whether_a_trial_met_the_slos_comes_from_its_statistics(study_dir):
    text = sweep_text(8000) + ("slos:\n  - {metric: time_to_first_token, below: 100}\n"
                               "  - {metric: inter_token_latency, stat: p50, below: 20}\n  - {metric: error_rate, below: 0.07}\n")
    study = load_study(write_study(study_dir, "met", text))
    assert [s.label for s in study.spec.slos] == ["time_to_first_token p99 <= 100 ms", "inter_token_latency p50 <= 20 ms",
                                                 "error_rate <= 7 %"]
    good = {"time_to_first_token_p99": 100.0, "inter_token_latency_p50": 5.0, "error_rate": 0.0,
            "successful_request_count": 8}
    assert study.slos_met(good) == 1.0  # on the bound is within it, as for each request's goodput
    assert study.slos_met({**good, "time_to_first_token_p99": 100.5}) == 0.0
    assert study.slos_met({**good, "error_rate": 0.08}) == 0.0
    assert study.slos_met({**good, "time_to_first_token_p99": math.nan}) == 0.0  # not measured: a miss
    # every request had one token: no gap, so no ITL statistic and nothing slow between tokens
    assert study.slos_met({**good, "inter_token_latency_p50": math.nan}) == 1.0
    assert study.slos_met({**good, "inter_token_latency_p50": math.nan, "successful_request_count": 0}) == 0.0


def test_a_point_without_goodput_is_not_ranked_rather_than_called_dominated():
    """An ingested aiperf export has no per-request rows, so no goodput: with goodput an objective,
    its point is left off the frontier and says why, not 'another point is at least as good'."""
    from benchmark_assets.kinds.load_sweep.analysis import Objective, summarise_sweep, sweep_aggregates
    from benchmark_assets.kinds.load_sweep.report import format_report

    trials = pd.DataFrame({
        "sweep_point": ["c1", "c1", "c4", "c4", "c8", "c8"], "status": "ok",
        "goodput_avg": [10.0, 11.0, 20.0, 21.0, math.nan, math.nan],
        "time_to_first_token_p99": [30.0, 31.0, 80.0, 82.0, 20.0, 21.0], "error_rate": 0.0})
    metrics = ["goodput_avg", "time_to_first_token_p99", "error_rate"]
    aggregates = sweep_aggregates(trials, ["c1", "c4", "c8"], metrics, confidence_level=0.95, n_resamples=200,
                                  rng_seed=0, label="t")
    objectives = [Objective("goodput_avg", True), Objective("time_to_first_token_p99", False)]
    summary = summarise_sweep(aggregates, {k: {"concurrency": int(k[1:])} for k in ("c1", "c4", "c8")}, objectives,
                              latency_column="time_to_first_token_p99", failures=trials.iloc[0:0],
                              metadata={"sweep_parameters": [], "num_trials_per_value": 2, "sweep_mode": "repeated",
                                        "url": "u", "confidence_level": 0.95})
    assert summary["not_ranked_for_missing"] == {"c8": ["goodput_avg"]}
    assert summary["pareto_sweep_points"] == ["c1", "c4"]  # c8's lower TTFT does not push c1 off
    assert summary["best_configurations"]["best_latency_p99"]["sweep_point"] == "c1"
    assert "- not ranked: c8 has no goodput_avg" in format_report(summary, objectives, study="s", description="")


def test_the_pareto_plot_draws_the_slo_bound_and_rings_the_points_that_met_it(tmp_path, monkeypatch):
    from benchmark_assets import artifacts
    from benchmark_assets.kinds.load_sweep import report
    from benchmark_assets.kinds.load_sweep.analysis import Objective, summarise_sweep, sweep_aggregates

    trials = pd.DataFrame({"sweep_point": ["c1", "c1", "c4", "c4"], "status": "ok",
                           "request_throughput_avg": [10.0, 11.0, 20.0, 21.0],
                           "time_to_first_token_p99": [30.0, 31.0, 180.0, 190.0], "slos_met": [1.0, 1.0, 0.0, 0.0]})
    metrics = ["request_throughput_avg", "time_to_first_token_p99", "slos_met"]
    aggregates = sweep_aggregates(trials, ["c1", "c4"], metrics, confidence_level=0.95, n_resamples=200, rng_seed=0,
                                  label="t")
    objectives = [Objective("request_throughput_avg", True), Objective("time_to_first_token_p99", False)]
    slo = {"label": "time_to_first_token p99 <= 150 ms", "metric": "time_to_first_token",
           "column": "time_to_first_token_p99", "below": 150.0}
    summary = summarise_sweep(aggregates, {"c1": {"concurrency": 1}, "c4": {"concurrency": 4}}, objectives,
                              latency_column="time_to_first_token_p99", failures=trials.iloc[0:0], metadata={},
                              slos=[slo])
    figures = []
    real = artifacts.figure
    monkeypatch.setattr(artifacts, "figure", lambda *a, **k: figures.append(real(*a, **k)) or figures[-1])
    path = report.plot_pareto(tmp_path, aggregates, summary, objectives)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (axis,) = figures[0][0].axes
    bound = [line for line in axis.get_lines() if line.get_label() == f"SLO: {slo['label']}"]
    assert len(bound) == 1 and list(bound[0].get_ydata()) == [150.0, 150.0]
    (ringed,) = [c for c in axis.collections if c.get_label() == "met every SLO in every trial"]
    assert ringed.get_offsets().tolist() == [[10.5, 30.5]]  # c1 only
