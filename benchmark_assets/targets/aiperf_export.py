"""Results of NVIDIA aiperf (``aiperf profile``): its ``profile_export_aiperf.json``, read as one
trial of a load sweep, with the metric names and units of ``targets.http_load``. No Dagster.

Three layouts are read, as aiperf wrote them over its versions:

- 0.1: metrics under ``records``, each with its ``tag`` (``ttft`` for time to first token);
- 0.2 to 0.8: metrics at the top level keyed by tag, load settings in ``input_config.loadgen``;
- 0.9 on: the same metrics, load settings in ``input_config.phases`` (the ``profiling`` phase);
  from 0.13 the token settings are in ``input_config.datasets[].prompts.{isl,osl}.mean``.

Each metric is ``{"unit": ..., "avg": ..., "p50": ..., ...}``; any statistic may be missing. aiperf's
``request_count`` counts successful requests; its errors are ``error_request_count`` and
``error_summary``. Only the settings a run was given are in ``input_config``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from benchmark_assets.targets.http_load import LATENCY_METRICS, STATS

FILE_NAME = "profile_export_aiperf.json"
_OLD_TAGS = {"ttft": "time_to_first_token", "ttst": "time_to_second_token", "itl": "inter_token_latency"}
_TO_MS = {"ms": 1.0, "milliseconds": 1.0, "sec": 1000.0, "s": 1000.0, "seconds": 1000.0, "us": 1e-3,
          "microseconds": 1e-3, "ns": 1e-6, "nanoseconds": 1e-6}


class ExportFileError(ValueError):
    """A file that is not a usable aiperf export; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class AiperfRun:
    """One aiperf run: its metrics under http_load's names, the load settings it was given
    (concurrency, request_rate, input_tokens, output_tokens: those it names), and what it says of itself."""

    metrics: dict[str, float]
    settings: dict[str, float]
    model: str | None = None
    streaming: bool = False
    started_at: float | None = None
    duration_seconds: float = math.nan
    successful: int = 0
    errors: int = 0
    error_text: str = ""
    url: str | None = None  # the server the run measured, as the file records it
    extra: dict = field(default_factory=dict)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _metrics_of(document: dict) -> dict[str, dict]:
    if isinstance(document.get("records"), dict):  # 0.1
        records = document["records"]
        return {_OLD_TAGS.get(tag, tag): block for tag, block in records.items() if isinstance(block, dict)}
    return {tag: block for tag, block in document.items() if isinstance(block, dict) and "unit" in block}


def _profiling_phase(config: dict) -> dict:
    phases = config.get("phases")
    if not isinstance(phases, list):
        return {}
    profiling = [p for p in phases if isinstance(p, dict) and p.get("kind", "profiling") == "profiling"]
    return profiling[-1] if profiling else {}


def _mean(block, key: str):
    """``block[key]["mean"]`` where both are there, else None."""
    inner = block.get(key) if isinstance(block, dict) else None
    return inner.get("mean") if isinstance(inner, dict) else None


def _dataset_tokens(config: dict, name: str, key: str, setting: str):
    """A token setting of aiperf 0.13 on (``datasets[].prompts.<key>.mean``); a list of the values
    when its datasets disagree (refused like a sweep's config), None when none gives it."""
    datasets = config.get("datasets") if isinstance(config.get("datasets"), list) else []
    values = {_mean(d.get("prompts"), key) for d in datasets if isinstance(d, dict)} - {None}
    if len(values) > 1:
        raise ExportFileError(f"{name}: its datasets ran different {setting} ({sorted(values)}); give the "
                              f"{FILE_NAME} of a run with one")
    return values.pop() if values else None


def _settings(config: dict, name: str) -> dict[str, float]:
    """The load settings the run was given; ExportFileError for one that is a list (a sweep's config)."""
    loadgen = config.get("loadgen") if isinstance(config.get("loadgen"), dict) else {}
    phase = _profiling_phase(config)
    prompt = ((config.get("input") or {}).get("prompt") or {}) if isinstance(config.get("input"), dict) else {}
    found = {
        "concurrency": loadgen.get("concurrency", phase.get("concurrency")),
        "request_rate": loadgen.get("request_rate", phase.get("rate")),
        "input_tokens": _mean(prompt, "input_tokens") if _mean(prompt, "input_tokens") is not None
        else _dataset_tokens(config, name, "isl", "input_tokens"),
        "output_tokens": _mean(prompt, "output_tokens") if _mean(prompt, "output_tokens") is not None
        else _dataset_tokens(config, name, "osl", "output_tokens"),
    }
    out = {}
    for key, value in found.items():
        if isinstance(value, list):
            raise ExportFileError(f"{name}: input_config gives {key} as a list {value} (the export of a whole sweep); "
                                  f"give the {FILE_NAME} of one run")
        if (number := _number(value)) is not None:
            out[key] = number
    return out


def _model(config: dict) -> str | None:
    endpoint = config.get("endpoint") if isinstance(config.get("endpoint"), dict) else {}
    names = endpoint.get("model_names")
    if isinstance(names, list) and names:
        return str(names[0])
    items = (config.get("models") or {}).get("items") if isinstance(config.get("models"), dict) else None
    if isinstance(items, list) and items and isinstance(items[0], dict) and items[0].get("name"):
        return str(items[0]["name"])
    return None


def _started(document: dict) -> float | None:
    text = document.get("start_time")
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()  # aiperf writes the machine's local time, no zone
    except ValueError:
        return None


def _errors(document: dict) -> str:
    summary = document.get("error_summary")
    if not isinstance(summary, list):
        return ""
    parts = []
    for item in summary:
        details = item.get("error_details") if isinstance(item, dict) else None
        if isinstance(details, dict):
            what = " ".join(str(details[k]) for k in ("code", "type") if details.get(k) is not None)
            message = f"{what}: {details.get('message', '')}" if what else str(details.get("message", ""))
            parts.append(f"{item.get('count', '?')} x {message}".strip())
    return "; ".join(parts)


def read_export(path: Path) -> AiperfRun:
    """The run an aiperf export describes; ExportFileError saying what is wrong with the file."""
    name = path.name
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ExportFileError(f"cannot read {name} ({error.strerror or error})") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ExportFileError(f"{name} is not JSON ({error}); give the {FILE_NAME} aiperf wrote") from None
    if not isinstance(document, dict):
        raise ExportFileError(f"{name} is JSON but not an aiperf export (not an object); give the {FILE_NAME} aiperf "
                              "wrote")
    blocks = _metrics_of(document)
    if "request_throughput" not in blocks and "error_request_count" not in blocks:
        raise ExportFileError(f"{name} is JSON but not an aiperf profile export (no request_throughput or "
                              f"error_request_count metric); give the {FILE_NAME} aiperf wrote")
    if document.get("was_cancelled") is True or document.get("is_complete") is False:
        why = document.get("incomplete_reason") or "it was cancelled"
        raise ExportFileError(f"{name}: the run did not finish ({why}); give the export of a complete run")
    config = document.get("input_config") if isinstance(document.get("input_config"), dict) else {}
    metrics: dict[str, float] = {}
    for tag in LATENCY_METRICS:
        block = blocks.get(tag)
        if not block:
            continue
        unit = str(block.get("unit", "ms")).strip().lower()
        if unit not in _TO_MS:
            raise ExportFileError(f"{name}: {tag} is in {unit!r}; give an export with times in ms, sec or ns")
        for stat in STATS:
            if (value := _number(block.get(stat))) is not None:
                metrics[f"{tag}_{stat}"] = value * _TO_MS[unit]
    for tag, ours in (("request_throughput", "request_throughput_avg"),
                      ("output_token_throughput", "output_token_throughput_avg")):
        if (value := _number((blocks.get(tag) or {}).get("avg"))) is not None:
            metrics[ours] = value
    successful = int(_number((blocks.get("request_count") or {}).get("avg")) or 0)
    errors = int(_number((blocks.get("error_request_count") or {}).get("avg")) or 0)
    block = blocks.get("benchmark_duration") or {}
    duration = _number(block.get("avg"))
    if duration is not None:  # in seconds, whatever unit the file gives it in
        unit = str(block.get("unit", "sec")).strip().lower()
        if unit not in _TO_MS:
            raise ExportFileError(f"{name}: benchmark_duration is in {unit!r}; give an export with times in ms, sec "
                                  "or ns")
        duration *= _TO_MS[unit] / 1000.0
    counts = {"request_count": successful + errors, "successful_request_count": successful, "error_count": errors}
    if successful + errors:
        counts["error_rate"] = errors / (successful + errors)
    if (tokens := _number((blocks.get("total_output_tokens") or {}).get("avg"))) is not None:
        counts["output_token_count"] = tokens
    if duration is not None:
        counts["duration_seconds"] = duration
    metrics.update({k: float(v) for k, v in counts.items()})
    endpoint = config.get("endpoint") if isinstance(config.get("endpoint"), dict) else {}
    urls = endpoint.get("urls") if isinstance(endpoint.get("urls"), list) else [endpoint.get("url")]
    url = next((str(u) for u in urls if isinstance(u, str) and u), None)
    return AiperfRun(metrics=metrics, settings=_settings(config, name), model=_model(config),
                     streaming=bool(endpoint.get("streaming", False)), started_at=_started(document),
                     duration_seconds=math.nan if duration is None else duration, successful=successful,
                     errors=errors, error_text=_errors(document), url=url)
