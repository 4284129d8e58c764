"""The HTTP load target: drives an OpenAI-compatible endpoint with synthetic prompts and measures it.

The whole reference (what it measures, every option, how it fails): docs/reference/http_load.md.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import math
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import pandas as pd

from benchmark_assets.stats.intervals import describe

ENDPOINT_PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
ARRIVALS = ("constant", "poisson", "gamma")
STATS = ("avg", "min", "max", "std", "p50", "p90", "p95", "p99")
LATENCY_METRICS = ("time_to_first_token", "inter_token_latency", "request_latency")
COUNT_METRICS = ("request_count", "successful_request_count", "error_count", "error_rate", "output_token_count",
                 "warmup_request_count", "duration_seconds", "achieved_request_rate", "generator_cpu_ms_per_request")
# In-flight ceiling of an uncapped request-rate trial: against a server that stopped answering,
# the open loop would otherwise pile up rate x timeout connections before the first timeout.
MAX_IN_FLIGHT = 1024
# How often the end of a stream is checked for a full read buffer (see _read_stream).
_DRAIN_SECONDS = 0.5
# An error text is kept to this many characters (a server may answer with a whole HTML page).
ERROR_CHARS = 300
# Short common words, one BPE token each after a space; none needs escaping in JSON.
VOCABULARY = tuple(
    "the of and to in is was for on that with as by at from his it an were are which this be or has had not "
    "first one their its new after who they have her she two been other when there all during into school "
    "time may years more most only over city some world would where later up such used many can state about "
    "national out known university united then made also team season film between three both under while "
    "since well before being part year four high through most several however early each same home life "
    "based due until including music series area against called left early second main group work place "
    "name well near number old family along like game back end water take way public great three line "
    "house church following last small own day long power river often system best last another around".split()
)


GENERATOR_FAILED = "the load generator failed: "  # a trial's error when the generator itself broke


class LoadSpecError(ValueError):
    """A load spec that cannot run; the message names the field and the fix."""


@dataclass(frozen=True)
class LoadSpec:
    """One load trial against an OpenAI-compatible server (see the module docstring)."""

    url: str  # the server's base URL, e.g. http://127.0.0.1:8000
    endpoint: Literal["chat", "completions"] = "chat"
    streaming: bool = True
    model: str = "mock"
    input_tokens: int = 128
    output_tokens: int = 64
    ignore_eos: bool = True
    concurrency: int | None = None  # requests in flight; with request_rate, a cap on them
    request_rate: float | None = None  # requests started per second
    arrival: Literal["constant", "poisson", "gamma"] = "poisson"  # spacing of request_rate starts
    burstiness: float = 1.0  # gamma arrivals' shape: 1 is Poisson, below 1 burstier, above more even
    requests: int | None = None  # measured requests; or
    duration_seconds: float | None = None  # start measured requests for this long
    warmup_requests: int = 0  # sent first and left out of the metrics
    request_timeout_seconds: float = 60.0
    seed: int = 0
    # Per-request bounds (metric, ms) for goodput: a request is good when it succeeded and each of
    # its own values is within every bound (DistServe's definition; errors are misses).
    slo_bounds: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, eq=False)
class LoadTrial:
    """The outcome of one trial; ``error`` is empty exactly when ``status == "ok"``.

    ``requests`` has one row per request sent (warmup included, flagged): ``index``, ``warmup``,
    ``scheduled_s`` (when the request-rate schedule wanted it to start; NaN for a concurrency
    trial), ``start_s``, ``first_token_s`` (NaN without streaming or a token), ``end_s`` (all in
    seconds since the trial began), ``output_tokens`` and ``error`` ("" on success). ``start_s -
    scheduled_s`` is how late the generator (or a concurrency cap) started a request. ``cpu_seconds`` is the CPU time
    of the thread running the generator's event loop over the whole trial, warmup included; it
    leaves out anything else in the process, such as an in-process mock server."""

    status: Literal["ok", "failed"]
    metrics: dict[str, float]
    error: str
    requests: pd.DataFrame
    duration_seconds: float  # wall time of the measured requests
    cpu_seconds: float

    @property
    def cpu_ms_per_request(self) -> float:
        sent = len(self.requests)
        return 1000 * self.cpu_seconds / sent if sent else math.nan


def slo_metric_names(slo_bounds) -> tuple[str, ...]:
    """What a trial with per-request SLO bounds (``LoadSpec.slo_bounds``) reports besides
    ``metric_names``: its goodput, its good requests and each bounded metric's attainment."""
    if not slo_bounds:
        return ()
    return ("goodput_avg", "good_request_count", *(f"{name}_attainment" for name, _ in slo_bounds))


def latency_metrics(streaming: bool) -> tuple[str, ...]:
    """The per-request latencies a trial reports: TTFT and ITL need streaming."""
    return LATENCY_METRICS if streaming else ("request_latency",)


def metric_names(streaming: bool = True) -> tuple[str, ...]:
    """Every metric a successful trial reports (TTFT and ITL need streaming)."""
    latencies = latency_metrics(streaming)
    return ("request_throughput_avg", "output_token_throughput_avg",
            *(f"{name}_{stat}" for name in latencies for stat in STATS), *COUNT_METRICS)


# --- validation -----------------------------------------------------------------------------------


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _check_whole(name: str, value, minimum: int, what: str) -> None:
    if not _is_number(value) or not float(value).is_integer():
        raise LoadSpecError(f"{name} is {value!r}; give a whole number of {what} "
                            f"(a fraction such as 1.5 would silently become {int(value) if _is_number(value) else 1})")
    if value < minimum:
        raise LoadSpecError(f"{name} is {value!r}; give at least {minimum} {what}")


def _check_positive(name: str, value, unit: str) -> None:
    if not _is_number(value) or value <= 0:
        raise LoadSpecError(f"{name} is {value!r}; give a positive number of {unit}")


def validate_load_spec(spec: LoadSpec) -> None:
    """Raise LoadSpecError unless ``spec`` can run."""
    if not isinstance(spec.url, str) or not spec.url.startswith(("http://", "https://")):
        raise LoadSpecError(f"url is {spec.url!r}; give the server's http(s) base URL, e.g. http://127.0.0.1:8000")
    parts = urlsplit(spec.url)
    if not parts.hostname:
        raise LoadSpecError(f"url {spec.url!r} has no host; write it like http://127.0.0.1:8000")
    try:
        _ = parts.port  # urlsplit checks the port only when it is read
    except ValueError:
        raise LoadSpecError(f"url {spec.url!r} has an invalid port; write it like http://127.0.0.1:8000") from None
    path = parts.path.rstrip("/")
    if path.endswith(tuple(ENDPOINT_PATHS.values())) or parts.query or parts.fragment:
        raise LoadSpecError(f"url {spec.url!r} names more than the server; give its base URL such as "
                            f"{parts.scheme}://{parts.netloc} and choose the path with endpoint (chat or completions)")
    if spec.endpoint not in ENDPOINT_PATHS:
        raise LoadSpecError(f"endpoint is {spec.endpoint!r}; use 'chat' (/v1/chat/completions) or "
                            "'completions' (/v1/completions)")
    for name in ("streaming", "ignore_eos"):
        if not isinstance(getattr(spec, name), bool):
            raise LoadSpecError(f"{name} is {getattr(spec, name)!r}; give true or false")
    if not isinstance(spec.model, str) or not spec.model.strip():
        raise LoadSpecError(f"model is {spec.model!r}; give the model name the server serves (GET /v1/models)")
    _check_whole("input_tokens", spec.input_tokens, 1, "prompt tokens")
    _check_whole("output_tokens", spec.output_tokens, 1, "output tokens")
    if spec.concurrency is None and spec.request_rate is None:
        raise LoadSpecError("no load given; set concurrency (requests in flight) or request_rate (requests per "
                            "second, with concurrency as an optional cap)")
    if spec.concurrency is not None:
        _check_whole("concurrency", spec.concurrency, 1, "requests in flight")
    if spec.request_rate is not None:
        _check_positive("request_rate", spec.request_rate, "requests per second")
        if spec.arrival == "gamma":
            _check_positive("burstiness", spec.burstiness, "(gamma's shape: 1 is Poisson, 0.25 bursty)")
        if spec.arrival not in ARRIVALS:
            raise LoadSpecError(f"arrival is {spec.arrival!r}; use 'constant' (even spacing), 'gamma' (with "
                                "burstiness) or 'poisson' "
                                "(random, seeded spacing)")
    if (spec.requests is None) == (spec.duration_seconds is None):
        both = spec.requests is not None
        raise LoadSpecError(f"{'both' if both else 'neither of'} requests and duration_seconds "
                            f"{'are' if both else 'is'} set; give exactly one: a number of measured requests "
                            "(requests: 200) or a time to send them for (duration_seconds: 10)")
    if spec.requests is not None:
        _check_whole("requests", spec.requests, 1, "measured requests")
    else:
        _check_positive("duration_seconds", spec.duration_seconds, "seconds")
    _check_whole("warmup_requests", spec.warmup_requests, 0, "warmup requests")
    _check_positive("request_timeout_seconds", spec.request_timeout_seconds, "seconds")
    for name, bound in spec.slo_bounds:
        usable = latency_metrics(spec.streaming)
        if name not in usable:
            raise LoadSpecError(f"slo_bounds names {name!r}, which no request of this trial reports; use one of "
                                f"{', '.join(usable)}" + ("" if spec.streaming else " (the others need streaming)"))
        _check_positive(f"the {name} bound", bound, "milliseconds")
    if len({name for name, _ in spec.slo_bounds}) < len(spec.slo_bounds):
        raise LoadSpecError("slo_bounds names a metric twice; give each metric one bound")
    if not _is_number(spec.seed) or not float(spec.seed).is_integer():
        raise LoadSpecError(f"seed is {spec.seed!r}; give a whole number")


# --- prompts --------------------------------------------------------------------------------------


def synthetic_prompt(index: int, input_tokens: int, seed: int) -> str:
    """Prompt number ``index`` of a trial seeded ``seed``: ``input_tokens`` words, about as many tokens."""
    return " ".join(random.Random(f"{seed}:{index}").choices(VOCABULARY, k=int(input_tokens)))


def request_body(spec: LoadSpec, index: int) -> bytes:
    """The JSON body of request ``index`` of a trial."""
    prompt = synthetic_prompt(index, spec.input_tokens, spec.seed)
    body = {"model": spec.model, "max_tokens": int(spec.output_tokens), "ignore_eos": spec.ignore_eos,
            "stream": spec.streaming}
    if spec.endpoint == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if spec.streaming:
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


# --- one request ----------------------------------------------------------------------------------

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}


class _Failure(Exception):
    """A request that failed; ``transport`` when the server did not answer (refused, timed out, cut)."""

    def __init__(self, text: str, transport: bool = False, refused: bool = False):
        super().__init__(text)
        self.transport = transport
        self.refused = refused


def _error_text(document) -> str | None:
    """The message of an error object in a response, or None if it is not one."""
    if not isinstance(document, dict):
        return None
    error = document.get("error")
    if error is None and document.get("object") == "error":
        error = document
    if error is None:
        return None
    message = error.get("message", error) if isinstance(error, dict) else error
    return str(message)[:ERROR_CHARS]


def _content(choice: dict) -> str:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return delta.get("content") or delta.get("reasoning_content") or ""
    return choice.get("text") or ""


def _decode(data: bytes, what: str, error_label: str) -> tuple[dict, int | None]:
    """A JSON object sent by the server and its ``usage.completion_tokens`` (None if absent);
    _Failure if it is not a JSON object or reports an error."""
    try:
        document = json.loads(data)
    except ValueError:
        raise _Failure(f"{what} is not JSON: {data[:100]!r}") from None
    if not isinstance(document, dict):
        raise _Failure(f"{what} is not a JSON object: {data[:100]!r}")
    message = _error_text(document)
    if message is not None:
        raise _Failure(f"{error_label}: {message}")
    usage = document.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return document, tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None


class _StreamState:
    """What an SSE stream has said so far: its content chunks, usage, end marker."""

    __slots__ = ("chunks", "done", "usage_tokens")

    def __init__(self):
        self.chunks, self.usage_tokens, self.done = 0, None, False

    def take(self, events: list[bytes]) -> None:
        """Read complete events; _Failure on an error event or one that is not JSON."""
        for event in events:
            data = b"".join(line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:"))
            if not data:
                continue  # a comment or keep-alive line
            if data == b"[DONE]":
                self.done = True
                continue
            document, usage_tokens = _decode(data, "stream event", "stream error")
            if usage_tokens is not None:
                self.usage_tokens = usage_tokens
            for choice in document.get("choices") or ():
                if isinstance(choice, dict) and _content(choice):
                    self.chunks += 1


def _split_events(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete SSE events of ``buffer`` and the incomplete rest."""
    events = buffer.replace(b"\r\n", b"\n").split(b"\n\n")
    return events, events.pop()


async def _read_stream(response: aiohttp.ClientResponse) -> tuple[float, int]:
    """First content token time and output tokens of an SSE stream; _Failure if it reports an error.

    Until the first token, every block is read as it arrives (its time is the TTFT). After it,
    only the end of the stream has a time that matters, so the rest is read once, at the end: one
    wake-up per request instead of one per token, which is most of the generator's CPU."""
    content, state, buffer = response.content, _StreamState(), b""
    clock = time.perf_counter
    first = math.nan
    async for block in content.iter_any():
        now = clock()
        buffer += block
        if b"\n\n" not in buffer and b"\r\n\r\n" not in buffer:
            continue
        events, buffer = _split_events(buffer)
        state.take(events)
        if state.chunks:
            first = now
            break
    blocks = [buffer]
    while not content.is_eof():
        try:
            # A bounded wait: a long answer can fill the reader's buffer, which pauses reading
            # until it is drained, and the end would then never come.
            async with asyncio.timeout(_DRAIN_SECONDS):
                await content.wait_eof()
        except TimeoutError:
            pass
        blocks.append(content.read_nowait())
    events, rest = _split_events(b"".join(blocks))
    if rest.strip():
        events.append(rest)
    state.take(events)
    if not state.done:
        raise _Failure("stream ended without the final 'data: [DONE]' event")
    tokens = state.usage_tokens if state.usage_tokens is not None else state.chunks
    if tokens < 1 or first != first:
        raise _Failure("stream finished without any output token")
    return first, tokens


async def _read_whole(response: aiohttp.ClientResponse) -> int:
    """Output tokens of a non-streamed answer; _Failure if it reports an error."""
    document, usage_tokens = _decode(await response.read(), "answer", "error in answer")
    if usage_tokens is not None:
        return usage_tokens
    choices = document.get("choices")
    if not choices or not isinstance(choices[0], dict):
        raise _Failure("answer has no choices")
    message = choices[0].get("message")
    text = message.get("content") if isinstance(message, dict) else choices[0].get("text")
    return len((text or "").split())


class _Client:
    """Sends the requests of one trial and keeps their records."""

    def __init__(self, spec: LoadSpec, session: aiohttp.ClientSession, origin: float):
        self.spec = spec
        self.session = session
        self.origin = origin
        self.endpoint_url = spec.url.rstrip("/") + ENDPOINT_PATHS[spec.endpoint]
        self.records: list[tuple] = []
        self.succeeded = 0
        self.transport_failures_in_a_row = 0
        self.stop_reason = ""
        # Every request in flight failing without an answer is no longer chance: the server is gone.
        self.give_up_after = max(3, int(spec.concurrency or 3))

    @property
    def stopped(self) -> bool:
        return bool(self.stop_reason)

    async def send(self, index: int, warmup: bool, scheduled: float = math.nan) -> None:
        spec = self.spec
        body = request_body(spec, index)
        first, tokens, error = math.nan, 0, ""
        start = time.perf_counter()
        try:
            try:
                async with asyncio.timeout(spec.request_timeout_seconds):
                    async with self.session.post(self.endpoint_url, data=body, headers=_JSON_HEADERS) as response:
                        if response.status != 200:
                            text = (await response.content.read(ERROR_CHARS)).decode(errors="replace")
                            raise _Failure(f"HTTP {response.status}: {_answer_text(text)}")
                        if spec.streaming:
                            first, tokens = await _read_stream(response)
                        else:
                            tokens = await _read_whole(response)
            except aiohttp.ClientConnectorError as failure:
                reason = os.strerror(failure.os_error.errno) if failure.os_error.errno else failure.os_error
                raise _Failure(f"cannot connect to {spec.url}: {reason}", transport=True, refused=True) from None
            except aiohttp.ConnectionTimeoutError:
                raise _Failure(f"cannot connect to {spec.url}: no answer to the connection attempt",
                               transport=True, refused=True) from None
            except TimeoutError:
                raise _Failure(f"no complete answer within request_timeout_seconds "
                               f"({spec.request_timeout_seconds:g} s)", transport=True) from None
            except (aiohttp.ClientError, ConnectionError) as failure:
                raise _Failure(f"connection failed: {type(failure).__name__}: {failure}"[:ERROR_CHARS],
                               transport=True) from None
            except (ValueError, TypeError, AttributeError, KeyError, IndexError) as failure:
                # An answer of a shape nobody expected: this request failed, the trial goes on.
                raise _Failure(f"unreadable answer: {type(failure).__name__}: {failure}"[:ERROR_CHARS]) from None
        except _Failure as failure:
            error = str(failure)
            self._count_failure(failure, warmup)
        else:
            self.succeeded += 1
            self.transport_failures_in_a_row = 0
        end = time.perf_counter()
        origin = self.origin
        self.records.append((index, warmup, scheduled - origin, start - origin, first - origin, end - origin,
                             tokens, error))

    def _count_failure(self, failure: _Failure, warmup: bool) -> None:
        if not failure.transport:
            self.transport_failures_in_a_row = 0
            return
        self.transport_failures_in_a_row += 1
        if self.stopped:
            return
        if failure.refused and not self.succeeded:
            self.stop_reason = (f"{failure}; is the server running? Start it (for a local mock: python -m "
                                f"benchmark_assets.servers.mock_llm --port PORT) or fix the url")
        elif not self.succeeded:
            self.stop_reason = f"the first request{' (warmup)' if warmup else ''} failed: {failure}; check that " \
                               f"{self.endpoint_url} answers, or raise request_timeout_seconds"
        elif self.transport_failures_in_a_row >= self.give_up_after:
            self.stop_reason = (f"the server stopped answering after {self.succeeded} successful requests "
                                f"({self.transport_failures_in_a_row} failures in a row, the last: {failure})")


def _answer_text(text: str) -> str:
    try:
        message = _error_text(json.loads(text))
    except ValueError:
        message = None
    return (message or text.strip() or "(empty body)")[:ERROR_CHARS]


# --- one phase (warmup or measured) ---------------------------------------------------------------


def _arrival_gaps(spec: LoadSpec) -> Iterator[float]:
    """Seconds between request starts, seeded by ``seed``: even, exponential (a Poisson process),
    or gamma with shape ``burstiness`` and the same mean gap (vLLM's --burstiness: the gaps' CV is
    1 / sqrt(burstiness), so 0.25 sends bursts with long pauses between them at the same rate)."""
    mean_gap = 1.0 / float(spec.request_rate)
    if spec.arrival == "constant":
        yield from itertools.repeat(mean_gap)
    rng = np.random.default_rng([int(spec.seed), 1])
    shape = float(spec.burstiness)
    while True:
        if spec.arrival == "gamma":
            yield from rng.gamma(shape, mean_gap / shape, 256).tolist()
        else:
            yield from rng.exponential(mean_gap, 256).tolist()


async def _run_phase(client: _Client, indexes, warmup: bool, duration: float | None) -> None:
    """Send the requests numbered ``indexes`` (an iterator), stopping new ones after ``duration`` s."""
    spec = client.spec
    deadline = time.perf_counter() + duration if duration is not None else math.inf
    if spec.request_rate is None:
        async def worker():
            for index in indexes:  # shared by all workers: each takes the next number
                if client.stopped or time.perf_counter() >= deadline:
                    return
                await client.send(index, warmup)

        await asyncio.gather(*(worker() for _ in range(int(spec.concurrency))))
        return
    slots = asyncio.Semaphore(int(spec.concurrency) if spec.concurrency else MAX_IN_FLIGHT)

    async def capped(index, scheduled):
        try:
            await client.send(index, warmup, scheduled)
        finally:
            slots.release()

    tasks = set()
    gaps = _arrival_gaps(spec)
    start = time.perf_counter()
    due = start
    for index in indexes:
        if due >= deadline:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()  # a capped trial waits here for a request to finish
        if client.stopped or time.perf_counter() >= deadline:
            slots.release()
            break
        task = asyncio.create_task(capped(index, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        due += next(gaps)
    if tasks:
        await asyncio.gather(*tasks)


# --- the trial ------------------------------------------------------------------------------------


def _records_frame(records: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(
        records, columns=["index", "warmup", "scheduled_s", "start_s", "first_token_s", "end_s", "output_tokens",
                          "error"])
    return frame.sort_values("index", kind="stable").reset_index(drop=True)


def _statistics(name: str, values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {}
    description = describe(values)
    percentiles = np.percentile(values, [50, 90, 95, 99])
    out = {f"{name}_avg": float(description.mean), f"{name}_min": float(description.min),
           f"{name}_max": float(description.max), f"{name}_std": float(description.std) if values.size > 1 else 0.0}
    out.update({f"{name}_p{p}": float(v) for p, v in zip((50, 90, 95, 99), percentiles)})
    return out


def request_values(ok: pd.DataFrame, *, streaming: bool) -> dict[str, np.ndarray]:
    """Each successful request's own latencies in ms, aligned with ``ok``'s rows: time to first
    token, inter-token latency (its mean gap between tokens; NaN with fewer than two tokens) and
    request latency; without streaming, request latency only."""
    start, first, end = (ok[c].to_numpy(float) for c in ("start_s", "first_token_s", "end_s"))
    values = {"request_latency": 1000 * (end - start)}
    if streaming:
        tokens = ok["output_tokens"].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            gaps = np.where(tokens > 1, 1000 * (end - first) / (tokens - 1), np.nan)
        values = {"time_to_first_token": 1000 * (first - start), "inter_token_latency": gaps, **values}
    return values


def goodput_metrics(values: dict[str, np.ndarray], count: int, duration: float, slo_bounds) -> dict[str, float]:
    """Goodput (good requests per second of the measured duration) and each bound's attainment
    (the share of the ``count`` measured requests within it: a failed request meets no bound). A
    request without inter-token gaps (one token) has none that is too slow."""
    if not slo_bounds or not count:
        return {}
    size = len(next(iter(values.values())))
    good = np.ones(size, dtype=bool)
    out = {}
    for name, bound in slo_bounds:
        own = values[name]
        within = np.isnan(own) | (own <= float(bound)) if name == "inter_token_latency" else own <= float(bound)
        good &= within
        out[f"{name}_attainment"] = float(within.sum()) / count
    out["good_request_count"] = float(good.sum())
    if duration > 0:
        out["goodput_avg"] = float(good.sum()) / duration
    return out


def summarise_requests(requests: pd.DataFrame, *, streaming: bool, slo_bounds=()) -> dict[str, float]:
    """The trial metrics (module docstring) of the measured rows of a ``LoadTrial.requests`` table,
    with goodput and attainment for ``slo_bounds`` (``LoadSpec.slo_bounds``)."""
    measured = requests[~requests["warmup"].astype(bool)]
    ok = measured[measured["error"] == ""]
    count = len(measured)
    duration = float(measured["end_s"].max() - measured["start_s"].min()) if count else 0.0
    starts = np.sort(measured["start_s"].to_numpy(float))
    metrics = {
        "request_count": float(count),
        "successful_request_count": float(len(ok)),
        "error_count": float(count - len(ok)),
        "output_token_count": float(ok["output_tokens"].sum()),
        "warmup_request_count": float(len(requests) - count),
        "duration_seconds": duration,
    }
    # A metric that is not defined (no request, one start) is left out rather than reported as NaN.
    if count:
        metrics["error_rate"] = (count - len(ok)) / count
    if count > 1 and starts[-1] > starts[0]:
        metrics["achieved_request_rate"] = (count - 1) / float(starts[-1] - starts[0])
    scheduled = np.sort(measured["scheduled_s"].to_numpy(float))
    scheduled = scheduled[np.isfinite(scheduled)]
    if scheduled.size > 1 and scheduled[-1] > scheduled[0]:  # request-rate trials only: what the schedule drew
        metrics["scheduled_request_rate"] = (scheduled.size - 1) / float(scheduled[-1] - scheduled[0])
    values = request_values(ok, streaming=streaming)
    metrics.update(goodput_metrics(values, count, duration, slo_bounds))
    if len(ok) == 0 or duration <= 0:
        return metrics
    metrics["request_throughput_avg"] = len(ok) / duration
    metrics["output_token_throughput_avg"] = float(ok["output_tokens"].sum()) / duration
    for name, own in values.items():
        metrics.update(_statistics(name, own[~np.isnan(own)]))
    return metrics


def _failure_summary(errors: pd.Series) -> str:
    counts = Counter(errors)
    shown = "; ".join(f"{text} (x{n})" if n > 1 else text for text, n in counts.most_common(3))
    more = f"; and {len(counts) - 3} other kinds" if len(counts) > 3 else ""
    return f"{shown}{more}"


async def run_load_trial_async(spec: LoadSpec) -> LoadTrial:
    """``run_load_trial`` for code already inside an event loop."""
    validate_load_spec(spec)
    cpu_started, origin = time.thread_time(), time.perf_counter()
    limit = int(spec.concurrency) if spec.concurrency else MAX_IN_FLIGHT
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=None)
    # sock_connect: a host that swallows SYNs fails in seconds, not at the end of the request timeout.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(float(spec.request_timeout_seconds), 5.0))
    crash = ""
    # A large read buffer lets a whole answer wait in it until the stream ends (see _read_stream).
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                     read_bufsize=1 << 20, skip_auto_headers=("User-Agent",)) as session:
        client = _Client(spec, session, origin)
        try:
            if spec.warmup_requests:
                await _run_phase(client, iter(range(int(spec.warmup_requests))), True, None)
            first_measured = int(spec.warmup_requests)
            measured = (iter(range(first_measured, first_measured + int(spec.requests))) if spec.requests
                        else itertools.count(first_measured))
            if not client.stopped:
                await _run_phase(client, measured, False, spec.duration_seconds)
        except Exception as error:  # noqa: BLE001 - a bug or an environment problem: still a trial, not a crash
            crash = f"{GENERATOR_FAILED}{type(error).__name__}: {error}"
    cpu_seconds = time.thread_time() - cpu_started
    requests = _records_frame(client.records)
    metrics = summarise_requests(requests, streaming=spec.streaming, slo_bounds=spec.slo_bounds)
    if len(requests):
        metrics["generator_cpu_ms_per_request"] = 1000 * cpu_seconds / len(requests)
    measured_rows = requests[~requests["warmup"].astype(bool)]
    failed = measured_rows[measured_rows["error"] != ""]
    if crash or client.stopped:
        error = crash or f"trial stopped early: {client.stop_reason}"
    elif len(measured_rows) == 0:
        error = "no measured request was sent; raise requests or duration_seconds"
    elif len(failed) == len(measured_rows):
        error = f"all {len(failed)} measured requests failed: {_failure_summary(failed['error'])}"
    else:
        error = ""
    return LoadTrial(status="failed" if error else "ok", metrics=metrics, error=error, requests=requests,
                     duration_seconds=metrics["duration_seconds"], cpu_seconds=cpu_seconds)


def run_load_trial(spec: LoadSpec) -> LoadTrial:
    """Run one load trial (module docstring); never raises for a failing server.

    Raises LoadSpecError only for a spec that ``validate_load_spec`` rejects."""
    validate_load_spec(spec)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_load_trial_async(spec))
    # Called from inside an event loop (a notebook, an async framework): run on a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run_load_trial_async(spec)).result()
