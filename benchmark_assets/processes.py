"""Child processes that do not outlive the process that started them."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads(threads: str = "1") -> None:
    """Give each BLAS thread-count variable left unset (or empty) ``threads``, for this process and
    what it starts: with a process per core, OpenBLAS's thread per core in each spin-waits for the
    others' (the test suite's CPU time halved without them)."""
    for variable in BLAS_THREADS:
        os.environ[variable] = os.environ.get(variable) or threads


def die_with_parent() -> None:
    """Run in a child before it execs (``Popen(preexec_fn=...)``): the kernel kills the child when
    the thread that started it dies, even by SIGKILL, when no ``finally`` block runs. Linux only;
    elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


TRIAL_MARKER = "BENCHMARK_ASSETS_TRIAL"  # in every trial command's environment: <runner pid>:<trial id>
TEMP_PREFIX = "benchmark-command-"  # trial folders are <TEMP_PREFIX><runner pid>-<random>


def trial_marker() -> str:
    """A fresh marker for one trial; every process the trial starts inherits it, even one that
    calls setsid or double-forks (a process group or session would lose those)."""
    import uuid

    return f"{os.getpid()}:{uuid.uuid4().hex}"


def _marked_processes() -> Iterator[tuple[int, str]]:
    """(pid, marker) of every readable process carrying a trial marker (Linux /proc)."""
    needle = f"{TRIAL_MARKER}=".encode()
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        for item in environ.split(b"\0"):
            if item.startswith(needle):
                yield int(entry.name), item[len(needle):].decode(errors="replace")


def kill_marked(marker: str) -> int:
    """Kill every process still carrying ``marker``; returns how many."""
    killed = 0
    for pid, found in _marked_processes():
        if found == marker and pid != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _proportional_bytes(entry: Path, resident_pages: int) -> int:
    """A process's proportional set size (its own pages plus its share of pages it shares, so a
    tree's sum counts a forked worker's copy-on-write pages once); its resident size where the
    kernel has no smaps_rollup."""
    try:
        for line in (entry / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return resident_pages * _PAGE_BYTES


def group_memory_bytes(group: int) -> tuple[int, int]:
    """(memory of every process in process group ``group`` added up, as proportional set sizes;
    the largest peak resident memory (VmHWM) of any one of them), from Linux /proc; (0, 0)
    elsewhere. A trial's command leads its own group, so this is its process tree as long as no
    descendant starts a session of its own."""
    total = largest = 0
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
            # pid (comm) state ppid pgrp ... rss is field 24; comm may hold spaces and parentheses.
            fields = stat[stat.rfind(b")") + 2:].split()
            if len(fields) <= 21 or int(fields[2]) != group:
                continue
            total += _proportional_bytes(entry, int(fields[21]))
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    largest = max(largest, int(line.split()[1]) * 1024)
        except (OSError, ValueError):
            continue  # gone meanwhile
    return total, largest


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not; someone else's process does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    status = Path(f"/proc/{pid}/status")
    with contextlib.suppress(OSError):
        return "State:\tZ" not in status.read_text()
    return True


def descendants(pid: int) -> list[int]:
    """The process ids under ``pid``, children first (Linux's /proc; none elsewhere)."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(k) for k in children.read_text().split()]
            except OSError:
                continue
            found += kids
            queue += kids
    return found


def end_processes(pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM the processes of ``pids`` still running, then SIGKILL those left after ``grace`` s."""
    import time

    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = [p for p in pids if process_alive(p)]
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while left and time.monotonic() < deadline:
            left = [p for p in left if process_alive(p)]
            time.sleep(0.2)


def clean_up_after_dead_runners() -> list[str]:
    """Trial processes and trial folders whose runner (a benchmark-assets process) is gone, e.g.
    killed with SIGKILL: kill the processes, remove the folders. One line per thing cleaned."""
    cleaned = []
    for pid, marker in _marked_processes():
        runner = int(marker.split(":", 1)[0]) if marker.split(":", 1)[0].isdigit() else 0
        if runner and not process_alive(runner):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                cleaned.append(f"killed trial process {pid} left by a dead run (pid {runner})")
    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        runner = folder.name.removeprefix(TEMP_PREFIX).split("-", 1)[0]
        if runner.isdigit() and not process_alive(int(runner)) and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            cleaned.append(f"removed trial folder {folder} left by a dead run (pid {runner})")
    return cleaned
