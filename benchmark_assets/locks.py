"""Locks between processes: first use of a DAGSTER_HOME, and one run of a study at a time (on one
machine through a file, across the machines of a team through the shared PostgreSQL server)."""
from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
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


@contextlib.contextmanager
def database_lock(url: str, name: str, *, waiting: str | None = None, say=None,
                  poll_seconds: float = 1.0) -> Iterator[None]:
    """An exclusive lock named ``name`` on a PostgreSQL server (a session advisory lock, dropped by
    the server when the holding connection ends, so a killed process never leaves it held): one
    run of a study at a time across the machines of a team. Nothing on SQLite, whose database is
    on one machine, where ``file_lock`` serves."""
    import sqlalchemy as sa

    if sa.make_url(url).get_backend_name() != "postgresql":
        yield
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            key = conn.execute(sa.text("SELECT hashtext(:name)"), {"name": name}).scalar()
            told = False
            while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
                if waiting and not told:
                    message = waiting.format(holder="a process on another machine or in another home")
                    say(message) if say else print(message, file=sys.stderr, flush=True)
                    told = True
                conn.commit()
                time.sleep(poll_seconds)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                conn.commit()
    finally:
        engine.dispose()
