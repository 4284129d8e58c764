"""Load sweeps materialised on a real Dagster instance against the mock server over loopback."""
import json

import pytest
from dagster import AssetKey

from benchmark_assets.artifacts import latest_dir
from benchmark_assets.defs.runner import run_study
from benchmark_assets.ledger import Ledger
from benchmark_assets.servers.mock_llm import MockLLMServer
from benchmark_assets.stats.intervals import positive_mean_interval
from benchmark_assets.studies import StudyError, load_study
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.conftest import free_port, planned_rerun, write_study


def sweep_text(port: int, *, mock: bool = True, trials: int = 2, extra: str = "") -> str:
    server = "mock_server: {ttft_ms: 5, itl_ms: 2, capacity: 2}\n" if mock else ""
    return f"""\
kind: load_sweep
description: toy sweep for tests
target:
  http_load:
    url: http://127.0.0.1:{port}
    concurrency: [1, 4]
    output_tokens: 8
    input_tokens: 16
    requests: 12
    warmup_requests: 2
    request_timeout_seconds: 5
{server}trials: {trials}
{extra}"""


def test_load_sweep_end_to_end_with_pareto_best_configurations_and_exports(instance, study_dir):
    write_study(study_dir, "sweep", sweep_text(free_port()))
    outcome = run_study("sweep", quiet=True, instance=instance)
    key = lambda name: AssetKey(["sweep", name])  # noqa: E731
    assert len(instance.get_materialized_partitions(key("trials"))) == 4
    assert set(instance.get_materialized_partitions(key("aggregates"))) == {"concurrency=1", "concurrency=4"}
    assert outcome.points == 2

    trials = Warehouse().read("sweep__trials")
    assert (trials["status"] == "ok").all() and len(trials) == 4
    assert (trials["successful_request_count"] == 12).all()
    # repeated order: trial 0 of every point runs before trial 1 of any point
    order = trials.sort_values("started_at")[["trial", "sweep_point"]].values.tolist()
    assert order == [[0, "concurrency=1"], [0, "concurrency=4"], [1, "concurrency=1"], [1, "concurrency=4"]]

    aggregates = Warehouse().read("sweep__aggregates").set_index(["sweep_point", "metric"])
    throughput = aggregates.loc[("concurrency=4", "request_throughput_avg")]
    assert throughput["n"] == 2 and not throughput["single_run"] and throughput["t_low"] <= throughput["mean"]
    assert throughput["mean"] > aggregates.loc[("concurrency=1", "request_throughput_avg"), "mean"]
    # Latencies and rates: an interval on the log scale (Cox's), above 0 even from two trials.
    scaled = aggregates[aggregates.index.get_level_values("metric").str.startswith(
        ("time_to_first_token_", "inter_token_latency_", "request_latency_", "request_throughput"))]
    assert len(scaled) and (scaled["t_low"] > 0).all() and (scaled["t_low"] < scaled["t_high"]).all()
    ttft = trials[trials["sweep_point"] == "concurrency=4"]["time_to_first_token_p99"]
    expected = positive_mean_interval(ttft)
    assert tuple(aggregates.loc[("concurrency=4", "time_to_first_token_p99"), ["t_low", "t_high"]]) == \
        pytest.approx(expected)
    errors = aggregates.loc[("concurrency=4", "error_rate")]  # a share keeps the t-interval (here 0 wide)
    assert errors["t_low"] == errors["t_high"] == 0

    folder = latest_dir("sweep")
    summary = json.loads((folder / "sweep_aggregate.json").read_text())
    assert set(summary) >= {"metadata", "per_combination_metrics", "best_configurations", "pareto_optimal", "trends"}
    assert summary["metadata"]["sweep_parameters"] == [{"name": "concurrency", "values": [1, 4]}]
    assert summary["best_configurations"]["best_throughput"]["parameters"] == {"concurrency": 4}
    assert summary["best_configurations"]["best_latency_p99"]["metric"] == "time_to_first_token_p99"
    assert {"concurrency": 4} in summary["pareto_optimal"]
    assert summary["per_combination_metrics"][0]["metrics"]["request_throughput_avg"]["n"] == 2
    assert {p.name for p in (folder / "per_value").iterdir()} == {
        "concurrency_1.json", "concurrency_1.csv", "concurrency_4.json", "concurrency_4.csv"}
    assert (folder / "plots" / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Pareto-optimal" in (folder / "report.md").read_text()

    # The best configurations and every point's place on the frontier join the ledger.
    ledger = Ledger(Warehouse()).read(study="sweep").set_index("subject")
    assert set(ledger["kind"]) == {"load_sweep"}
    best = ledger.loc["best_throughput"]
    assert best["decision"] == "best" and json.loads(best["proposal"]) == {"concurrency": 4}
    assert best["effect"] == pytest.approx(throughput["mean"]) and best["ci_low"] == pytest.approx(throughput["t_low"])
    assert ledger.loc["best_latency_p99", "metric"] == "time_to_first_token_p99"
    frontier = {key: ledger.loc[key, "decision"] for key in ("concurrency=1", "concurrency=4")}
    assert frontier == {key: "pareto_optimal" if {"concurrency": int(key.split("=")[1])} in summary["pareto_optimal"]
                        else "dominated" for key in frontier}


def test_a_dead_endpoint_fails_every_trial_quickly_and_the_summary_lists_them(instance, study_dir):
    write_study(study_dir, "dead", sweep_text(free_port(), mock=False, trials=1))
    run_study("dead", quiet=True, instance=instance)
    trials = Warehouse().read("dead__trials")
    assert (trials["status"] == "failed").all()
    assert trials["error"].str.contains("127.0.0.1").all()
    assert (trials["wall_seconds"] < 15).all()  # refused at once, not after the request timeout of every request
    summary = json.loads((latest_dir("dead") / "sweep_aggregate.json").read_text())
    assert len(summary["failed_trials"]) == 2 and summary["pareto_optimal"] == []
    aggregates = Warehouse().read("dead__aggregates")
    assert (aggregates["n"] == 0).all() and (aggregates["n_failed"] == 1).all()
    ledger = Ledger(Warehouse()).read(study="dead")
    assert sorted(ledger["subject"]) == ["concurrency=1", "concurrency=4"] and set(ledger["decision"]) == {"no_data"}


def test_one_successful_trial_is_flagged_single_run_without_an_interval(instance, study_dir):
    write_study(study_dir, "once", sweep_text(free_port(), trials=1))
    run_study("once", quiet=True, instance=instance)
    aggregates = Warehouse().read("once__aggregates")
    assert aggregates["single_run"].all() and aggregates["t_low"].isna().all()
    assert "(single run)" in (latest_dir("once") / "report.md").read_text()


def test_load_trials_on_one_endpoint_never_overlap_across_runs(instance, study_dir):
    """Two `benchmark-assets run` processes sweep the same server at once: the endpoint's pool
    (limit 1) makes one run's trials step wait until the other's has finished. The instance
    exists before they start (the `instance` fixture creates its databases), as a user's does:
    two processes creating a fresh SQLite instance at the same moment race on its tables."""
    import subprocess
    import sys

    port = free_port()
    studies = [load_study(write_study(study_dir, name, sweep_text(port, mock=False))) for name in ("first", "second")]
    assert studies[0].endpoint_pool == studies[1].endpoint_pool == f"load_endpoint_127_0_0_1_{port}"
    command = [sys.executable, "-m", "benchmark_assets.cli", "run", "--quiet"]
    with MockLLMServer(port=port, ttft_ms=5, itl_ms=2, capacity=2):
        runs = [subprocess.Popen([*command, s.name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for s in studies]
        errors = [run.communicate(timeout=240)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [e[-3000:] for e in errors]
    spans = []
    for study in studies:
        rows = Warehouse().read(f"{study.name}__trials")
        assert (rows["status"] == "ok").all() and len(rows) == 4
        spans.append((rows["started_at"].min(), (rows["started_at"] + rows["wall_seconds"]).max()))
    (a_start, a_end), (b_start, b_end) = spans
    assert a_end <= b_start or b_end <= a_start, spans


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (("concurrency: [1, 4]", "concurrency: [1, 1.5, 4]"), "target.http_load.concurrency[1]", "whole numbers"),
        (("concurrency: [1, 4]", "concurrency: [1, 4, 4]"), "target.http_load.concurrency", "duplicate values ['4']"),
        (("concurrency: [1, 4]", "concurrency: []"), "target.http_load.concurrency", "empty list"),
        (("concurrency: [1, 4]", "concurrency: [0, 4]"), "target.http_load.concurrency[0]", "at least 1"),
        (("trials: 2", "trials: 2\ncooldown_seconds: 1"), "cooldown_seconds", "only applies to a sweep"),
        (("requests: 12", "requests: 12\n    duration_seconds: 3"), "target.http_load", "exactly one of requests"),
        (("url: http://", "url: ftp://"), "target.http_load.url", "not an http(s) URL"),
    ],
)
def test_bad_load_sweep_is_one_line_naming_the_field(study_dir, change, field, message):
    text = sweep_text(8000)
    if field == "cooldown_seconds":
        text = text.replace("concurrency: [1, 4]", "concurrency: 4")
    path = write_study(study_dir, "bad", text.replace(*change))
    with pytest.raises(StudyError) as raised:
        load_study(path)
    text = str(raised.value)
    assert f": {field}: " in text and message in text and "Fix:" in text and "\n" not in text


def test_load_sweep_sensor_registers_points_and_reruns_what_an_edit_affects(instance, study_dir):
    from dagster import build_sensor_context

    from benchmark_assets.definitions import build_definitions

    path = write_study(study_dir, "watched", sweep_text(8000))
    repository = build_definitions([load_study(path)]).get_repository_def()
    sensor = repository.get_sensor_def("watched__study_changes")

    def tick(cursor=None):
        return sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=repository, cursor=cursor))

    def requested(result):
        planned = planned_rerun(instance, result.run_requests[0], path)
        return planned.get("trials", set()), planned["aggregates"]

    first = tick()
    assert not first.run_requests
    assert [list(r.partition_keys) for r in first.dynamic_partitions_requests] == [["concurrency=1", "concurrency=4"],
                                                                                   ["0", "1"]]
    instance.add_dynamic_partitions("watched__load_points", ["concurrency=1", "concurrency=4"])
    instance.add_dynamic_partitions("watched__load_trials", ["0", "1"])

    path.write_text(path.read_text().replace("concurrency: [1, 4]", "concurrency: [1, 4, 8]"))
    second = tick(first.cursor)
    assert list(second.dynamic_partitions_requests[0].partition_keys) == ["concurrency=8"]
    assert requested(second) == ({"concurrency=8|0", "concurrency=8|1"}, {"concurrency=8"})
    instance.add_dynamic_partitions("watched__load_points", ["concurrency=8"])

    path.write_text(path.read_text().replace("trials: 2", "trials: 2\nobjectives:\n"
                                             "  - {metric: request_throughput, stat: avg, direction: maximize}\n"
                                             "  - {metric: request_latency, stat: p90, direction: minimize}"))
    third = tick(second.cursor)
    assert requested(third) == (set(), {"concurrency=1", "concurrency=4", "concurrency=8"})

    # One more trial per point: only the new trial number runs, everywhere, without a reload.
    path.write_text(path.read_text().replace("trials: 2", "trials: 3"))
    fourth = tick(third.cursor)
    assert [list(r.partition_keys) for r in fourth.dynamic_partitions_requests] == [["2"]]
    assert requested(fourth)[0] == {"concurrency=1|2", "concurrency=4|2", "concurrency=8|2"}
    instance.add_dynamic_partitions("watched__load_trials", ["2"])

    path.write_text(path.read_text().replace("ttft_ms: 5", "ttft_ms: 6"))
    assert len(requested(tick(fourth.cursor))[0]) == 9


@pytest.mark.parametrize(
    ("objectives", "field", "message"),
    [
        ("  - {metric: request_throughput, stat: avg, direction: maximize}\n", "objectives", "needs two or more"),
        ("  - {metric: request_throughput, stat: avg, direction: maximize}\n"
         "  - {metric: time_to_first_tokn, stat: p99, direction: minimize}\n", "objectives[1]",
         "reports no time_to_first_tokn_p99"),
        ("  - {metric: request_throughput, stat: p99, direction: maximize}\n"
         "  - {metric: request_latency, stat: p99, direction: minimize}\n", "objectives[0]",
         "reports no request_throughput_p99"),
    ],
)
def test_objectives_the_target_cannot_report_are_refused_at_load(study_dir, objectives, field, message):
    path = write_study(study_dir, "objectives", sweep_text(8000, extra="objectives:\n" + objectives))
    with pytest.raises(StudyError) as raised:
        load_study(path)
    assert f": {field}: " in str(raised.value) and message in str(raised.value)


def test_latency_objectives_without_streaming_say_why(study_dir):
    text = sweep_text(8000).replace("    input_tokens: 16\n", "    input_tokens: 16\n    streaming: false\n")
    with pytest.raises(StudyError, match="need streaming: true"):
        load_study(write_study(study_dir, "nostream", text + "objectives:\n"
                               "  - {metric: request_throughput, stat: avg, direction: maximize}\n"
                               "  - {metric: time_to_first_token, stat: p99, direction: minimize}\n"))
    default = load_study(write_study(study_dir, "nostream2", text))
    assert [o.column for o in default.objectives] == ["request_throughput_avg", "request_latency_p99"]


def test_seeds_stay_with_their_point_and_a_v1_base_url_is_accepted(study_dir):
    study = load_study(write_study(study_dir, "seeds", sweep_text(8000).replace(":8000", ":8000/v1/")))
    assert study.load.url == "http://127.0.0.1:8000"
    grown = load_study(write_study(study_dir, "seeds2", sweep_text(8000).replace("[1, 4]", "[1, 2, 4]")))
    assert study.trial_seed(study.point("concurrency=4"), 1) == grown.trial_seed(grown.point("concurrency=4"), 1)
    assert study.trial_seed(study.point("concurrency=1"), 0) != study.trial_seed(study.point("concurrency=4"), 0)


def test_a_point_removed_from_the_study_is_skipped_and_the_others_still_run(study_dir):
    from benchmark_assets.kinds.load_sweep.trials import run_sweep_trials

    study = load_study(write_study(study_dir, "removed", sweep_text(free_port())))
    messages = []
    frame = run_sweep_trials(study, [("concurrency=1", 0), ("concurrency=99", 0)], log=messages.append)
    assert frame["sweep_point"].tolist() == ["concurrency=1"] and (frame["status"] == "ok").all()
    assert "skipping sweep points no longer in removed.yaml: ['concurrency=99']" in messages[0]


def test_a_rerun_keeps_only_recent_successful_checkpointed_trials_of_the_current_settings(study_dir):
    import time

    import pandas as pd

    from benchmark_assets.kinds import kind_of
    from benchmark_assets.kinds.load_sweep.trials import resumable

    write_study(study_dir, "resume", """\
        kind: load_sweep
        target:
          http_load: {url: "http://127.0.0.1:9", concurrency: [1, 2], output_tokens: 4, requests: 4}
        trials: 2
        resume_within_minutes: 30
        """)
    study = load_study("resume")
    now, fp = time.time(), study.fingerprint()
    rows = pd.DataFrame([
        {"sweep_point": "concurrency=1", "trial": 0, "status": "ok", "fingerprint": fp, "started_at": now - 60},
        {"sweep_point": "concurrency=1", "trial": 1, "status": "failed", "fingerprint": fp, "started_at": now},
        {"sweep_point": "concurrency=2", "trial": 0, "status": "ok", "fingerprint": "other", "started_at": now},
        {"sweep_point": "concurrency=2", "trial": 1, "status": "ok", "fingerprint": fp,
         "started_at": now - 31 * 60},
        {"sweep_point": "concurrency=8", "trial": 0, "status": "ok", "fingerprint": fp, "started_at": now},
    ])
    kept = resumable(study, rows)
    assert list(zip(kept["sweep_point"], kept["trial"])) == [("concurrency=1", 0)]
    assert kind_of(study).resumable_trials(study, rows) == {("concurrency=1", "0")}
    assert resumable(study, rows.drop(columns="fingerprint")).empty  # written by an older version
    never = load_study(write_study(study_dir, "never", (study_dir / "resume.yaml").read_text().replace(
        "resume_within_minutes: 30", "resume_within_minutes: 0")))
    assert resumable(never, rows.assign(fingerprint=never.fingerprint())).empty


@pytest.mark.parametrize(("load", "message"), [
    ("request_rate: [5, 10]\n    arrival: gamma\n    burstiness: 0", "burstiness 0 is not above 0"),
    ("request_rate: [5, 10]\n    burstiness: 0.25", "burstiness shapes gamma arrivals, and arrival is poisson"),
])
def test_gamma_arrivals_are_checked_at_load_and_leave_other_studies_fingerprints_alone(study_dir, load, message):
    text = sweep_text(8000).replace("concurrency: [1, 4]", load)
    with pytest.raises(StudyError) as raised:
        load_study(write_study(study_dir, "bursty", text))
    assert ": target.http_load: " in str(raised.value) and message in str(raised.value)
    bursty = load_study(write_study(study_dir, "fine", sweep_text(8000).replace(
        "concurrency: [1, 4]", "request_rate: [5, 10]\n    arrival: gamma\n    burstiness: 0.25")))
    assert bursty.load_spec(bursty.points[0], 0).burstiness == 0.25
    plain = load_study(write_study(study_dir, "plain", sweep_text(8000)))
    assert plain.load_spec(plain.points[0], 0).burstiness == 1.0
    # a study without burstiness hashes as it did before the option existed (its trials stay current):
    # the fingerprint 942cddf (before SLOs) and 82314be (before burstiness) computed for this text
    assert plain.fingerprint() == "92064ed1628d432f"
