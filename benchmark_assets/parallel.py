"""Trials on threads that an interrupt (Ctrl-C, a run terminated from the UI) stops without losing
finished work. No Dagster.

The first interrupt starts no new trial and lets the running ones finish, so their results are
kept; a second one stops them at once (``stop``). Either way every result that came back is
handed to ``on_result`` before the interrupt goes on up.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

K = TypeVar("K")
R = TypeVar("R")


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# How long the main thread blocks at most before it looks for a pending interrupt again. A signal
# that arrives just before a thread starts an unbounded wait on a lock is only acted on when the
# wait ends (the C handler has run, the wait then starts and nothing wakes it): with one trial
# running for minutes, Ctrl-C would seem to do nothing. Bounded waits see it within this time.
POLL_SECONDS = 0.2


def as_they_finish(futures: Iterable[Future]):
    """The futures as they finish, like ``as_completed``, but never blocking longer than
    ``POLL_SECONDS`` at a time, so that an interrupt is always acted on at once."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
        yield from done


def run_all(
    keys: Iterable[K],
    work: Callable[[K], R],
    *,
    workers: int,
    on_result: Callable[[R], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], None] | None = None,
    notify: Callable[[str], None] = _to_stderr,
) -> list[R]:
    """``work(key)`` for every key, up to ``workers`` at once; the results in the order they finished."""
    keys = list(keys)
    results: list[R] = []
    taken: set[Future] = set()

    def take(future: Future) -> None:
        taken.add(future)
        result = future.result()
        results.append(result)
        if on_result:  # at once: a run killed later keeps it
            on_result(result)
        if progress:
            progress(len(results), len(keys))

    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    futures = [pool.submit(work, key) for key in keys]
    try:
        for future in as_they_finish(futures):
            take(future)
    except Exception:  # a real error (a bug, a checkpoint that could not be written): not an interrupt
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    except BaseException as interrupt:  # Ctrl-C, or Dagster's interrupt of a terminated run
        for future in futures:
            future.cancel()  # not started yet: never will be
        left = [f for f in futures if f not in taken and not f.cancelled()]
        running = [f for f in left if not f.done()]
        try:  # from here a second interrupt stops the running work, even one that lands during the notice
            if running:
                notify(f"interrupted: no new trials start; letting the {len(running)} running ones finish so "
                       "their results are kept (interrupt again to stop them now)")
            for future in as_they_finish(left):
                take(future)
        except BaseException:  # noqa: BLE001 - Ctrl-C too: what finished is kept, then it is raised again
            # What had finished before the stop, seen before stopping: a trial the stop ends comes
            # back at once as "stopped", and is not a result to keep.
            finished = [f for f in left if f.done() and f not in taken and not f.cancelled() and f.exception() is None]
            for future in finished:
                take(future)
            if stop:
                stop()
                notify(f"stopped the running trials; the {len(results)} finished ones are kept")
            else:
                notify(f"the running trial cannot be stopped from here: it ends within its own time limit; "
                       f"the {len(results)} finished ones are kept")
        finally:
            # Work that cannot be stopped (no ``stop``) is not waited for a second time.
            pool.shutdown(wait=stop is not None or not running, cancel_futures=True)
        raise interrupt
    pool.shutdown(wait=True)
    return results
