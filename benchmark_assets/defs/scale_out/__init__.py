"""Scale-out settings: a deployment that names an executor fans each trials run out over workers:
celery workers (dagster-celery's executor) or Kubernetes pods (dagster-k8s's job executor). Read
from the environment of every process (CLI, webserver, daemon, workers), so that they all build
the same assets.

- ``BENCHMARK_ASSETS_EXECUTOR``: ``celery`` or ``k8s``; unset: ``celery`` when a broker is named,
  else everything runs in the calling process, as on one machine.
- ``BENCHMARK_ASSETS_CELERY_BROKER``: ``redis://127.0.0.1:6379/0`` or ``pyamqp://guest@127.0.0.1//``;
  unset: everything runs in the calling process, as on one machine.
- ``BENCHMARK_ASSETS_CELERY_BACKEND``: where workers put results (default: the Redis broker
  itself, or ``rpc://`` with RabbitMQ).
- ``BENCHMARK_ASSETS_TRIAL_CHUNKS``: how many steps one trials run is cut into (default 8).

Why chunks as steps of one run, not as runs: a run costs a run record, its own events and a
launch (about 0.4 s in process, 5 s through a launcher), a step costs a handful of events and one
task; the partitions' own bookkeeping (a materialisation event each, written in batches) is the
same either way. So a trials stage stays one ranged run (one planned event for all its partitions:
``planned_ranges``) and is cut into a few steps of many trials each: with 8 chunks a 3,600-trial sweep
pays 8 step start-ups, not 3,600 or even 450, while 8 is still enough to keep 2-4 workers busy
when chunks take unequal time.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmark_assets.env_settings import whole_number

EXECUTOR_ENV = "BENCHMARK_ASSETS_EXECUTOR"
EXECUTORS = ("celery", "k8s")
BROKER_ENV = "BENCHMARK_ASSETS_CELERY_BROKER"
BACKEND_ENV = "BENCHMARK_ASSETS_CELERY_BACKEND"
CHUNKS_ENV = "BENCHMARK_ASSETS_TRIAL_CHUNKS"
DEFAULT_CHUNKS = 8


def broker() -> str:
    return os.environ.get(BROKER_ENV, "").strip()


def backend() -> str:
    explicit = os.environ.get(BACKEND_ENV, "").strip()
    if explicit:
        return explicit
    return broker() if broker().startswith(("redis://", "rediss://")) else "rpc://"


def executor() -> str:
    """The deployment's executor: ``celery``, ``k8s`` or '' (in process)."""
    chosen = os.environ.get(EXECUTOR_ENV, "").strip().lower()
    if chosen and chosen not in EXECUTORS:
        raise ValueError(f"${EXECUTOR_ENV}={chosen!r} is not an executor this deployment knows; set it to "
                         f"{' or '.join(EXECUTORS)}, or unset it to run in process")
    if chosen == "celery" and not broker():
        raise ValueError(f"${EXECUTOR_ENV}=celery needs ${BROKER_ENV}; set it to the broker, e.g. "
                         "redis://127.0.0.1:6379/0")
    return chosen or ("celery" if broker() else "")


def trial_chunks() -> int:
    """How many steps a trials run is cut into: 0 when nothing is scaled out."""
    if not executor():
        return 0
    return whole_number(CHUNKS_ENV, DEFAULT_CHUNKS, meaning="how many steps a trials run is cut into",
                        example=DEFAULT_CHUNKS)


def split(keys: list, chunks: int) -> list[list]:
    """``keys`` in at most ``chunks`` contiguous pieces of near-equal size (a point's trials stay
    together, so a vectorised target still sees them at once); no piece is empty."""
    count = min(chunks, len(keys))
    if count == 0:
        return []
    size, extra = divmod(len(keys), count)
    pieces, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(keys[start:end])
        start = end
    return pieces


def executor_config() -> dict:
    """The celery executor's config for this deployment."""
    return {"broker": broker(), "backend": backend()}


def executor_def():
    """The deployment's Dagster executor, configured from the environment; None in process."""
    if executor() == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError:
            raise RuntimeError(f"${EXECUTOR_ENV}=k8s but dagster-k8s is not installed; install it with "
                               "pip install 'benchmark_assets[k8s]'") from None
        # Image, namespace, secrets and env come from the instance's K8sRunLauncher (see deploy/kubernetes).
        return k8s_job_executor
    if executor() != "celery":
        return None
    try:
        from dagster_celery import celery_executor
    except ImportError:
        raise RuntimeError(f"${BROKER_ENV} is set but dagster-celery is not installed; install it with "
                           "pip install 'benchmark_assets[scale]' (or unset the variable)") from None

    return celery_executor.configured(executor_config(), name="celery_from_environment")


@contextlib.contextmanager
def local_workers(count: int, env: dict, log_dir: Path, *, ready_within: float = 120.0):
    """``count`` real worker processes on this machine (``benchmark-assets worker``, one process
    each), started with ``env`` and stopped on exit; waits until each has told celery it is ready.
    Their logs are ``log_dir/worker<n>.log``. For tests and benchmarks; a team runs the command."""
    log_dir.mkdir(parents=True, exist_ok=True)
    started: list[tuple[subprocess.Popen, Path]] = []
    try:
        for number in range(1, count + 1):
            log = log_dir / f"worker{number}.log"
            with log.open("w") as handle:
                process = subprocess.Popen(
                    [sys.executable, "-m", "benchmark_assets.cli", "worker", "--name", f"w{number}@%h"],
                    env=env, stdout=handle, stderr=subprocess.STDOUT)
            started.append((process, log))
        deadline = time.monotonic() + ready_within
        for process, log in started:
            while " ready." not in log.read_text(errors="replace"):
                if process.poll() is not None:
                    raise RuntimeError(f"worker exited with {process.returncode} before it was ready; "
                                       f"its log ({log}):\n{log.read_text(errors='replace')[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker not ready after {ready_within:.0f} s; its log ({log}):\n"
                                       f"{log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.2)
        yield [log for _, log in started]
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # celery's warm shutdown: finishes nothing new
        for process, _ in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
