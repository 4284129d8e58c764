"""The callable target: a Python function, ``module:function``, called with a seed in this process,
timed call by call and, on request, its peak memory traced. No Dagster.

A measurement is ``warmup`` unmeasured calls, then ``number`` timed calls (the garbage collector
off while timing, as ``timeit`` does), then, if memory is wanted, one more call under
``tracemalloc`` (tracing slows code down, so it never overlaps the timed calls). Peak memory is
the most the call had allocated at once beyond what was allocated when it started (numpy's
arrays are traced too). The function returns None, a number (the metric ``value``) or a mapping
of metric names to finite numbers; anything else, or an exception, is a failed measurement
with its error, never an exception here.
"""
from __future__ import annotations

import gc
import importlib
import math
import numbers
import re
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Measurement:
    """One measurement of a side; ``error`` is empty exactly when it succeeded."""

    seconds: tuple[float, ...] = ()  # each timed call
    peak_memory: float = math.nan  # bytes, when traced
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


# How a user's function is named in a study: ``package.module:function``.
CALLABLE_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def load_callable(target: str) -> Callable:
    """The function ``module:function`` names; ValueError with one line saying what is wrong."""
    module_name, _, function_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - any import failure is the user's module's, reported as such
        raise ValueError(f"cannot import module {module_name!r} for {target!r}: {type(error).__name__}: {error}; "
                         "check the name and that it is importable (installed, or on PYTHONPATH)") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(f"module {module_name!r} has no function {function_name!r}"
                         + ("" if function is None else f" (it is a {type(function).__name__})")
                         + "; check the name after the ':'")
    return function


def returned_metrics(value) -> dict[str, float]:
    """The metrics a call returned: None -> none, a number -> ``value``, a mapping -> its items."""
    if value is None:
        return {}
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = {"value": value}
    if not isinstance(value, Mapping):
        raise ValueError(f"returned a {type(value).__name__}; return None, a number or a dict of metric names "
                         "to numbers")
    out = {}
    for name, number in value.items():
        if isinstance(number, np.generic):
            number = number.item()
        if not isinstance(name, str) or isinstance(number, bool) or not isinstance(number, numbers.Real):
            raise ValueError(f"returned {name!r}: {number!r}; metrics are text names mapped to numbers")
        if not math.isfinite(number):
            raise ValueError(f"returned {name} = {number}; metrics must be finite numbers")
        out[name] = float(number)
    return out


def error_text(error: BaseException) -> str:
    """The exception's type and message, and where in the user's code it was raised."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"


def traced_peak(function: Callable, seed: int) -> tuple[float, object]:
    """(peak bytes allocated during one call beyond what was allocated when it began, its result)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = function(seed)
        return float(max(0, tracemalloc.get_traced_memory()[1] - before)), result
    finally:
        if started:
            tracemalloc.stop()


def measure_call(function: Callable, seed: int, *, number: int = 1, warmup: int = 0, memory: bool = False) -> Measurement:
    """Warm up, time ``number`` calls, and trace one more call's memory if asked; the metrics are
    those of the last timed call (the traced call's, when only memory is wanted)."""
    try:
        for _ in range(warmup):
            function(seed)
        seconds = []
        result = None
        enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            for _ in range(number):
                start = time.perf_counter()
                result = function(seed)
                seconds.append(time.perf_counter() - start)
        finally:
            if enabled:
                gc.enable()
        peak = math.nan
        if memory:
            peak, _ = traced_peak(function, seed)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:  # noqa: BLE001 - a side that crashes is a failed measurement with its error
        return Measurement(error=error_text(error))
    except BaseException as error:  # noqa: BLE001 - e.g. a GeneratorExit or a custom BaseException
        print(f"a measured call raised {type(error).__name__}", file=sys.stderr)
        return Measurement(error=error_text(error))
    try:
        return Measurement(tuple(seconds), peak, returned_metrics(result))
    except ValueError as error:
        return Measurement(error=f"the function {error}")
