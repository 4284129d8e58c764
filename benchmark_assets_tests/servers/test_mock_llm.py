"""The mock OpenAI-compatible server, over real HTTP on 127.0.0.1: response shapes, timing, capacity, errors."""
import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmark_assets.servers.mock_llm import (
    MockLLMConfig,
    MockLLMConfigError,
    MockLLMServer,
    mock_llm_process,
    validate_mock_config,
)
from benchmark_assets_tests.conftest import ROOT, proc_status


def post(url: str, body: dict, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def events(raw: bytes) -> list:
    """The data of each server-sent event: a decoded JSON object, or the text '[DONE]'."""
    out = []
    for event in raw.decode().split("\n\n"):
        if event.strip():
            assert event.startswith("data: "), event
            data = event[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def chat(prompt="one two three", **options) -> dict:
    return {"model": "mock", "messages": [{"role": "user", "content": prompt}], **options}


@pytest.fixture(scope="module")
def server():
    with MockLLMServer(ttft_ms=2, itl_ms=1, capacity=4) as url:
        yield url


# --- shapes ---------------------------------------------------------------------------------------


def test_streamed_chat_is_well_formed_openai_chunks_with_usage_and_done(server):
    status, raw = post(server + "/v1/chat/completions", chat(
        max_tokens=5, ignore_eos=True, stream=True, stream_options={"include_usage": True}))
    assert status == 200
    chunks = events(raw)
    assert chunks[-1] == "[DONE]"
    *choices_chunks, usage_chunk, _ = chunks
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "mock" for c in chunks[:-1])
    assert len({c["id"] for c in chunks[:-1]}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert choices_chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    contents = [c["choices"][0]["delta"].get("content") for c in choices_chunks[1:-1]]
    assert len(contents) == 5 and all(isinstance(text, str) and text for text in contents)
    assert choices_chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}


def test_streamed_chat_sends_usage_only_when_asked(server):
    chunks = events(post(server + "/v1/chat/completions", chat(max_tokens=3, ignore_eos=True, stream=True))[1])
    assert chunks[-1] == "[DONE]"
    assert not any("usage" in c for c in chunks[:-1])


def test_whole_chat_answer_has_message_finish_reason_and_usage(server):
    status, raw = post(server + "/v1/chat/completions", chat("a b c d", max_completion_tokens=7, ignore_eos=True))
    answer = json.loads(raw)
    assert status == 200 and answer["object"] == "chat.completion" and answer["model"] == "mock"
    choice = answer["choices"][0]
    assert choice["message"]["role"] == "assistant" and len(choice["message"]["content"].split()) == 7
    assert choice["finish_reason"] == "length"
    assert answer["usage"] == {"prompt_tokens": 4, "completion_tokens": 7, "total_tokens": 11}


def test_completions_stream_and_whole_answer_are_well_formed(server):
    body = {"model": "m2", "prompt": "x y", "max_tokens": 4, "ignore_eos": True}
    chunks = events(post(server + "/v1/completions", {**body, "stream": True,
                                                        "stream_options": {"include_usage": True}})[1])
    texts = [c["choices"][0]["text"] for c in chunks[:-2]]
    assert all(c["object"] == "text_completion" and c["model"] == "m2" for c in chunks[:-1])
    assert sum(1 for t in texts if t) == 4 and chunks[-3]["choices"][0]["finish_reason"] == "length"
    assert chunks[-2]["usage"]["completion_tokens"] == 4 and chunks[-1] == "[DONE]"
    answer = json.loads(post(server + "/v1/completions", body)[1])
    assert answer["object"] == "text_completion" and len(answer["choices"][0]["text"].split()) == 4
    assert answer["usage"] == {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}


def test_without_ignore_eos_the_model_may_stop_early_but_not_before_min_tokens(server):
    lengths, reasons = [], set()
    for _ in range(20):
        answer = json.loads(post(server + "/v1/completions", {"model": "m", "prompt": "p", "max_tokens": 10,
                                                              "min_tokens": 4})[1])
        lengths.append(answer["usage"]["completion_tokens"])
        reasons.add(answer["choices"][0]["finish_reason"])
    assert all(4 <= n <= 10 for n in lengths) and min(lengths) < 10
    assert "stop" in reasons


def test_models_and_health(server):
    models = get(server + "/v1/models")
    assert models["object"] == "list" and models["data"][0]["id"] == "mock"
    health = get(server + "/health")
    assert health["status"] == "ok" and health["active"] == 0 and health["received"] >= 0


@pytest.mark.parametrize("body, words", [
    (b"not json", "not valid JSON"),
    (json.dumps({"model": "m", "messages": []}).encode(), "messages must be"),
    (json.dumps(chat(max_tokens=0)).encode(), "max_tokens is 0"),
    (json.dumps(chat(max_tokens=1.5)).encode(), "max_tokens is 1.5"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), "model must be"),
])
def test_bad_requests_get_400_with_an_openai_error(server, body, words):
    request = urllib.request.Request(server + "/v1/chat/completions", data=body)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    error = json.loads(caught.value.read())["error"]
    assert words in error["message"] and error["type"] == "invalid_request_error"


# --- timing and capacity --------------------------------------------------------------------------


def test_whole_answer_takes_ttft_plus_the_remaining_tokens():
    with MockLLMServer(ttft_ms=30, itl_ms=10, capacity=2) as url:
        started = time.perf_counter()
        post(url + "/v1/completions", {"model": "m", "prompt": "p", "max_tokens": 8, "ignore_eos": True})
        elapsed = time.perf_counter() - started
    assert 0.100 <= elapsed < 1.0  # 30 + 7 x 10 ms at least; a busy machine only adds to it


def test_requests_past_capacity_wait_in_a_queue():
    body = {"model": "m", "prompt": "p", "max_tokens": 6, "ignore_eos": True}  # 20 + 5 x 10 = 70 ms each

    def four_at_once(url):
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: post(url + "/v1/completions", body), range(4)))
        return time.perf_counter() - started

    with MockLLMServer(ttft_ms=20, itl_ms=10, capacity=4) as url:
        in_parallel = four_at_once(url)
    with MockLLMServer(ttft_ms=20, itl_ms=10, capacity=1) as url:
        one_by_one = four_at_once(url)
    assert one_by_one >= 4 * 0.070  # one slot: each waits for the one before
    assert in_parallel < one_by_one / 2  # four slots: they overlap (about 70 ms against 280)


def test_expected_steady_state_has_a_knee_at_capacity():
    config = MockLLMConfig(ttft_ms=20, itl_ms=5, capacity=8)
    service = 0.020 + 63 * 0.005
    assert config.expected(1, 64)["request_throughput"] == pytest.approx(1 / service)
    assert config.expected(8, 64)["request_throughput"] == pytest.approx(8 / service)
    beyond = config.expected(32, 64)
    assert beyond["request_throughput"] == pytest.approx(8 / service)
    assert beyond["request_latency_ms"] == pytest.approx(4 * service * 1000)
    assert beyond["time_to_first_token_ms"] == pytest.approx((4 * service - 63 * 0.005) * 1000)
    assert config.expected(4, 64)["time_to_first_token_ms"] == pytest.approx(20)


def test_batch_cost_slows_a_busy_engine_before_capacity():
    config = MockLLMConfig(ttft_ms=20, itl_ms=5, capacity=5, batch_cost=0.4)
    assert config.pace(1) == 1.0 and config.pace(5) == pytest.approx(1.4) and config.pace(50) == pytest.approx(1.4)
    one, three, five = (config.expected(c, 16) for c in (1, 3, 5))
    assert one["request_throughput"] < three["request_throughput"] < five["request_throughput"]
    assert one["time_to_first_token_ms"] < three["time_to_first_token_ms"] < five["time_to_first_token_ms"]


# --- errors ---------------------------------------------------------------------------------------


def test_http_errors_are_500_with_an_error_object():
    with MockLLMServer(ttft_ms=1, itl_ms=1, error_rate=1.0, error_kind="http") as url:
        status, raw = post(url + "/v1/chat/completions", chat(max_tokens=4, stream=True))
        health = get(url + "/health")
    assert status == 500 and json.loads(raw)["error"]["type"] == "server_error"
    assert health["failed"] == 1


def test_stream_errors_come_after_half_the_tokens_then_done():
    with MockLLMServer(ttft_ms=1, itl_ms=1, error_rate=1.0, error_kind="stream") as url:
        status, raw = post(url + "/v1/chat/completions", chat(max_tokens=6, ignore_eos=True, stream=True))
        whole_status, _ = post(url + "/v1/chat/completions", chat(max_tokens=6))
    chunks = events(raw)
    assert status == 200 and chunks[-1] == "[DONE]" and "error" in chunks[-2]
    assert sum(1 for c in chunks[:-2] if c["choices"][0]["delta"].get("content")) == 3
    assert whole_status == 500  # without streaming there is no middle to fail in


def test_errors_are_seeded_and_near_the_configured_rate():
    def failures(seed):
        with MockLLMServer(ttft_ms=0, itl_ms=0, error_rate=0.3, error_kind="http", seed=seed) as url:
            return [post(url + "/v1/completions", {"model": "m", "prompt": "p", "max_tokens": 1})[0] == 500
                    for _ in range(100)]

    first = failures(seed=3)
    assert first == failures(seed=3)
    assert first != failures(seed=4)
    assert 0.2 <= sum(first) / 100 <= 0.4


# --- config and running ---------------------------------------------------------------------------


@pytest.mark.parametrize("fields, words", [
    ({"capacity": 1.5}, "capacity is 1.5; give a whole number"),
    ({"capacity": 0}, "capacity is 0"),
    ({"error_rate": 2}, "error_rate is 2; give a fraction"),
    ({"ttft_ms": -1}, "ttft_ms is -1"),
    ({"error_kind": "sometimes"}, "error_kind is 'sometimes'; use one of http, stream, mixed"),
    ({"model": " "}, "model is ' '"),
])
def test_invalid_config_is_refused_with_the_fix(fields, words):
    with pytest.raises(MockLLMConfigError, match=words.replace("(", r"\(")):
        validate_mock_config(MockLLMConfig(**fields))
    with pytest.raises(MockLLMConfigError):
        MockLLMServer(**fields)


def refused(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) != 0


def test_thread_server_listens_on_loopback_ephemeral_port_and_stops():
    server = MockLLMServer()
    with server as url:
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        assert get(url + "/health")["status"] == "ok"
    assert refused(url)
    server.stop()  # a second stop is harmless


def test_thread_server_works_as_an_async_context_manager():
    async def main():
        async with MockLLMServer(ttft_ms=1, itl_ms=1) as url:
            return url, await asyncio.to_thread(get, url + "/health")

    url, health = asyncio.run(main())
    assert health["status"] == "ok" and refused(url)


def test_thread_server_stops_while_a_stream_is_in_flight():
    server = MockLLMServer(ttft_ms=1, itl_ms=50)
    url = server.start()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, url + "/v1/chat/completions", chat(max_tokens=100, ignore_eos=True, stream=True))
        time.sleep(0.1)
        started = time.perf_counter()
        server.stop()
        assert time.perf_counter() - started < 4.5  # not the 5 s the stream still had to go
        with pytest.raises(Exception):
            pending.result(timeout=5)


def test_process_server_runs_the_module_and_is_terminated():
    with mock_llm_process(MockLLMConfig(ttft_ms=1, itl_ms=1, capacity=2)) as url:
        assert url.startswith("http://127.0.0.1:")
        status, raw = post(url + "/v1/completions", {"model": "m", "prompt": "p", "max_tokens": 2, "ignore_eos": True})
        assert status == 200 and json.loads(raw)["usage"]["completion_tokens"] == 2
    assert refused(url)


def test_command_line_refuses_a_bad_setting_with_its_fix():
    result = subprocess.run([sys.executable, "-m", "benchmark_assets.servers.mock_llm", "--capacity", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "capacity is 0" in result.stderr


def test_a_mock_server_dies_with_its_parent_even_when_the_parent_is_killed(tmp_path):
    """kill -9 of a load sweep runs no cleanup; the server must not stay behind on its port."""
    import os
    import signal
    import subprocess
    import sys

    code = ("import os, sys, time\n"
            "from benchmark_assets.servers.mock_llm import mock_llm_process\n"
            "with mock_llm_process(ttft_ms=1, itl_ms=1) as url:\n"
            "    print(url, flush=True)\n"
            "    time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = parent.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:")
    children = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) == 1
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.path.exists(f"/proc/{children[0]}"):
        status = proc_status(children[0])
        if "State:\tZ" in status:  # reaped by init soon; already dead
            break
        time.sleep(0.1)
    status = proc_status(children[0])
    assert not status or "State:\tZ" in status, status[:200]
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/health", timeout=2)
