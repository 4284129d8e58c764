"""Faults a user meets: a run killed with SIGKILL mid-study must not block or lose what came after it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from benchmark_assets.locks import file_lock
from benchmark_assets_tests.conftest import ROOT, free_port, write_study

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]  # real processes: kill -9, Ctrl-C, leftovers


def cli(env, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "benchmark_assets.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_load_sweep_killed_mid_trial_frees_its_endpoint_for_the_next_run(tmp_path, study_dir, monkeypatch):
    port = free_port()
    write_study(study_dir, "killed", f"""\
        kind: load_sweep
        target:
          http_load: {{url: "http://127.0.0.1:{port}", concurrency: [1, 2], output_tokens: 4, input_tokens: 8,
                      duration_seconds: 3, request_timeout_seconds: 5}}
        mock_server: {{ttft_ms: 2, itl_ms: 1, capacity: 2}}
        trials: 2
        """)
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    pool = f"load_endpoint_127_0_0_1_{port}"
    first = cli(env, "run", "killed", "--quiet")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until a load trial holds the endpoint's slot
        if (home / "dagster.yaml").exists():
            # The CLI creates the instance's databases under this lock; opening them meanwhile
            # would race it (two processes stamping the schema version at once).
            with file_lock(home / "locks" / "instance.lock"), DagsterInstance.get() as instance:
                if instance.event_log_storage.get_concurrency_info(pool).claimed_slots:
                    break
        time.sleep(0.2)
    else:
        first.kill()
        raise AssertionError(f"no trial started: {first.communicate()[1][-2000:]}")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    with DagsterInstance.get() as instance:  # what kill -9 leaves behind
        stuck = [r for r in instance.get_runs() if r.status == DagsterRunStatus.STARTED]
        assert len(stuck) == 1 and instance.event_log_storage.get_concurrency_info(pool).claimed_slots

    second = cli(env, "run", "killed", "--quiet")
    out, err = second.communicate(timeout=300)  # hangs forever without the fix
    assert second.returncode == 0, err
    assert f"run {stuck[0].run_id} (pid {first.pid}, gone) marked failed; its pool slots are free again" in err
    assert "Ran 4 load trials over 2 sweep points" in out  # the port was free: the new mock server started
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(stuck[0].run_id).status == DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_info(pool).claimed_slots


def kill_once_checkpointed(process, home: Path, warehouse, table: str, rows: int) -> None:
    """SIGKILL ``process`` (a CLI run) as soon as its checkpoint ``table`` holds ``rows`` rows."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (home / "benchmark.db").exists() and warehouse.has_table(table) and len(warehouse.read(table)) >= rows:
            break
        if process.poll() is not None:
            raise AssertionError(f"the run ended early: {process.communicate()[1][-2000:]}")
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


SLOW_COMPARISON = """\
kind: comparison
target:
  command: ["{python}", "-c", "import json, os, sys, time; open(sys.argv[3], 'a').write('%d %s %s\\\\n' % (os.getppid(), sys.argv[1], sys.argv[2])); time.sleep(0.7); print(json.dumps({{'score': float(sys.argv[1]) + int(sys.argv[2]) % 7 / 100}}))", "{x}", "{seed}", "{log}"]
  parallel: 2
arms:
  control:   {x: 0.5, log: LOG}
  candidate: {x: 0.4, log: LOG}
seeds: [1, 2, 3, 4, 5, 6, 7, 8]
metric: score
direction: minimize
decision: {bootstrap_resamples: 500}
"""


def test_a_comparison_killed_mid_run_keeps_every_finished_trial(tmp_path, study_dir, monkeypatch):
    from benchmark_assets.warehouse import Warehouse

    log = tmp_path / "executions.log"
    write_study(study_dir, "slow", SLOW_COMPARISON.replace("LOG", str(log)))
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    first = cli(env, "run", "slow", "--quiet")
    checkpoint = Warehouse(f"sqlite:///{home / 'benchmark.db'}")
    kill_once_checkpointed(first, home, checkpoint, "slow__trials__checkpoint", 4)
    kept = checkpoint.read("slow__trials__checkpoint")
    assert 4 <= len(kept) < 16 and (kept["status"] == "ok").all()
    assert not checkpoint.has_table("slow__trials")  # the stage never finished: nothing else was stored

    second = cli(env, "run", "slow", "--quiet")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    rerun = [line.split()[1:] for line in log.read_text().splitlines() if line.split()[0] == str(second.pid)]
    assert len(rerun) == 16 - len(kept)  # only what the killed run had not finished
    assert f"Ran {16 - len(kept)} new trials" in out and f"Kept {len(kept)} trials an interrupted run had finished" in out
    assert not {(float(x), int(seed)) for x, seed in rerun} & {(0.5 if arm == "control" else 0.4, int(seed))
                                                                for arm, seed in zip(kept["arm"], kept["seed"])}
    trials = checkpoint.read("slow__trials")
    assert len(trials) == 16 and (trials["status"] == "ok").all()
    assert checkpoint.read("slow__trials__checkpoint").empty  # stored for good: the checkpoint is cleared
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:  # the kept trials count as materialised too
        from dagster import AssetKey

        assert len(instance.get_materialized_partitions(AssetKey(["slow", "trials"]))) == 16


# Each trial logs "<pid of benchmark-assets> <x> <seed>" when it starts; seeds above BLOCK_FROM
# sleep 900 s (in a test they only end when they are stopped).
GATED_COMPARISON = SLOW_COMPARISON.replace(
    "time.sleep(0.7); print(json.dumps({{'score': float(sys.argv[1]) + int(sys.argv[2]) % 7 / 100}}))",
    "seed = int(sys.argv[2]); time.sleep(1.0 if seed <= BLOCK_FROM else 900); "
    "print(json.dumps({{'score': float(sys.argv[1]) + seed % 7 / 100}}))")
assert "BLOCK_FROM" in GATED_COMPARISON  # the command above was replaced


def _started(log, pid) -> list[tuple[float, int]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [(float(x), int(seed)) for p, x, seed in (line.split() for line in lines) if p == str(pid)]


def _kept(checkpoint) -> set[tuple[float, int]]:
    exists = Path(checkpoint.url.split("///", 1)[1]).exists() and checkpoint.has_table("gated__trials__checkpoint")
    rows = checkpoint.read("gated__trials__checkpoint") if exists else None
    if rows is None or rows.empty:
        return set()
    assert (rows["status"] == "ok").all(), rows[["arm", "seed", "status", "error"]]
    return {(0.5 if arm == "control" else 0.4, int(seed)) for arm, seed in zip(rows["arm"], rows["seed"])}


def _gated(tmp_path, study_dir, block_from: int):
    from benchmark_assets.warehouse import Warehouse

    log = tmp_path / "executions.log"
    write_study(study_dir, "gated", GATED_COMPARISON.replace("LOG", str(log)).replace("BLOCK_FROM", str(block_from)))
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    return log, env, Warehouse(f"sqlite:///{home / 'benchmark.db'}")


def _wait_for(condition, process, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {process.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"never saw {what}")
        time.sleep(0.05)


def test_ctrl_c_lets_running_trials_finish_and_keeps_them(tmp_path, study_dir):
    log, env, warehouse = _gated(tmp_path, study_dir, block_from=8)  # every trial ends after 1 s
    first = cli(env, "run", "gated", "--quiet")
    _wait_for(lambda: len(_kept(warehouse)) >= 2, first,
              "two finished trials")
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    started, kept = _started(log, first.pid), _kept(warehouse)
    # Every trial that had started when Ctrl-C came finished and was kept; none started after it.
    assert kept == set(started) and 2 <= len(kept) < 16, (started, kept)
    assert "letting the 2 running ones finish so their results are kept" in err
    assert f"interrupted: {len(kept)} of the 16 trials this run wanted are finished and kept" in err
    assert "Traceback" not in err and "DagsterExecutionInterruptedError" not in err
    assert not warehouse.has_table("gated__trials")

    second = cli(env, "run", "gated", "--quiet")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert set(_started(log, second.pid)) == {(x, s) for x in (0.5, 0.4) for s in range(1, 9)} - kept
    assert f"Kept {len(kept)} trials an interrupted run had finished" in out


def test_a_second_ctrl_c_stops_running_trials_at_once_and_keeps_the_finished_ones(tmp_path, study_dir):
    log, env, warehouse = _gated(tmp_path, study_dir, block_from=2)  # seeds 3.. never end by themselves
    first = cli(env, "run", "gated", "--quiet")
    blocked = lambda: len([s for _, s in _started(log, first.pid) if s > 2]) == 2  # noqa: E731
    # Two at a time: the first two quick trials finish, then two that never end take both places.
    _wait_for(lambda: len(_kept(warehouse)) == 2 and blocked(), first, "two finished and two blocked trials")
    first.send_signal(signal.SIGINT)
    time.sleep(0.5)
    first.send_signal(signal.SIGINT)
    _out, err = first.communicate(timeout=60)  # the blocked trials would run for 900 s
    assert first.returncode == 130, err
    assert "stopped the running trials; the 2 finished ones are kept" in err
    assert _kept(warehouse) == {(x, s) for x, s in _started(log, first.pid) if s <= 2}
    leftovers = subprocess.run(["pgrep", "-f", str(log)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], "a stopped trial is still running"


def test_a_load_sweep_killed_after_some_trials_keeps_them_when_rerun_soon(tmp_path, study_dir, monkeypatch):
    from benchmark_assets.warehouse import Warehouse

    port = free_port()
    write_study(study_dir, "resumed", f"""\
        kind: load_sweep
        target:
          http_load: {{url: "http://127.0.0.1:{port}", concurrency: [1, 2, 3], output_tokens: 4, input_tokens: 8,
                      duration_seconds: 1, request_timeout_seconds: 5}}
        mock_server: {{ttft_ms: 2, itl_ms: 1, capacity: 2}}
        trials: 2
        """)
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    warehouse = Warehouse(f"sqlite:///{home / 'benchmark.db'}")

    def checkpointed():
        if not (home / "benchmark.db").exists() or not warehouse.has_table("resumed__trials__checkpoint"):
            return []
        rows = warehouse.read("resumed__trials__checkpoint")
        return list(zip(rows["sweep_point"], rows["trial"], rows["status"]))

    first = cli(env, "run", "resumed", "--quiet")
    deadline = time.monotonic() + 120
    while len(checkpointed()) < 2:
        assert first.poll() is None, first.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no trial finished"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    kept = checkpointed()
    assert 2 <= len(kept) < 6 and all(status == "ok" for *_, status in kept)

    second = cli(env, "run", "resumed", "--quiet")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert f"Ran {6 - len(kept)} load trials over 3 sweep points" in out
    assert f"Kept {len(kept)} trials an interrupted run had finished" in out
    trials = warehouse.read("resumed__trials")
    assert len(trials) == 6 and (trials["status"] == "ok").all()
    assert {(p, t) for p, t, _ in kept} <= set(zip(trials["sweep_point"], trials["trial"]))
    assert checkpointed() == []


def test_ctrl_c_after_the_trials_stage_says_the_trials_are_stored(instance, toy_study, monkeypatch):
    import pytest
    from dagster import AssetKey

    import benchmark_assets.defs.runner as runner
    from benchmark_assets.defs.stages import Stage

    def interrupted_in_the_analysis(*args, **kwargs):
        raise runner.StudyInterrupted(stage=Stage("search, verdicts, interactions, cumulative, ratchet summary", [AssetKey(["toy", "verdicts"])]))

    monkeypatch.setattr(runner, "materialise_stages", interrupted_in_the_analysis)
    with pytest.raises(runner.StudyInterrupted, match=r"interrupted during search, verdicts, interactions, cumulative, ratchet summary: the "
                                                          r"trials are stored; run the study again \(`benchmark-assets run toy` or its job\)"):
        runner.run_study("toy", quiet=True, instance=instance)


SLOW_SUITE = """\
kind: acceptance
repeats: 8
benchmarks:
  slow:
    baseline: {call: "benchmark_assets_tests.acceptance_sides:slow"}
    optimised: {call: "benchmark_assets_tests.acceptance_sides:slow"}
    metrics: [score]
    warmup: 0
    criteria:
      - {measure: score, equivalent_within: 0.05}
"""


def test_an_acceptance_suite_killed_mid_run_keeps_the_repeats_it_measured_on_both_sides(tmp_path, study_dir):
    from benchmark_assets.warehouse import Warehouse

    log = tmp_path / "calls.log"
    write_study(study_dir, "slow_suite", SLOW_SUITE)
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(study_dir),
           "ACCEPTANCE_CALL_LOG": str(log)}
    first = cli(env, "run", "slow_suite", "--quiet")
    checkpoint = Warehouse(f"sqlite:///{home / 'benchmark.db'}")
    kill_once_checkpointed(first, home, checkpoint, "slow_suite__trials__checkpoint", 6)  # 3 repeats, both sides
    kept = checkpoint.read("slow_suite__trials__checkpoint")
    # Both sides of a repeat are checkpointed together, never one without the other.
    assert len(kept) >= 6 and (kept.groupby("repeat")["side"].nunique() == 2).all()
    kept_repeats = set(kept["repeat"])

    second = cli(env, "run", "slow_suite", "--quiet")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    # Only the repeats the killed run had not measured on both sides are measured (seed = repeat).
    measured_again = {int(seed) for pid, seed in (line.split() for line in log.read_text().splitlines())
                      if int(pid) == second.pid}
    assert measured_again == set(range(8)) - kept_repeats
    assert f"Kept {len(kept)} trials an interrupted run had finished" in out
    trials = checkpoint.read("slow_suite__trials")
    assert len(trials) == 16 and (trials["status"] == "ok").all()
    assert checkpoint.read("slow_suite__trials__checkpoint").empty
