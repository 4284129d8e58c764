"""The command target: runs a user's command once per trial and reads the metrics it reports.

The whole reference (what it measures, every option, how it fails): docs/reference/command.md.
"""
from __future__ import annotations

import contextlib
import difflib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from benchmark_assets.processes import (
    TEMP_PREFIX,
    TRIAL_MARKER,
    die_with_parent,
    group_memory_bytes,
    kill_marked,
    trial_marker,
)
from benchmark_assets.provenance import git_commit
from benchmark_assets.sweep import format_value

BUILTIN_PLACEHOLDERS = ("seed", "output", "python", "workdir")
METRICS_SOURCES = ("auto", "file", "stdout")
STDERR_TAIL_CHARS = 2000
# Enough of stdout to find the metrics line of a chatty command without reading gigabytes.
STDOUT_TAIL_BYTES = 1 << 20
_PLACEHOLDER_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_NESTED_KEYS = frozenset({"metrics", "curves"})


class CommandError(ValueError):
    """A command spec that cannot run; the message names the problem and the fix."""


@dataclass(frozen=True)
class CommandSpec:
    """How to run one trial: the argument list with placeholders, a time limit, where metrics come from."""

    argv: tuple[str, ...]
    timeout_seconds: float = 600.0
    metrics_from: Literal["auto", "file", "stdout"] = "auto"
    cwd: str | None = None  # the command's working folder; None: the current one
    env: dict[str, str] = field(default_factory=dict)  # added to (and overriding) the inherited environment

    def __post_init__(self):
        if isinstance(self.argv, list):
            object.__setattr__(self, "argv", tuple(self.argv))


@dataclass(frozen=True, eq=False)
class Curve:
    """A metric recorded along training: ``values[i]`` at ``steps[i]`` (float arrays, read-only)."""

    steps: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class CommandTrial:
    """The outcome of one run of the command; ``error`` is empty exactly when ``status == "ok"``."""

    status: Literal["ok", "failed"]
    scalars: dict[str, float]
    curves: dict[str, Curve]
    error: str
    exit_code: int | None  # None when the command never started or was killed at the timeout
    stderr_tail: str
    argv: tuple[str, ...]  # exactly what was run
    duration_seconds: float
    git_commit: str  # of the command's working folder, "unknown" outside git
    # memory=True: the most memory the command's process tree held at once, sampled every 10 ms
    # (proportional set sizes added up, never below the peak resident size of any one process
    # seen alive); None if not asked for, or if the command ended before a sample was taken.
    peak_rss_bytes: int | None = None


# --- placeholders -----------------------------------------------------------------------------


def _parse_argument(argument: str) -> list[tuple[str, str]]:
    """Split one argument into ("text", literal) and ("name", placeholder) pieces; ValueError if malformed."""
    pieces, text, i = [], [], 0
    while i < len(argument):
        char = argument[i]
        if char in "{}" and argument[i + 1 : i + 2] == char:
            text.append(char)
            i += 2
        elif char == "{":
            end = argument.find("}", i + 1)
            name = argument[i + 1 : end] if end != -1 else ""
            if end == -1 or not _PLACEHOLDER_NAME.fullmatch(name):
                raise ValueError(f"unmatched or malformed '{{' at character {i}")
            pieces.append(("text", "".join(text)))
            pieces.append(("name", name))
            text, i = [], end + 1
        elif char == "}":
            raise ValueError(f"unmatched '}}' at character {i}")
        else:
            text.append(char)
            i += 1
    pieces.append(("text", "".join(text)))
    return pieces


def _placeholders(spec: CommandSpec) -> list[tuple[int, str]]:
    """(argument index, name) of every placeholder; CommandError if an argument is malformed."""
    found = []
    for index, argument in enumerate(spec.argv):
        try:
            pieces = _parse_argument(argument)
        except ValueError as error:
            raise CommandError(
                f"command argument {index} {argument!r}: {error}; write a placeholder as {{name}} "
                "and a literal brace as {{ or }}"
            ) from None
        found.extend((index, value) for piece, value in pieces if piece == "name")
    return found


def validate_command(spec: CommandSpec, param_names: Iterable[str]) -> None:
    """Raise CommandError unless ``spec`` can run with parameters named ``param_names``."""
    params = list(dict.fromkeys(param_names))
    if not spec.argv:
        raise CommandError("command is empty; give the program and its arguments as a list, e.g. "
                           "['{python}', 'train.py', '--seed', '{seed}', '--out', '{output}']")
    bad = [i for i, a in enumerate(spec.argv) if not isinstance(a, str)]
    if bad:
        raise CommandError(f"command argument {bad[0]} is {spec.argv[bad[0]]!r}; every argument must be "
                           "text (quote numbers in the study file)")
    if not spec.argv[0].strip():
        raise CommandError("command argument 0 (the program) is blank; name an executable, '{python}' "
                           "or a full path")
    timeout = spec.timeout_seconds
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not (0 < timeout < math.inf):
        raise CommandError(f"timeout_seconds is {timeout!r}; give a positive number of seconds")
    if spec.metrics_from not in METRICS_SOURCES:
        raise CommandError(f"metrics_from is {spec.metrics_from!r}; use one of {', '.join(METRICS_SOURCES)}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in dict(spec.env).items()):
        raise CommandError("env must map names to text values; quote numbers in the study file")
    clashes = [p for p in params if p in BUILTIN_PLACEHOLDERS]
    if clashes:
        raise CommandError(f"parameter {clashes[0]!r} has the name of the built-in placeholder "
                           f"{{{clashes[0]}}}; rename the parameter")
    known = [*BUILTIN_PLACEHOLDERS, *params]
    used = _placeholders(spec)
    for index, name in used:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {{{close[0]}}}? " if close else ""
            raise CommandError(
                f"command argument {index} {spec.argv[index]!r}: unknown placeholder {{{name}}}; {hint}"
                f"use one of {', '.join('{' + k + '}' for k in known)} (write {{{{ for a literal brace)"
            )
    unused = [p for p in params if p not in {name for _, name in used}]
    if unused:
        raise CommandError(
            f"parameter {unused[0]!r} is not passed to the command, so every arm would run the same; "
            f"add an argument such as '--{unused[0]}', '{{{unused[0]}}}'"
        )
    if spec.metrics_from == "file" and "output" not in {name for _, name in used}:
        raise CommandError("metrics_from is 'file' but the command has no {output} argument; pass "
                           "'{output}' so the command knows where to write its metrics")


def _as_text(name: str, value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int | float | np.integer | np.floating)):
        return format_value(value)
    raise CommandError(f"parameter {name!r} is {value!r}; give a number, true/false or text")


def render_argv(spec: CommandSpec, values: dict[str, str]) -> tuple[str, ...]:
    """The argument list with every placeholder replaced; each argument stays one argument."""
    return tuple(
        "".join(value if piece == "text" else values[value] for piece, value in _parse_argument(argument))
        for argument in spec.argv
    )


# --- metrics ----------------------------------------------------------------------------------


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} is {json.dumps(value)[:80]}, expected a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} is {number}, expected a finite number (a diverged run is a failed trial)")
    return number


def _is_curve_object(value) -> bool:
    return isinstance(value, dict) and set(value) == {"steps", "values"}


def _curve(name: str, value) -> Curve:
    what = f"curve {name!r}"
    if _is_curve_object(value):
        steps, values = value["steps"], value["values"]
        if not isinstance(steps, list) or not isinstance(values, list):
            raise ValueError(f"{what}: 'steps' and 'values' must be lists of numbers")
        if len(steps) != len(values):
            raise ValueError(f"{what} has {len(steps)} steps but {len(values)} values; give one value per step")
    elif isinstance(value, list) and value and all(isinstance(p, list) for p in value):
        if any(len(p) != 2 for p in value):
            raise ValueError(f"{what}: every point must be a [step, value] pair")
        steps, values = [p[0] for p in value], [p[1] for p in value]
    elif isinstance(value, list):
        steps, values = list(range(len(value))), value
    else:
        raise ValueError(f"{what} is {type(value).__name__}; expected a list or {{'steps': [...], 'values': [...]}}")
    if not values:
        raise ValueError(f"{what} has no points")
    step_array = np.array([_number(s, f"{what} step {i}") for i, s in enumerate(steps)])
    value_array = np.array([_number(v, f"{what} value at step {s}") for s, v in zip(steps, values)])
    if np.any(np.diff(step_array) <= 0):
        raise ValueError(f"{what}: steps must be strictly increasing")
    step_array.setflags(write=False)
    value_array.setflags(write=False)
    return Curve(steps=step_array, values=value_array)


def parse_metrics(document) -> tuple[dict[str, float], dict[str, Curve]]:
    """Scalars and curves of a decoded metrics document (grammar in the module docstring); ValueError if invalid."""
    if not isinstance(document, dict) or not document:
        raise ValueError(f"metrics must be a non-empty JSON object, got {json.dumps(document)[:80]}")
    scalars: dict[str, float] = {}
    curves: dict[str, Curve] = {}
    nested = set(document) <= _NESTED_KEYS and all(
        isinstance(v, dict) and not _is_curve_object(v) for v in document.values()
    )
    if nested:
        for name, value in document.get("metrics", {}).items():
            scalars[name] = _number(value, f"metric {name!r}")
        for name, value in document.get("curves", {}).items():
            if name in scalars:
                raise ValueError(f"{name!r} is both a metric and a curve; give it one name each")
            curves[name] = _curve(name, value)
        if not scalars and not curves:
            raise ValueError("'metrics' and 'curves' are both empty")
        return scalars, curves
    for name, value in document.items():
        if isinstance(value, list | dict):
            curves[name] = _curve(name, value)
        else:
            scalars[name] = _number(value, f"metric {name!r}")
    return scalars, curves


def _decode(text: str, where: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{where} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None


def _metrics_from_stdout(stdout: str):
    """The last stdout line that is a JSON object; ValueError naming the line if one only looks like it."""
    lines = stdout.splitlines()
    suspect = None
    for number in range(len(lines) - 1, -1, -1):
        line = lines[number].strip()
        if not line.startswith("{"):
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError as error:
            suspect = suspect or (
                f"stdout line {number + 1} looks like JSON but is not valid: {error.msg} at column {error.colno}"
            )
            continue
        if isinstance(document, dict):
            return document
    if suspect:
        raise ValueError(suspect)
    return None


# --- running ----------------------------------------------------------------------------------


def _tail(path: Path, limit_bytes: int) -> str:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - limit_bytes))
        return handle.read().decode("utf-8", errors="replace")


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


# Trials running in this process (marker -> process), those stop_running_trials stopped, and
# whether a trial that starts now is stopped at once (a worker was between its job and Popen).
_running: dict[str, subprocess.Popen] = {}
_stopped: set[str] = set()
_stopping = {"now": False}
_running_lock = threading.Lock()


def allow_trials() -> None:
    """Trials may start again (a new batch, after an earlier one was stopped)."""
    with _running_lock:
        _stopping["now"] = False


def stop_running_trials() -> int:
    """Kill every command trial running in this process (after a second Ctrl-C, say), with all
    it started, and any that starts until ``allow_trials``; each ends as a failed trial that says
    it was stopped. Returns how many were running."""
    with _running_lock:
        _stopping["now"] = True
        running = dict(_running)
        _stopped.update(running)
    for marker, process in running.items():
        _kill_group(process)
        kill_marked(marker)
    return len(running)


def run_command_trial(
    spec: CommandSpec, *, seed: int, params: dict, workdir: Path | None = None, memory: bool = False
) -> CommandTrial:
    """Run the command once for ``seed`` and ``params`` and read its metrics; never raises for a failing run.

    ``workdir`` (created if missing, kept afterwards) is the trial's folder; by default a temporary
    folder removed afterwards. When the command ends, anything it left running in its process
    group is killed too. Raises CommandError only for a spec that ``validate_command`` rejects.
    ``memory``: sample the process tree's resident memory while it runs (``peak_rss_bytes``).
    """
    validate_command(spec, params)
    cwd = Path(spec.cwd) if spec.cwd is not None else Path.cwd()
    commit = git_commit(cwd) if cwd.is_dir() else "unknown"
    temporary = workdir is None
    folder = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-")) if temporary else Path(workdir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        output = folder / "metrics.json"
        # A metrics file left by an earlier trial in the same folder must not pass as this trial's.
        output.unlink(missing_ok=True)
        values = {name: _as_text(name, value) for name, value in params.items()}
        values.update(seed=str(int(seed)), output=str(output), python=sys.executable, workdir=str(folder))
        argv = render_argv(spec, values)
        return _run(spec, argv, cwd, folder, output, commit, memory)
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)


def _wait_sampling(process: subprocess.Popen, timeout: float, peak: list[int]) -> int:
    """``process.wait(timeout)`` while sampling its process group's memory every 10 ms into
    ``peak[0]``: the largest sum of the group's proportional set sizes seen, and never less than
    the largest peak (VmHWM) of any one process alive at a sample, which also catches a spike
    between samples in a process that lives on. A process that peaks and ends between two samples
    is missed, and a command that ends before the first sample leaves ``peak[0]`` at 0. (The
    child's ru_maxrss would not do: it counts the parent's pages the child held between fork and
    exec.)"""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        total, largest = group_memory_bytes(process.pid)
        peak[0] = max(peak[0], total, largest)
        if time.monotonic() >= deadline:
            raise subprocess.TimeoutExpired(process.args, timeout)
        time.sleep(0.01)
    return process.returncode


def _run(spec: CommandSpec, argv: tuple[str, ...], cwd: Path, folder: Path, output: Path, commit: str,
         memory: bool = False) -> CommandTrial:
    stdout_path, stderr_path = folder / "command.stdout", folder / "command.stderr"
    peak = [0]

    def trial(error: str, exit_code: int | None, seconds: float, scalars=None, curves=None) -> CommandTrial:
        stderr = _tail(stderr_path, 4 * STDERR_TAIL_CHARS)[-STDERR_TAIL_CHARS:] if stderr_path.exists() else ""
        return CommandTrial(
            status="failed" if error else "ok", scalars=scalars or {}, curves=curves or {}, error=error,
            exit_code=exit_code, stderr_tail=stderr, argv=argv, duration_seconds=seconds, git_commit=commit,
            peak_rss_bytes=peak[0] if memory and not error and peak[0] > 0 else None,
        )

    started = time.perf_counter()
    marker = trial_marker()
    if not cwd.is_dir():
        return trial(f"working folder {str(cwd)!r} does not exist; fix the target's cwd", None, 0.0)
    # Output goes to files, not pipes: a grandchild holding a pipe open can never block us.
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        try:
            process = subprocess.Popen(
                argv, cwd=cwd, env={**os.environ, **spec.env, TRIAL_MARKER: marker}, stdin=subprocess.DEVNULL,
                stdout=stdout, stderr=stderr, start_new_session=True,
                preexec_fn=die_with_parent,  # a benchmark-assets killed with SIGKILL leaves no trial running
            )
            with _running_lock:
                _running[marker] = process
                if _stopping["now"]:  # stopped while this trial was starting
                    _stopped.add(marker)
                    _kill_group(process)
        except FileNotFoundError:
            where = "on PATH" if os.sep not in argv[0] else f"(relative paths start at {cwd})"
            return trial(
                f"executable {argv[0]!r} not found {where}; use '{{python}}' to run a Python script with "
                "this interpreter, or give the executable's full path", None, time.perf_counter() - started,
            )
        except OSError as error:
            return trial(f"cannot start {argv[0]!r}: {error.strerror or error}; check that it is an "
                         "executable file, or run it through '{python}' or an interpreter", None,
                         time.perf_counter() - started)
        try:
            exit_code = (_wait_sampling(process, spec.timeout_seconds, peak) if memory
                         else process.wait(timeout=spec.timeout_seconds))
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.wait()
            return trial(
                f"timed out after {format_value(spec.timeout_seconds)} s and was killed; raise the target's "
                "timeout_seconds or make the command faster", None, time.perf_counter() - started,
            )
        finally:
            _kill_group(process)
            kill_marked(marker)  # what left the group (setsid, double fork) still carries the marker
            with _running_lock:
                _running.pop(marker, None)
                stopped = marker in _stopped
                _stopped.discard(marker)
    seconds = time.perf_counter() - started
    if stopped:
        return trial("stopped by an interrupt before it finished; run the study again to run it", exit_code, seconds)
    if exit_code != 0:
        how = (f"was killed by signal {signal.Signals(-exit_code).name}" if exit_code < 0 and
               -exit_code in signal.valid_signals() else f"exited with code {exit_code}")
        stderr_tail = _tail(stderr_path, 4 * STDERR_TAIL_CHARS)[-STDERR_TAIL_CHARS:].strip()
        return trial(f"command {how}; stderr: {stderr_tail or '(empty)'}", exit_code, seconds)
    try:
        document, source = _read_metrics(spec, output, stdout_path)
    except ValueError as error:
        return trial(str(error), exit_code, seconds)
    try:
        scalars, curves = parse_metrics(document)
    except ValueError as error:
        return trial(f"{source}: {error}", exit_code, seconds)
    return trial("", exit_code, seconds, scalars, curves)


def _read_metrics(spec: CommandSpec, output: Path, stdout_path: Path) -> tuple[object, str]:
    """The decoded metrics document and where it came from: {output} if written, else (auto) stdout.

    ValueError if there is none or it is not valid JSON."""
    if spec.metrics_from != "stdout" and output.exists():
        where = f"metrics file {output.name}"
        return _decode(output.read_text(encoding="utf-8", errors="replace"), where), where
    if spec.metrics_from != "file":
        document = _metrics_from_stdout(_tail(stdout_path, STDOUT_TAIL_BYTES))
        if document is not None:
            return document, "metrics line of stdout"
    wanted = {
        "auto": "write a JSON object to {output} or print one as the last line of stdout",
        "file": "write a JSON object of metrics to the {output} path",
        "stdout": "print a JSON object of metrics as one line of stdout",
    }[spec.metrics_from]
    raise ValueError(f"command succeeded but reported no metrics; {wanted}")
