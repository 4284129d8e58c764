"""A small OpenAI-compatible LLM server with known latency, capacity and error rate, for tests and demos.

The whole reference (what it measures, every option, how it fails): docs/reference/mock_llm.md.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import Literal

from aiohttp import web

from benchmark_assets.processes import die_with_parent

ERROR_KINDS = ("http", "stream", "mixed")
# A bound on one request's output, so a typo (max_tokens: 1e9) cannot tie a slot up for days.
MAX_TOKENS_LIMIT = 100_000
READY_PREFIX = "mock_llm listening on "
# Output text: short common words, each one token in the usual BPE vocabularies when preceded by
# a space, and none needing JSON escapes, so token chunks can be pre-encoded bytes.
_WORDS = tuple(
    " " + word for word in (
        "the of and to in is was for on that with as by at from his it an were are which this be "
        "or has had not first one their its new after who they have her she two been other when "
        "there all during into school time may years more most only over city some world would "
        "where later up such used many can state about national out known university united then "
        "made"
    ).split()
)
_WORD_BYTES = tuple(word.encode() for word in _WORDS)
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_DONE = b"data: [DONE]\n\n"


class MockLLMConfigError(ValueError):
    """A mock server setting that cannot work; the message names the setting and the fix."""


@dataclass(frozen=True)
class MockLLMConfig:
    """How the mock server behaves; see the module docstring for the model."""

    ttft_ms: float = 20.0
    itl_ms: float = 5.0
    capacity: int = 8
    error_rate: float = 0.0
    error_kind: Literal["http", "stream", "mixed"] = "mixed"
    batch_cost: float = 0.0
    model: str = "mock"
    seed: int = 0
    default_max_tokens: int = 16  # a request without max_tokens, as in the OpenAI API

    def pace(self, active: int) -> float:
        """How much slower than configured the engine runs with ``active`` slots in use (>= 1)."""
        if self.batch_cost == 0 or self.capacity == 1:
            return 1.0
        return 1.0 + self.batch_cost * (min(max(active, 1), self.capacity) - 1) / (self.capacity - 1)

    def expected(self, concurrency: int, output_tokens: int) -> dict[str, float]:
        """The steady state under ``concurrency`` requests always in flight, each ``output_tokens``
        long: request throughput (requests/s) and mean TTFT, ITL and request latency (ms).

        HTTP overhead is left out, so a measurement should come out a little slower. Above
        capacity, latency follows from Little's law: requests in flight / throughput."""
        in_service = min(concurrency, self.capacity)
        pace = self.pace(in_service)
        first = self.ttft_ms * pace / 1000
        decode = (output_tokens - 1) * self.itl_ms * pace / 1000
        throughput = in_service / (first + decode)
        latency = concurrency / throughput
        return {
            "request_throughput": throughput,
            "time_to_first_token_ms": (latency - decode) * 1000,
            "inter_token_latency_ms": self.itl_ms * pace,
            "request_latency_ms": latency * 1000,
        }

    def argv(self) -> list[str]:
        """Command-line options that give this configuration."""
        out = []
        for field in fields(self):
            out += ["--" + field.name.replace("_", "-"), str(getattr(self, field.name))]
        return out


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _is_whole(value) -> bool:
    return _is_number(value) and float(value).is_integer()


def validate_mock_config(config: MockLLMConfig) -> None:
    """Raise MockLLMConfigError unless ``config`` describes a server that can run."""
    for name in ("ttft_ms", "itl_ms", "batch_cost"):
        value = getattr(config, name)
        if not _is_number(value) or value < 0:
            raise MockLLMConfigError(f"{name} is {value!r}; give a number >= 0")
    if not _is_whole(config.capacity) or config.capacity < 1:
        raise MockLLMConfigError(f"capacity is {config.capacity!r}; give a whole number of requests >= 1 "
                                 "that the server runs at full speed at once")
    if not _is_number(config.error_rate) or not 0 <= config.error_rate <= 1:
        raise MockLLMConfigError(f"error_rate is {config.error_rate!r}; give a fraction between 0 and 1")
    if config.error_kind not in ERROR_KINDS:
        raise MockLLMConfigError(f"error_kind is {config.error_kind!r}; use one of {', '.join(ERROR_KINDS)}")
    if not isinstance(config.model, str) or not config.model.strip():
        raise MockLLMConfigError(f"model is {config.model!r}; give the model name to report, e.g. 'mock'")
    if not _is_whole(config.seed):
        raise MockLLMConfigError(f"seed is {config.seed!r}; give a whole number")
    if not _is_whole(config.default_max_tokens) or not 1 <= config.default_max_tokens <= MAX_TOKENS_LIMIT:
        raise MockLLMConfigError(f"default_max_tokens is {config.default_max_tokens!r}; give a whole number "
                                 f"from 1 to {MAX_TOKENS_LIMIT}")


# --- the application ------------------------------------------------------------------------------


class _BadRequest(Exception):
    """A request the server refuses with HTTP 400; the message says why."""


def _error_response(status: int, message: str, kind: str, param: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


@dataclass(frozen=True)
class _Job:
    """One parsed completion request."""

    chat: bool
    stream: bool
    model: str
    prompt_tokens: int
    max_tokens: int
    min_tokens: int
    ignore_eos: bool
    include_usage: bool


def _whole_field(body: dict, name: str, default: int | None) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if not _is_whole(value) or not 1 <= value <= MAX_TOKENS_LIMIT:
        raise _BadRequest(f"{name} is {value!r}; give a whole number from 1 to {MAX_TOKENS_LIMIT}")
    return int(value)


def _words(text) -> int:
    """Prompt tokens, counted as whitespace-separated words (the load generator's approximation)."""
    if isinstance(text, str):
        return len(text.split())
    if isinstance(text, list):  # content parts [{"type": "text", "text": ...}] or a list of prompts
        return sum(_words(part.get("text", "") if isinstance(part, dict) else part) for part in text)
    return 0


def _parse(raw: bytes, chat: bool, default_max_tokens: int) -> _Job:
    try:
        body = json.loads(raw)
    except ValueError:
        raise _BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("the request body must be a JSON object")
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise _BadRequest("messages must be a non-empty list of {'role': ..., 'content': ...} objects")
        prompt_tokens = sum(_words(m.get("content")) for m in messages)
        max_tokens = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    else:
        prompt = body.get("prompt")
        if not isinstance(prompt, str | list):
            raise _BadRequest("prompt must be a string")
        prompt_tokens = _words(prompt)
        max_tokens = "max_tokens"
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _BadRequest("model must be a non-empty string")
    stream_options = body.get("stream_options") or {}
    return _Job(
        chat=chat, stream=bool(body.get("stream", False)), model=model, prompt_tokens=prompt_tokens,
        max_tokens=_whole_field(body, max_tokens, default_max_tokens),
        min_tokens=_whole_field(body, "min_tokens", 1), ignore_eos=bool(body.get("ignore_eos", False)),
        include_usage=isinstance(stream_options, dict) and bool(stream_options.get("include_usage")),
    )


class _MockLLM:
    """The engine (slots, queue, seeded draws) and the request handlers of one server."""

    def __init__(self, config: MockLLMConfig):
        self.config = config
        self._slots = asyncio.Semaphore(config.capacity)  # waiters are served first come, first served
        self._failures = random.Random(config.seed)
        self._lengths = random.Random(config.seed + 1)
        self._created = int(time.time())
        self._model_json = json.dumps(config.model)
        self.active = 0
        self.waiting = 0
        self.received = 0
        self.failed = 0
        self.completed = 0

    @contextlib.asynccontextmanager
    async def _slot(self):
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self._slots.release()

    def _draw_failure(self) -> str | None:
        if self.config.error_rate == 0 or self._failures.random() >= self.config.error_rate:
            return None
        kind = self.config.error_kind
        return kind if kind != "mixed" else ("http" if self._failures.random() < 0.5 else "stream")

    def _length(self, job: _Job) -> tuple[int, str]:
        if job.ignore_eos:
            return job.max_tokens, "length"
        length = self._lengths.randint(min(job.min_tokens, job.max_tokens), job.max_tokens)
        return length, "length" if length == job.max_tokens else "stop"

    def _usage(self, job: _Job, tokens: int) -> dict:
        return {"prompt_tokens": job.prompt_tokens, "completion_tokens": tokens,
                "total_tokens": job.prompt_tokens + tokens}

    async def completion(self, request: web.Request, chat: bool) -> web.StreamResponse:
        try:
            job = _parse(await request.read(), chat, self.config.default_max_tokens)
        except _BadRequest as error:
            return _error_response(400, str(error), "invalid_request_error")
        self.received += 1
        failure = self._draw_failure()
        if failure == "http" or (failure and not job.stream):
            self.failed += 1
            return _error_response(500, "mock server: injected failure (error_rate)", "server_error")
        tokens, finish = self._length(job)
        if job.stream:
            return await self._stream(request, job, tokens, finish, fail_at=tokens // 2 if failure else None)
        return await self._whole(job, tokens, finish)

    async def _whole(self, job: _Job, tokens: int, finish: str) -> web.Response:
        config = self.config
        async with self._slot():
            await asyncio.sleep((config.ttft_ms + (tokens - 1) * config.itl_ms) * config.pace(self.active) / 1000)
        self.completed += 1
        text = "".join(_WORDS[k % len(_WORDS)] for k in range(tokens))
        choice = ({"index": 0, "message": {"role": "assistant", "content": text}} if job.chat else
                  {"index": 0, "text": text})
        body = {
            "id": f"{'chatcmpl' if job.chat else 'cmpl'}-{self.received:x}",
            "object": "chat.completion" if job.chat else "text_completion",
            "created": self._created, "model": job.model,
            "choices": [{**choice, "logprobs": None, "finish_reason": finish}],
            "usage": self._usage(job, tokens),
        }
        return web.Response(body=json.dumps(body).encode(), content_type="application/json")

    async def _stream(self, request: web.Request, job: _Job, tokens: int, finish: str,
                      fail_at: int | None) -> web.StreamResponse:
        kind, obj = ("chatcmpl", "chat.completion.chunk") if job.chat else ("cmpl", "text_completion")
        identity = (f'{{"id":"{kind}-{self.received:x}","object":"{obj}","created":{self._created},'
                    f'"model":{json.dumps(job.model)},').encode()
        head = identity + b'"choices":[{"index":0,'
        if job.chat:
            role = head + b'"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n'
            before, after = head + b'"delta":{"content":"', b'"},"logprobs":null,"finish_reason":null}]}\n\n'
            last = head + b'"delta":{},"logprobs":null,"finish_reason":"' + finish.encode() + b'"}]}\n\n'
        else:
            role = b""
            before, after = head + b'"text":"', b'","logprobs":null,"finish_reason":null}]}\n\n'
            last = head + b'"text":"","logprobs":null,"finish_reason":"' + finish.encode() + b'"}]}\n\n'
        if job.include_usage:
            last += b"data: " + identity + b'"choices":[],"usage":' + json.dumps(self._usage(job, tokens)).encode()
            last += b"}\n\n"
        response = web.StreamResponse(headers=_SSE_HEADERS)
        config, loop, words = self.config, asyncio.get_running_loop(), _WORD_BYTES
        try:
            await response.prepare(request)
            async with self._slot():
                if role:
                    await response.write(b"data: " + role)
                deadline = loop.time() + config.ttft_ms * config.pace(self.active) / 1000
                itl = config.itl_ms / 1000
                for k in range(tokens):
                    delay = deadline - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if k == fail_at:
                        self.failed += 1
                        await response.write(b'data: {"error":{"message":"mock server: injected failure '
                                             b'mid-stream (error_rate)","type":"server_error","code":500}}\n\n'
                                             + _DONE)
                        await response.write_eof()
                        return response
                    await response.write(b"data: " + before + words[k % len(words)] + after)
                    deadline += itl * config.pace(self.active)
                await response.write(b"data: " + last + _DONE)
            await response.write_eof()
            self.completed += 1
        except ConnectionError:  # the client went away: nothing to send it
            pass
        return response

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self.completion(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self.completion(request, chat=False)

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": self.config.model, "object": "model", "created": self._created, "owned_by": "benchmark-assets"}
        ]})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "active": self.active, "waiting": self.waiting,
                                  "received": self.received, "completed": self.completed, "failed": self.failed})


def create_app(config: MockLLMConfig | None = None) -> web.Application:
    """The aiohttp application of a mock server; raises MockLLMConfigError for a bad config."""
    config = config or MockLLMConfig()
    validate_mock_config(config)
    server = _MockLLM(config)
    app = web.Application(client_max_size=64 << 20)
    app.add_routes([
        web.post("/v1/chat/completions", server.chat),
        web.post("/v1/completions", server.completions),
        web.get("/v1/models", server.models),
        web.get("/health", server.health),
    ])
    return app


async def _start(config: MockLLMConfig, host: str, port: int) -> tuple[web.AppRunner, str]:
    # No access log: formatting a line per request would cost more than serving it.
    runner = web.AppRunner(create_app(config), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)  # the runner holds the shutdown timeout
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    return runner, f"http://{bound_host}:{bound_port}"


# --- running it -----------------------------------------------------------------------------------


class MockLLMServer:
    """The mock server on a background thread with its own event loop, on 127.0.0.1 and an
    ephemeral port by default. Use ``with MockLLMServer(ttft_ms=10) as url:`` (or ``async with``);
    ``url`` is the base URL (``http://127.0.0.1:PORT``). Fields override those of ``config``."""

    def __init__(self, config: MockLLMConfig | None = None, *, host: str = "127.0.0.1", port: int = 0, **fields):
        self.config = replace(config or MockLLMConfig(), **fields)
        validate_mock_config(self.config)
        self.host, self.port = host, port
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None

    def start(self) -> str:
        if self._thread is not None:
            raise RuntimeError("this MockLLMServer was already started; make a new one")
        self._thread = threading.Thread(target=self._serve, name="mock-llm-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the mock server did not start within 10 s")
        if self._failure is not None:
            raise RuntimeError(f"the mock server could not start on {self.host}:{self.port}: {self._failure}")
        return self.url

    def _serve(self) -> None:
        async def serve():
            self._stop = asyncio.Event()
            try:
                runner, self.url = await _start(self.config, self.host, self.port)
            except Exception as error:  # noqa: BLE001 - handed to the caller of start(), which raises it
                self._failure = error
                return
            finally:
                self._loop = asyncio.get_running_loop()
                self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await runner.cleanup()

        asyncio.run(serve())

    def stop(self) -> None:
        """Stop serving (streams in progress are cut) and wait for the thread; safe to call twice."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None or not thread.is_alive():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
            loop.call_soon_threadsafe(self._stop.set)
        thread.join(10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    async def __aenter__(self) -> str:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc_info) -> None:
        await asyncio.to_thread(self.stop)


@contextlib.contextmanager
def mock_llm_process(config: MockLLMConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
                     startup_timeout: float = 30.0, **fields) -> Iterator[str]:
    """Run the mock server as ``python -m benchmark_assets.servers.mock_llm`` in a subprocess and
    yield its base URL; it is terminated on exit. Its own interpreter means its own GIL: use this
    when the server must not share a core with the code that measures it."""
    config = replace(config or MockLLMConfig(), **fields)
    validate_mock_config(config)
    argv = [sys.executable, "-m", "benchmark_assets.servers.mock_llm", *config.argv(),
            "--host", host, "--port", str(port)]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                   start_new_session=True, preexec_fn=die_with_parent)
        try:
            line = _first_line(process, startup_timeout)
            if not line.startswith(READY_PREFIX):
                process.kill()
                process.wait()
                stderr.seek(0)
                tail = stderr.read()[-2000:].decode(errors="replace").strip()
                raise RuntimeError(f"the mock server did not start (exit code {process.returncode}): "
                                   f"{tail or line or 'no output'}")
            yield line[len(READY_PREFIX):].split()[0]
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            process.stdout.close()


def _first_line(process: subprocess.Popen, timeout: float) -> str:
    """The first line the process prints, or "" if it prints none within ``timeout`` or exits."""
    deadline = time.monotonic() + timeout
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in data and time.monotonic() < deadline:
            if not selector.select(max(0.0, deadline - time.monotonic())):
                break
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\n", 1)[0].decode(errors="replace").strip()


async def serve_forever(config: MockLLMConfig, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until SIGINT or SIGTERM, after printing ``mock_llm listening on URL`` (flushed)."""
    runner, url = await _start(config, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"{READY_PREFIX}{url} (ttft {config.ttft_ms} ms, itl {config.itl_ms} ms, capacity {config.capacity}, "
          f"error rate {config.error_rate})", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    defaults = MockLLMConfig()
    parser = argparse.ArgumentParser(prog="python -m benchmark_assets.servers.mock_llm",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed at start)")
    parser.add_argument("--ttft-ms", type=float, default=defaults.ttft_ms, help="time to first token")
    parser.add_argument("--itl-ms", type=float, default=defaults.itl_ms, help="time between tokens")
    parser.add_argument("--capacity", type=int, default=defaults.capacity,
                        help="requests served at once at full speed; more wait in a queue")
    parser.add_argument("--error-rate", type=float, default=defaults.error_rate, help="fraction of requests that fail")
    parser.add_argument("--error-kind", choices=ERROR_KINDS, default=defaults.error_kind)
    parser.add_argument("--batch-cost", type=float, default=defaults.batch_cost,
                        help="extra time per token at full capacity, as a fraction (0.2: 20%% slower)")
    parser.add_argument("--model", default=defaults.model)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--default-max-tokens", type=int, default=defaults.default_max_tokens)
    args = parser.parse_args(argv)
    config = MockLLMConfig(**{f.name: getattr(args, f.name) for f in fields(MockLLMConfig)})
    try:
        validate_mock_config(config)
    except MockLLMConfigError as error:
        parser.error(str(error))
    try:
        asyncio.run(serve_forever(config, args.host, args.port))
    except OSError as error:
        sys.exit(f"mock_llm: cannot listen on {args.host}:{args.port}: {error.strerror or error}; "
                 "pick another --port (0 picks a free one)")


if __name__ == "__main__":
    main()
