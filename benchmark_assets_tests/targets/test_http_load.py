"""The HTTP load target against the mock server over real HTTP on 127.0.0.1: accuracy, load modes, failures."""
import asyncio
import math
import socket
import threading
import time

import numpy as np
import pytest

from benchmark_assets.servers.mock_llm import MockLLMServer, mock_llm_process
from benchmark_assets.targets.http_load import (
    STATS,
    LoadSpec,
    LoadSpecError,
    metric_names,
    request_body,
    run_load_trial,
    synthetic_prompt,
    validate_load_spec,
)
from benchmark_assets_tests.conftest import free_port

TTFT_MS, ITL_MS, OUTPUT_TOKENS = 20.0, 5.0, 16
SERVICE_SECONDS = (TTFT_MS + (OUTPUT_TOKENS - 1) * ITL_MS) / 1000  # 95 ms per request


@pytest.fixture(scope="module")
def server():
    """A server in its own process, so its timers do not wait on the generator's interpreter."""
    with mock_llm_process(ttft_ms=TTFT_MS, itl_ms=ITL_MS, capacity=4) as url:
        yield url


def trial_of(url, **fields):
    fields = {"output_tokens": OUTPUT_TOKENS, "input_tokens": 32, **fields}
    return run_load_trial(LoadSpec(url=url, **fields))


# --- accuracy at low load -------------------------------------------------------------------------


def test_low_load_ttft_and_itl_match_the_configured_server(server):
    trial = trial_of(server, concurrency=1, requests=8, warmup_requests=1)
    assert trial.status == "ok", trial.error
    m = trial.metrics
    # The measurement includes HTTP and the server's timer wake-ups: above the configured times,
    # never below. How far above depends on how busy the machine is (benchmarks/load_generator.py
    # measures it); the ceilings here only catch a wrong unit or a missing wait.
    for stat in ("avg", "p50"):
        assert TTFT_MS - 0.5 <= m[f"time_to_first_token_{stat}"] <= 3 * TTFT_MS + 20
        assert ITL_MS - 0.2 <= m[f"inter_token_latency_{stat}"] <= 3 * ITL_MS + 5
    assert 1000 * SERVICE_SECONDS - 1 <= m["request_latency_p50"] <= 3000 * SERVICE_SECONDS
    assert (trial.requests["output_tokens"] == OUTPUT_TOKENS).all()


def test_throughput_at_concurrency_one_is_one_over_the_service_time(server):
    trial = trial_of(server, concurrency=1, requests=8)
    # One request at a time cannot beat one per service time; a busy machine only slows it.
    assert 0.4 / SERVICE_SECONDS <= trial.metrics["request_throughput_avg"] <= 1.02 / SERVICE_SECONDS
    assert trial.metrics["output_token_throughput_avg"] == pytest.approx(
        OUTPUT_TOKENS * trial.metrics["request_throughput_avg"])


def test_throughput_has_a_knee_at_the_server_capacity(server):
    at = {c: trial_of(server, concurrency=c, requests=3 * c, warmup_requests=c).metrics for c in (1, 4, 16)}
    throughput = {c: m["request_throughput_avg"] for c, m in at.items()}
    assert throughput[4] > 2.5 * throughput[1]  # below capacity (4): about linear
    assert throughput[16] <= 1.02 * 4 / SERVICE_SECONDS  # four slots can serve no more, whatever the load
    assert at[16]["time_to_first_token_p99"] > 3 * at[4]["time_to_first_token_p99"]  # the wait is in the queue
    assert ITL_MS - 0.2 <= at[16]["inter_token_latency_p50"] <= 3 * ITL_MS + 5  # tokens flow once a slot is had


def test_non_streaming_chat_and_streaming_completions_are_measured(server):
    whole = trial_of(server, concurrency=2, requests=4, streaming=False)
    assert whole.status == "ok", whole.error
    assert set(whole.metrics) == set(metric_names(streaming=False))
    assert 1000 * SERVICE_SECONDS - 1 <= whole.metrics["request_latency_p50"] <= 3000 * SERVICE_SECONDS
    assert whole.requests["first_token_s"].isna().all()
    completions = trial_of(server, concurrency=2, requests=4, endpoint="completions")
    assert completions.status == "ok", completions.error
    assert set(completions.metrics) == set(metric_names(streaming=True))
    assert TTFT_MS - 0.5 <= completions.metrics["time_to_first_token_p50"] <= 3 * TTFT_MS + 20


def test_every_latency_metric_has_every_statistic(server):
    metrics = trial_of(server, concurrency=2, requests=6).metrics
    for name in ("time_to_first_token", "inter_token_latency", "request_latency"):
        values = [metrics[f"{name}_{stat}"] for stat in STATS]
        assert all(math.isfinite(v) for v in values)
        assert metrics[f"{name}_min"] <= metrics[f"{name}_p50"] <= metrics[f"{name}_p99"] <= metrics[f"{name}_max"]
    assert metrics["request_count"] == metrics["successful_request_count"] == 6


def test_without_ignore_eos_usage_gives_the_output_tokens(server):
    trial = trial_of(server, concurrency=2, requests=8, ignore_eos=False)
    tokens = trial.requests["output_tokens"]
    assert trial.status == "ok" and (tokens <= OUTPUT_TOKENS).all() and (tokens >= 1).all()
    assert trial.metrics["output_token_count"] == tokens.sum()


# --- load modes -----------------------------------------------------------------------------------


def gaps_of(trial) -> np.ndarray:
    return np.diff(np.sort(trial.requests["start_s"].to_numpy()))


def test_poisson_arrivals_reach_the_requested_rate_at_random_gaps(server):
    trial = trial_of(server, request_rate=80, arrival="poisson", requests=80, output_tokens=4)
    assert trial.status == "ok", trial.error
    assert trial.metrics["achieved_request_rate"] == pytest.approx(80, rel=0.4)
    gaps = gaps_of(trial)
    assert 0.7 < gaps.std() / gaps.mean() < 1.3  # exponential gaps: coefficient of variation 1
    assert trial.metrics["request_throughput_avg"] == pytest.approx(trial.metrics["achieved_request_rate"], rel=0.3)


def test_poisson_arrivals_are_seeded_and_started_on_schedule(server):
    def schedule(seed):
        trial = trial_of(server, request_rate=200, requests=12, output_tokens=2, seed=seed)
        lateness = trial.requests["start_s"] - trial.requests["scheduled_s"]
        assert (lateness >= 0).all() and lateness.median() < 0.5  # never early; late only by the machine's load
        return np.diff(trial.requests["scheduled_s"].to_numpy())

    first = schedule(seed=5)
    assert np.allclose(first, schedule(seed=5), rtol=0, atol=1e-9)
    assert not np.allclose(first, schedule(seed=6))


def test_constant_arrivals_are_evenly_spaced_at_the_rate(server):
    trial = trial_of(server, request_rate=100, arrival="constant", requests=40, output_tokens=4)
    assert trial.metrics["achieved_request_rate"] == pytest.approx(100, rel=0.3)
    gaps = gaps_of(trial)
    # Interquartile range over the median: one gap stretched by a busy machine cannot move it
    # (the standard deviation did, once: 0.51); exponential (Poisson) gaps give ln 3 / ln 2 = 1.58.
    low, median, high = np.percentile(gaps, [25, 50, 75])
    assert (high - low) / median < 0.5


def test_concurrency_caps_a_request_rate(server):
    capped = trial_of(server, request_rate=200, concurrency=1, requests=6)
    assert 0.4 / SERVICE_SECONDS <= capped.metrics["request_throughput_avg"] <= 1.02 / SERVICE_SECONDS


def test_duration_stops_new_requests_and_lets_those_in_flight_finish(server):
    trial = trial_of(server, concurrency=2, duration_seconds=0.3)
    assert trial.status == "ok", trial.error
    # Requests start for 0.3 s (about 4 rounds of 95 ms at 2 in flight) and the last round completes.
    assert 2 <= trial.metrics["request_count"] <= 10  # at most 4 rounds fit in 0.3 s
    assert trial.duration_seconds >= 0.3
    assert trial.requests["start_s"].max() - trial.requests["start_s"].min() < 0.3


def test_warmup_requests_run_first_and_are_left_out_of_the_metrics(server):
    trial = trial_of(server, concurrency=2, requests=4, warmup_requests=3)
    rows = trial.requests
    warm, measured = rows[rows["warmup"]], rows[~rows["warmup"]]
    assert len(rows) == 7 and len(warm) == 3 and len(measured) == 4
    assert list(warm["index"]) == [0, 1, 2] and list(measured["index"]) == [3, 4, 5, 6]
    assert measured["start_s"].min() >= warm["end_s"].max()  # the measured phase starts after warmup
    assert trial.metrics["request_count"] == 4 and trial.metrics["warmup_request_count"] == 3
    assert trial.duration_seconds == pytest.approx(measured["end_s"].max() - measured["start_s"].min())


# --- errors ---------------------------------------------------------------------------------------


def errors_trial(seed):
    with mock_llm_process(ttft_ms=1, itl_ms=0.5, capacity=8, error_rate=0.2, seed=seed) as url:
        return trial_of(url, concurrency=4, requests=150, output_tokens=4)


def test_error_rate_is_measured_close_to_the_configured_rate_and_is_seeded():
    trial = errors_trial(seed=11)
    assert trial.status == "ok", trial.error
    assert trial.metrics["error_rate"] == pytest.approx(0.2, abs=0.08)
    assert trial.metrics["error_count"] == (trial.requests["error"] != "").sum()
    assert trial.metrics["successful_request_count"] == 150 - trial.metrics["error_count"]
    kinds = set(trial.requests.loc[trial.requests["error"] != "", "error"].str.split(":").str[0])
    assert kinds == {"HTTP 500", "stream error"}  # the mock's "mixed" kind: before and mid-stream
    assert errors_trial(seed=11).metrics["error_count"] == trial.metrics["error_count"]


def test_a_trial_where_every_request_failed_is_failed_with_the_errors_summarised():
    with MockLLMServer(ttft_ms=1, itl_ms=1, error_rate=1.0, error_kind="http") as url:
        trial = trial_of(url, concurrency=2, requests=5)
    assert trial.status == "failed"
    assert trial.error.startswith("all 5 measured requests failed: HTTP 500: mock server: injected failure")
    assert "(x5)" in trial.error
    assert trial.metrics["error_rate"] == 1.0 and "request_throughput_avg" not in trial.metrics


def test_a_dead_endpoint_fails_fast_with_the_url_and_what_to_do():
    url = f"http://127.0.0.1:{free_port()}"
    started = time.perf_counter()
    trial = trial_of(url, concurrency=8, duration_seconds=30, warmup_requests=2)
    assert time.perf_counter() - started < 15  # not the 30 s of the duration
    assert trial.status == "failed"
    assert url in trial.error and "Connection refused" in trial.error and "Start it" in trial.error
    assert len(trial.requests) <= 8


def test_a_server_that_never_answers_is_cut_by_the_request_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # connections complete in the kernel; nothing ever reads or answers
    try:
        started = time.perf_counter()
        trial = trial_of(f"http://127.0.0.1:{listener.getsockname()[1]}", concurrency=4, requests=100,
                         request_timeout_seconds=0.3)
        elapsed = time.perf_counter() - started
    finally:
        listener.close()
    assert elapsed < 7.5  # 100 requests at 0.3 s each, 4 at a time, would take 7.5 s
    assert trial.status == "failed" and "request_timeout_seconds (0.3 s)" in trial.error
    assert len(trial.requests) <= 4


def test_a_server_that_goes_away_mid_trial_stops_the_trial():
    server = MockLLMServer(ttft_ms=1, itl_ms=1)
    url = server.start()
    threading.Timer(0.3, server.stop).start()
    started = time.perf_counter()
    trial = trial_of(url, concurrency=2, duration_seconds=20, output_tokens=4)
    assert time.perf_counter() - started < 15  # not the 20 s of the duration
    assert trial.status == "failed" and "stopped answering after" in trial.error
    assert trial.metrics["successful_request_count"] > 0


# --- the generator itself -------------------------------------------------------------------------


def test_generator_cpu_cost_is_reported_and_small(server):
    trial = trial_of(server, concurrency=4, requests=40, output_tokens=32)
    assert trial.cpu_seconds > 0
    assert trial.metrics["generator_cpu_ms_per_request"] == pytest.approx(trial.cpu_ms_per_request)
    # How small it is (about 2 ms per 32-token request) is measured by benchmarks/load_generator.py.


def test_run_load_trial_works_inside_a_running_event_loop(server):
    async def inside():
        return trial_of(server, concurrency=1, requests=2, output_tokens=2)

    assert asyncio.run(inside()).status == "ok"


def test_prompts_are_seeded_words_of_the_input_length():
    assert synthetic_prompt(3, 50, seed=1) == synthetic_prompt(3, 50, seed=1)
    assert synthetic_prompt(3, 50, seed=1) != synthetic_prompt(3, 50, seed=2)
    assert synthetic_prompt(3, 50, seed=1) != synthetic_prompt(4, 50, seed=1)
    assert len(synthetic_prompt(0, 50, seed=1).split()) == 50
    body = request_body(LoadSpec(url="http://127.0.0.1:1", concurrency=1, requests=1, output_tokens=9,
                                 endpoint="completions"), 0)
    assert b'"max_tokens": 9' in body and b'"ignore_eos": true' in body and b'"prompt": ' in body


# --- validation -----------------------------------------------------------------------------------

VALID = {"url": "http://127.0.0.1:8000", "concurrency": 4, "requests": 10}


@pytest.mark.parametrize("change, words", [
    ({"concurrency": 1.5}, "concurrency is 1.5; give a whole number of requests in flight (a fraction such as 1.5 "
                           "would silently become 1)"),
    ({"concurrency": 0}, "concurrency is 0; give at least 1"),
    ({"concurrency": True}, "concurrency is True"),
    ({"requests": 0}, "requests is 0; give at least 1"),
    ({"duration_seconds": 5}, "both requests and duration_seconds are set; give exactly one"),
    ({"requests": None}, "neither of requests and duration_seconds is set; give exactly one"),
    ({"requests": None, "duration_seconds": 0}, "duration_seconds is 0; give a positive number"),
    ({"warmup_requests": -1}, "warmup_requests is -1; give at least 0"),
    ({"url": "ftp://127.0.0.1:8000"}, "url is 'ftp://127.0.0.1:8000'; give the server's http(s) base URL"),
    ({"url": "http://127.0.0.1:8000/v1/chat/completions"}, "give its base URL such as http://127.0.0.1:8000"),
    ({"concurrency": None}, "no load given; set concurrency"),
    ({"request_rate": 0}, "request_rate is 0; give a positive number"),
    ({"request_rate": 5, "arrival": "burst"}, "arrival is 'burst'; use 'constant'"),
    ({"endpoint": "embeddings"}, "endpoint is 'embeddings'; use 'chat'"),
    ({"input_tokens": 0}, "input_tokens is 0; give at least 1"),
    ({"output_tokens": 2.5}, "output_tokens is 2.5; give a whole number"),
    ({"request_timeout_seconds": -1}, "request_timeout_seconds is -1; give a positive number"),
    ({"streaming": "yes"}, "streaming is 'yes'; give true or false"),
])
def test_invalid_specs_are_refused_naming_the_field_and_fix(change, words):
    spec = LoadSpec(**{**VALID, **change})
    with pytest.raises(LoadSpecError) as caught:
        validate_load_spec(spec)
    assert words in str(caught.value)
    with pytest.raises(LoadSpecError):
        run_load_trial(spec)


def test_valid_specs_pass_validation():
    validate_load_spec(LoadSpec(**VALID))
    validate_load_spec(LoadSpec(url="http://127.0.0.1:8000/", request_rate=2.5, duration_seconds=1.5))
    validate_load_spec(LoadSpec(url="https://localhost:8443", request_rate=10, concurrency=2.0, requests=3))


@pytest.mark.parametrize("burstiness", [0.25, 1.0, 4.0])
def test_gamma_arrivals_keep_the_rate_and_spread_their_gaps_by_burstiness(burstiness):
    """vLLM's --burstiness: gamma gaps with shape b and mean 1 / rate, so their CV is 1 / sqrt(b);
    checked against scipy's gamma over 20,000 seeded gaps (1 is the Poisson process)."""
    import itertools

    from scipy import stats

    from benchmark_assets.targets.http_load import LoadSpec, _arrival_gaps, validate_load_spec

    spec = LoadSpec(url="http://127.0.0.1:1", request_rate=50.0, arrival="gamma", burstiness=burstiness,
                    requests=10, seed=3)
    validate_load_spec(spec)
    gaps = np.array(list(itertools.islice(_arrival_gaps(spec), 20_000)))
    assert gaps.mean() == pytest.approx(1 / 50, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1 / np.sqrt(burstiness), rel=0.05)
    assert stats.kstest(gaps, stats.gamma(burstiness, scale=1 / 50 / burstiness).cdf).pvalue > 0.001
    assert np.array_equal(gaps[:50], list(itertools.islice(_arrival_gaps(spec), 50)))  # seeded
    with pytest.raises(LoadSpecError, match="burstiness is 0"):
        validate_load_spec(LoadSpec(url="http://127.0.0.1:1", request_rate=5.0, arrival="gamma", burstiness=0,
                                    requests=10))
