"""Locks between processes that share one DAGSTER_HOME: first use, and one run of a study at a time."""
from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path, *, waiting: str | None = None, say=None) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if missing), released when the block ends or the
    process dies (the kernel drops it: a killed run never leaves it held). While another process
    holds it, ``waiting`` is said once (to ``say``, default stderr) and the call blocks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if waiting:
                message = waiting.format(holder=holder)
                say(message) if say else print(message, file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
