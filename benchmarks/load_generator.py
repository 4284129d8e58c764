"""Our HTTP load generator next to aiperf, both against the same local mock server: accuracy against
the server's configured truth, CPU cost and start-up time. Prints a markdown table.

    .venv/bin/python benchmarks/load_generator.py [--duration 10] [--concurrency 8] [--no-install]

The mock server runs in a subprocess (``python -m benchmark_assets.servers.mock_llm``), a fresh one
for each tool. Each tool runs as a child process too, so both are measured the same way: wall time
from launch to exit, and CPU time of the child's whole process tree (resource.getrusage of the
children it waited for). aiperf is installed into /tmp/aiperf-venv if missing (as
shared/data/README.md shows); if that fails, the script says so and prints our figures alone.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIPERF_VENV = Path("/tmp/aiperf-venv")
TOKENIZER = ROOT.parent / "shared" / "data" / "aiperf-tokenizer"
READY_PREFIX = "mock_llm listening on "


# --- running things and measuring them ------------------------------------------------------------


@contextmanager
def mock_server(args):
    """A fresh mock server in a subprocess; yields (url, pid)."""
    argv = [sys.executable, "-m", "benchmark_assets.servers.mock_llm", "--port", "0", "--ttft-ms", str(args.ttft_ms),
            "--itl-ms", str(args.itl_ms), "--capacity", str(args.capacity), "--error-rate", "0"]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()
        if not line.startswith(READY_PREFIX):
            raise SystemExit(f"the mock server did not start: {line!r}")
        yield line[len(READY_PREFIX):].split()[0], process.pid
    finally:
        process.terminate()
        process.wait(10)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_measured(argv, *, env=None, timeout=600) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run a child to completion: (result, wall seconds, CPU seconds of its process tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result, wall, cpu


# --- our generator ----------------------------------------------------------------------------------


def run_ours_child(args) -> None:
    """Child mode: one trial of our generator; prints its figures as one JSON line."""
    from benchmark_assets.targets.http_load import LoadSpec, run_load_trial

    trial = run_load_trial(LoadSpec(
        url=args.child_url, endpoint="chat", streaming=True, model="mock", input_tokens=args.isl,
        output_tokens=args.osl, concurrency=args.concurrency, duration_seconds=args.duration, seed=0))
    print(json.dumps({"status": trial.status, "error": trial.error, "metrics": trial.metrics,
                      "generator_cpu_seconds": trial.cpu_seconds}))


def run_ours(args, url: str) -> dict:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child-url", url, "--duration", str(args.duration),
            "--concurrency", str(args.concurrency), "--isl", str(args.isl), "--osl", str(args.osl)]
    result, wall, cpu = run_measured(argv)
    if result.returncode != 0:
        raise SystemExit(f"our generator failed: {result.stderr[-2000:]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report["status"] != "ok":
        raise SystemExit(f"our trial failed: {report['error']}")
    m = report["metrics"]
    return {
        "throughput": m["request_throughput_avg"], "ttft_p50": m["time_to_first_token_p50"],
        "ttft_p99": m["time_to_first_token_p99"], "itl_avg": m["inter_token_latency_avg"],
        "requests": m["successful_request_count"], "errors": m["error_count"], "measured_seconds": m["duration_seconds"],
        "wall": wall, "cpu": cpu, "loop_cpu": report["generator_cpu_seconds"],
    }


# --- aiperf -----------------------------------------------------------------------------------------


def aiperf_executable(install: bool) -> tuple[Path | None, str]:
    """aiperf's command, installing it into its own venv if missing; (None, why) if unavailable."""
    executable = AIPERF_VENV / "bin" / "aiperf"
    if executable.exists():
        return executable, ""
    if not install:
        return None, f"aiperf is not installed at {executable} (--no-install given)"
    print(f"installing aiperf into {AIPERF_VENV} (once) ...", file=sys.stderr, flush=True)
    python = shutil.which("python3") or sys.executable
    try:
        subprocess.run([python, "-m", "venv", str(AIPERF_VENV)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(AIPERF_VENV / "bin" / "pip"), "install", "-q", "aiperf"], check=True,
                       capture_output=True, text=True, timeout=1200)
    except subprocess.CalledProcessError as error:
        tail = (error.stderr or b"")[-800:]
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        return None, f"installing aiperf failed ({' '.join(map(str, error.cmd))}): {tail.strip()}"
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"installing aiperf failed: {error}"
    if not executable.exists():
        return None, f"installing aiperf left no {executable}"
    return executable, ""


def run_aiperf(args, executable: Path, url: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="aiperf-out-") as out:
        argv = [str(executable), "profile", "--model", "mock", "--url", url, "--endpoint-type", "chat", "--streaming",
                "--concurrency", str(args.concurrency), "--benchmark-duration", str(args.duration),
                "--isl", str(args.isl), "--osl", str(args.osl), "--tokenizer", str(TOKENIZER),
                # Without ignore_eos the mock (like a real server) stops early, and the two tools
                # would not be measuring the same work.
                "--extra-inputs", "ignore_eos:true",
                "--ui", "none", "--no-server-metrics", "--no-gpu-telemetry", "--artifact-dir", out]
        # aiperf 0.13 rejects a local tokenizer path when HF_HUB_OFFLINE is set.
        env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
        result, wall, cpu = run_measured(argv, env=env)
        export = Path(out) / "profile_export_aiperf.json"
        if result.returncode != 0 or not export.exists():
            raise RuntimeError(f"aiperf exited with code {result.returncode}: {(result.stderr or result.stdout)[-1500:]}")
        data = json.loads(export.read_text())
    ttft = data["time_to_first_token"]
    return {
        "throughput": data["request_throughput"]["avg"], "ttft_p50": ttft["p50"], "ttft_p99": ttft["p99"],
        "itl_avg": data["inter_token_latency"]["avg"], "requests": data["request_count"]["avg"],
        "errors": sum(e.get("count", 0) for e in data.get("error_summary") or []),
        "measured_seconds": data["benchmark_duration"]["avg"], "wall": wall, "cpu": cpu,
    }


# --- the report -------------------------------------------------------------------------------------


def off(value: float, truth: float) -> str:
    return f"{value:.2f} ({100 * (value - truth) / truth:+.1f} %)"


def table(truth: dict, results: dict[str, dict]) -> str:
    names = list(results)
    rows = [
        ("request throughput (req/s)", f"{truth['request_throughput']:.2f}",
         [off(r["throughput"], truth["request_throughput"]) for r in results.values()]),
        ("TTFT p50 (ms)", f"{truth['time_to_first_token_ms']:.2f}",
         [off(r["ttft_p50"], truth["time_to_first_token_ms"]) for r in results.values()]),
        ("TTFT p99 (ms)", f"{truth['time_to_first_token_ms']:.2f}",
         [off(r["ttft_p99"], truth["time_to_first_token_ms"]) for r in results.values()]),
        ("ITL avg (ms)", f"{truth['inter_token_latency_ms']:.2f}",
         [off(r["itl_avg"], truth["inter_token_latency_ms"]) for r in results.values()]),
        ("requests measured (errors)", "",
         [f"{r['requests']:.0f} ({r['errors']:.0f})" for r in results.values()]),
        ("CPU s per 1,000 requests, process tree", "",
         [f"{1000 * r['cpu'] / r['requests']:.1f}" for r in results.values()]),
        ("CPU s per 1,000 requests, request loop only", "",
         [f"{1000 * r['loop_cpu'] / r['requests']:.1f}" if "loop_cpu" in r else "n/a" for r in results.values()]),
        ("wall s: launch to exit", "", [f"{r['wall']:.1f}" for r in results.values()]),
        ("wall s: start-up and shut-down overhead", "",
         [f"{r['wall'] - r['measured_seconds']:.1f}" for r in results.values()]),
        ("mock server CPU s during the run", "", [f"{r['server_cpu']:.2f}" for r in results.values()]),
    ]
    lines = ["| measure | server's truth | " + " | ".join(names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    lines += [f"| {label} | {truth_cell} | " + " | ".join(cells) + " |" for label, truth_cell, cells in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--capacity", type=int, default=16)
    parser.add_argument("--ttft-ms", type=float, default=20.0)
    parser.add_argument("--itl-ms", type=float, default=5.0)
    parser.add_argument("--isl", type=int, default=128)
    parser.add_argument("--osl", type=int, default=64)
    parser.add_argument("--no-install", action="store_true", help="do not install aiperf if it is missing")
    parser.add_argument("--child-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_url:
        run_ours_child(args)
        return

    sys.path.insert(0, str(ROOT))
    from benchmark_assets.servers.mock_llm import MockLLMConfig

    truth = MockLLMConfig(ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, capacity=args.capacity).expected(
        args.concurrency, args.osl)
    results: dict[str, dict] = {}
    notes = []
    with mock_server(args) as (url, pid):
        before = process_cpu_seconds(pid)
        results["ours"] = run_ours(args, url)
        results["ours"]["server_cpu"] = process_cpu_seconds(pid) - before
    executable, why = aiperf_executable(install=not args.no_install)
    if not TOKENIZER.exists():
        executable, why = None, f"aiperf's tokenizer is missing at {TOKENIZER}"
    if executable is not None:
        with mock_server(args) as (url, pid):
            before = process_cpu_seconds(pid)
            try:
                results["aiperf"] = run_aiperf(args, executable, url)
                results["aiperf"]["server_cpu"] = process_cpu_seconds(pid) - before
            except RuntimeError as error:
                notes.append(f"aiperf did not run: {error}")
    else:
        notes.append(f"aiperf not compared: {why}")

    print(f"Mock server: TTFT {args.ttft_ms:g} ms, ITL {args.itl_ms:g} ms, capacity {args.capacity}; load: "
          f"concurrency {args.concurrency}, {args.isl} input / {args.osl} output tokens, {args.duration:g} s, "
          f"streaming chat, no warmup. Truth: throughput = concurrency / (TTFT + (osl - 1) x ITL), HTTP "
          f"overhead left out. ({os.cpu_count()} cores)")
    print()
    print(table(truth, results))
    for note in notes:
        print()
        print(note)
    if "aiperf" in results:
        ours, theirs = results["ours"], results["aiperf"]
        ratio = (ours["cpu"] / ours["requests"]) / (theirs["cpu"] / theirs["requests"])
        print()
        print(f"Our CPU per request is {ratio:.2f} x aiperf's (process trees); our request loop alone costs "
              f"{1000 * ours['loop_cpu'] / ours['requests']:.2f} ms per request.")


if __name__ == "__main__":
    main()
