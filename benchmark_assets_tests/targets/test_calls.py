"""The callable target: timed calls, traced peak memory, returned metrics, failures as data."""
import contextlib
import gc
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark_assets.targets.calls import load_callable, measure_call, returned_metrics, traced_peak


def allocate(megabytes: int):
    def run(seed: int) -> dict:
        block = np.full(megabytes * 2**20, seed % 7, dtype=np.uint8)
        return {"first": int(block[0])}
    return run


@contextlib.contextmanager
def frozen_heap():
    """What this test process holds already is left out of garbage collection for a while:
    traced_peak's gc.collect() then costs milliseconds instead of a second in a worker that has
    run hundreds of tests (the objects it must still collect are those made since)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 24))
def test_traced_peak_is_the_calls_own_allocation(megabytes):
    held = np.ones(8 * 2**20, dtype=np.uint8)  # allocated before the call: not counted
    with frozen_heap():
        peak, result = traced_peak(allocate(megabytes), 3)
    assert result == {"first": 3} and held[0] == 1
    assert megabytes * 2**20 <= peak < megabytes * 2**20 + 256 * 1024


def test_a_measurement_times_each_call_after_the_warm_up_and_traces_one_more():
    import gc
    import tracemalloc

    calls = []

    def side(seed):
        calls.append((seed, gc.isenabled(), tracemalloc.is_tracing()))
        block = np.ones(2**20, dtype=np.uint8)
        return 0.5 * len(calls) + 0 * block[0]

    measured = measure_call(side, 9, number=4, warmup=2, memory=True)
    # 2 warm-up calls, 4 timed ones with the garbage collector off and nothing traced, 1 traced.
    assert measured.ok and calls == [(9, True, False)] * 2 + [(9, False, False)] * 4 + [(9, True, True)]
    assert gc.isenabled() and not tracemalloc.is_tracing()  # left as found
    assert len(measured.seconds) == 4
    assert measured.metrics == {"value": 3.0}  # the last timed call's
    assert 2**20 <= measured.peak_memory < 2**20 + 64 * 1024
    assert math.isnan(measure_call(side, 9).peak_memory)  # memory not asked for


def test_a_side_that_raises_is_a_failed_measurement_saying_where():
    def broken(seed):
        raise KeyError(f"missing {seed}")

    measured = measure_call(broken, 4, number=3, warmup=1)
    assert not measured.ok and measured.seconds == ()
    assert measured.error.startswith("KeyError: 'missing 4' (at ") and "test_calls.py" in measured.error


@pytest.mark.parametrize("value, message", [
    ([1, 2], "returned a list; return None, a number or a dict"),
    ({"x": "fast"}, "returned 'x': 'fast'; metrics are text names mapped to numbers"),
    ({"x": float("nan")}, "returned x = nan; metrics must be finite numbers"),
    ({"x": True}, "metrics are text names mapped to numbers"),
])
def test_a_side_returning_something_else_is_refused_with_what_it_returned(value, message):
    measured = measure_call(lambda seed: value, 1)
    assert not measured.ok and message in measured.error and measured.error.startswith("the function returned")


def test_returned_metrics_accept_numpy_numbers_and_plain_numbers():
    assert returned_metrics(None) == {}
    assert returned_metrics(np.float32(0.5)) == {"value": 0.5}
    assert returned_metrics({"a": np.int64(3), "b": 2}) == {"a": 3.0, "b": 2.0}


@pytest.mark.parametrize("target, message", [
    ("nowhere_at_all:run", "cannot import module 'nowhere_at_all' for 'nowhere_at_all:run': ModuleNotFoundError"),
    ("benchmark_assets.targets.calls:nothing_here", "module 'benchmark_assets.targets.calls' has no function "
                                                    "'nothing_here'"),
    ("benchmark_assets.targets.calls:math", "(it is a module)"),
])
def test_load_callable_says_what_is_wrong(target, message):
    with pytest.raises(ValueError) as caught:
        load_callable(target)
    assert message in str(caught.value) and "\n" not in str(caught.value)
