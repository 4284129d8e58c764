"""Faults a user meets: a run killed with SIGKILL mid-study must not block or lose what came after it."""
import os
import signal
import subprocess
import sys
import time

from dagster import DagsterInstance, DagsterRunStatus

from benchmark_assets_tests.conftest import ROOT, write_study
from benchmark_assets_tests.kinds.load_sweep.test_assets import free_port


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
        if (home / "dagster.yaml").exists() and (home / "history").exists():
            with DagsterInstance.get() as instance:
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
