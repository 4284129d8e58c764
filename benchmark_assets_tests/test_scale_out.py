"""Scale-out on Dagster's celery executor: real workers (``benchmark-assets worker``) on
127.0.0.1, a real broker (Redis, RabbitMQ), a real instance (PostgreSQL, SQLite)."""
import os
import random
import socket
import subprocess
import sys

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from benchmark_assets.defs import scale_out
from benchmark_assets_tests.conftest import ROOT, TOY_STUDY, service_unavailable, write_study
from benchmark_assets_tests.test_cli import run_cli

# One broker, one "dagster" queue on it: these tests run one after another on one worker.
pytestmark = [pytest.mark.system, pytest.mark.services, pytest.mark.xdist_group("celery"), pytest.mark.timeout(600)]

CPU_STUDY = """\
kind: ratchet
description: a CPU-bound sweep spread over celery workers
target: benchmark_assets.examples.cpu_bound:evaluate
metric: score
scenarios: {count: 10, train_fraction: 0.3}
trials_per_scenario: 2
constants:
  alpha: {tier: 1, current: 0.3, candidates: [0.1, 0.3, 0.5, 0.7, 0.9]}
decision: {bootstrap_resamples: 2000, correction: holm}
"""


@given(st.lists(st.integers(), max_size=60), st.integers(min_value=1, max_value=20))
def test_chunks_are_contiguous_near_equal_and_cover_every_trial_once(keys, chunks):
    pieces = scale_out.split(keys, chunks)
    assert [key for piece in pieces for key in piece] == keys
    assert len(pieces) == min(chunks, len(keys)) and all(pieces)
    if pieces:
        assert max(map(len, pieces)) - min(map(len, pieces)) <= 1


def test_chunks_setting_is_read_from_the_environment_and_checked(monkeypatch):
    monkeypatch.delenv(scale_out.BROKER_ENV, raising=False)
    monkeypatch.setenv(scale_out.CHUNKS_ENV, "3")
    assert scale_out.trial_chunks() == 0  # no broker: nothing is fanned out
    monkeypatch.setenv(scale_out.BROKER_ENV, "redis://127.0.0.1:6379/0")
    assert scale_out.trial_chunks() == 3 and scale_out.backend() == "redis://127.0.0.1:6379/0"
    monkeypatch.setenv(scale_out.BROKER_ENV, "pyamqp://guest@127.0.0.1//")
    assert scale_out.backend() == "rpc://"
    for bad, words in (("many", "is not a whole number"), ("0", "must be at least 1")):
        monkeypatch.setenv(scale_out.CHUNKS_ENV, bad)
        with pytest.raises(ValueError, match=words):
            scale_out.trial_chunks()


def test_the_worker_command_without_a_broker_is_one_line_and_exit_code_2(tmp_path):
    result = run_cli("worker", env_extra={"DAGSTER_HOME": str(tmp_path / "h"), scale_out.BROKER_ENV: ""})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "BENCHMARK_ASSETS_CELERY_BROKER is not set" in result.stderr


def _redis_broker() -> str:
    """A Redis database of its own on the loopback server, emptied (no task of another run waits in it)."""
    import redis

    database = random.randint(1, 15)
    try:
        client = redis.Redis(host="127.0.0.1", port=6379, db=database, socket_connect_timeout=2)
        client.flushdb()
    except redis.exceptions.ConnectionError as error:
        service_unavailable(f"Redis at 127.0.0.1:6379 unreachable: {error}")
    return f"redis://127.0.0.1:6379/{database}"


def _workers_of_steps(run_id: str) -> dict[str, str]:
    """Which celery worker executed each step of a run (the executor's engine events say)."""
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.get() as instance:
        events = instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
    found = {}
    for event in events:
        metadata = event.dagster_event.engine_event_data.metadata or {}
        if "Celery worker" in metadata:
            found[event.step_key] = metadata["Celery worker"].value
    return found


def _trials_run(instance_env: dict) -> str:
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.get() as instance:
        runs = instance.get_runs(RunsFilter(tags={"benchmark_assets/stage": "trials"}))
    assert len(runs) == 1
    return runs[0].run_id


def test_a_sweep_fans_out_over_two_real_workers_with_the_instance_on_postgres(tmp_path, monkeypatch,
                                                                               postgres_database):
    """docs/deployment.md's celery block: a broker named, two `benchmark-assets worker`s, a run."""
    studies = tmp_path / "studies"
    studies.mkdir()
    write_study(studies, "cpu", CPU_STUDY)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(tmp_path / "home"),
           "BENCHMARK_ASSETS_STUDIES": str(studies), "BENCHMARK_ASSETS_POSTGRES_URL": postgres_database,
           scale_out.BROKER_ENV: _redis_broker(), scale_out.CHUNKS_ENV: "8", "BENCHMARK_ASSETS_CPU_WORK": "50000"}
    env.pop("BENCHMARK_ASSETS_WAREHOUSE_URL", None)
    with scale_out.local_workers(2, env, tmp_path / "logs"):
        result = run_cli("run", "cpu", "--quiet", env_extra=env)
    assert result.returncode == 0, result.stderr
    assert "| alpha | 1 | 0.3 | 0.7 |" in result.stdout  # the same decision as on one machine

    for name in ("DAGSTER_HOME", "BENCHMARK_ASSETS_POSTGRES_URL"):
        monkeypatch.setenv(name, env[name])
    workers = _workers_of_steps(_trials_run(env))
    host = socket.gethostname()
    measured = {step: worker for step, worker in workers.items() if "__measure_" in step}
    assert len(measured) == 8  # 50 trial partitions in 8 steps
    assert set(measured.values()) == {f"w1@{host}", f"w2@{host}"}  # both workers took steps
    assert "cpu__trials.cpu__trials__gather" in workers

    engine = sa.create_engine(postgres_database)
    with engine.connect() as conn:
        spread = pd.read_sql("SELECT sweep_point, seed_id, trial_index, score FROM benchmark_assets.cpu__trials",
                             conn)
        materialised = conn.execute(sa.text(
            "SELECT count(DISTINCT partition) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
            "AND asset_key LIKE '%cpu%trials%'")).scalar()
        leftovers = conn.execute(sa.text("SELECT count(*) FROM benchmark_assets.cpu__trials__checkpoint")).scalar()
    engine.dispose()
    assert materialised == 5 * 10 and len(spread) == 5 * 10 * 2 and leftovers == 0

    # The same sweep in one process (no broker, SQLite) measures exactly the same trials.
    alone_env = {**env, "DAGSTER_HOME": str(tmp_path / "alone"), "BENCHMARK_ASSETS_POSTGRES_URL": "",
                 scale_out.BROKER_ENV: ""}
    alone = run_cli("run", "cpu", "--quiet", env_extra=alone_env)
    assert alone.returncode == 0, alone.stderr
    local = sa.create_engine(f"sqlite:///{tmp_path / 'alone' / 'benchmark.db'}")
    with local.connect() as conn:
        single = pd.read_sql("SELECT sweep_point, seed_id, trial_index, score FROM cpu__trials", conn)
    keys = ["sweep_point", "seed_id", "trial_index"]
    pd.testing.assert_frame_equal(spread.sort_values(keys).reset_index(drop=True),
                                  single.sort_values(keys).reset_index(drop=True), check_dtype=False)


def test_rabbitmq_as_the_broker_and_failed_trials_on_a_worker_keep_their_errors(tmp_path, monkeypatch):
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError as error:
        service_unavailable(f"RabbitMQ at 127.0.0.1:5672 unreachable: {error}")
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "toy.yaml").write_text(TOY_STUDY)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(tmp_path / "home"),
           "BENCHMARK_ASSETS_STUDIES": str(studies), "BENCHMARK_ASSETS_POSTGRES_URL": "",
           scale_out.BROKER_ENV: "pyamqp://guest@127.0.0.1//", scale_out.CHUNKS_ENV: "3"}
    env.pop("BENCHMARK_ASSETS_WAREHOUSE_URL", None)
    # RabbitMQ keeps queued tasks across runs (a Redis database here is flushed): none of an
    # interrupted earlier run may reach this test's worker.
    purge = subprocess.run([sys.executable, "-m", "celery", "-A", "benchmark_assets.defs.scale_out.celery_app", "purge", "-f",
                            "-Q", "dagster"], env=env, capture_output=True, text=True, timeout=120)
    assert purge.returncode == 0, purge.stderr
    with scale_out.local_workers(1, env, tmp_path / "logs"):
        result = run_cli("run", "toy", "--quiet", env_extra=env)
    assert result.returncode == 0, result.stderr
    assert "20 x RuntimeError: toy target crashed on purpose" in result.stderr
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    workers = _workers_of_steps(_trials_run(env))
    assert len([s for s in workers if "__measure_" in s]) == 3
    assert set(workers.values()) == {f"w1@{socket.gethostname()}"}
    local = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'benchmark.db'}")
    with local.connect() as conn:
        failed = pd.read_sql("SELECT error FROM toy__trials WHERE status != 'ok'", conn)
    assert len(failed) == 20 and failed["error"].str.contains("crashed on purpose").all()


def _cpu_env(tmp_path, *, work: str, chunks: str) -> dict:
    studies = tmp_path / "studies"
    studies.mkdir(exist_ok=True)
    write_study(studies, "cpu", CPU_STUDY)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(tmp_path / "home"),
           "BENCHMARK_ASSETS_STUDIES": str(studies), "BENCHMARK_ASSETS_POSTGRES_URL": "",
           scale_out.BROKER_ENV: _redis_broker(), scale_out.CHUNKS_ENV: chunks, "BENCHMARK_ASSETS_CPU_WORK": work}
    env.pop("BENCHMARK_ASSETS_WAREHOUSE_URL", None)
    return env


def test_ctrl_c_during_a_scaled_out_sweep_is_an_interruption_not_a_failure(tmp_path):
    """Ctrl-C reaches the executor: no new step is handed out, the running one finishes, and the
    CLI says it was interrupted (exit 130, as in process), not 'failed, see the UI' (exit 1).
    A ratchet measures everything again next time, so nothing is counted as kept."""
    import signal
    import time

    env = _cpu_env(tmp_path, work="2000000", chunks="8")  # ~0.15 s a trial, ~2 s a step
    with scale_out.local_workers(1, env, tmp_path / "logs") as logs:
        cli = subprocess.Popen([sys.executable, "-m", "benchmark_assets.cli", "run", "cpu", "--quiet"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while logs[0].read_text().count("succeeded in") < 2:  # the worker has finished a step or two
            assert time.monotonic() < deadline and cli.poll() is None, cli.communicate()
            time.sleep(0.2)
        cli.send_signal(signal.SIGINT)
        _, err = cli.communicate(timeout=300)
        revoked = logs[0].read_text().count("flagged as revoked")
    assert cli.returncode == 130, err
    assert "interrupted: 0 of the 50 trials this run wanted are finished and kept" in err
    assert "see the run in the Dagster UI" not in err
    assert revoked >= 1  # steps not yet started were taken back from the queue
    again = run_cli("run", "cpu", "--quiet", env_extra={**env, scale_out.BROKER_ENV: "", "BENCHMARK_ASSETS_CPU_WORK": "1000"})
    assert again.returncode == 0, again.stderr
    local = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'benchmark.db'}")
    with local.connect() as conn:
        assert conn.execute(sa.text('SELECT count(*) FROM "cpu__trials"')).scalar() == 5 * 10 * 2


def test_a_worker_that_cannot_load_the_target_says_why(tmp_path):
    """The launching process can import the study's target, the worker cannot: the run fails
    before any step runs, and the user reads the worker's own error, not 'see the UI'."""
    private = tmp_path / "private"
    private.mkdir()
    (private / "only_here.py").write_text((ROOT / "benchmark_assets_tests" / "toy_target.py").read_text())
    env = _cpu_env(tmp_path, work="1000", chunks="2")
    write_study(tmp_path / "studies", "elsewhere", TOY_STUDY.replace("benchmark_assets_tests.toy_target",
                                                                      "only_here"))
    with scale_out.local_workers(1, env, tmp_path / "logs"):
        result = run_cli("run", "elsewhere", "--quiet",
                         env_extra={**env, "PYTHONPATH": f"{ROOT}{os.pathsep}{private}"})
    assert result.returncode == 1
    assert "only_here" in result.stderr and "see the run in the Dagster UI" not in result.stderr
