"""Shared fixtures: a real Dagster instance in a temporary DAGSTER_HOME, small studies, services.

The suite runs on pytest-xdist (``-n auto`` in pyproject.toml): each worker is its own process with
its own session fixtures. Tests that share something outside their temporary folders (one `dagster
dev`, a broker's queues, the machine's trial processes) carry ``xdist_group`` marks so that one
worker runs them one after another; ports come from a range of each worker's own (``free_port``).

Each process of the suite gets one BLAS thread (unless the environment says otherwise): with a
worker per core plus one, OpenBLAS's own thread per core in every worker (and in every CLI,
worker and server a test starts) spin-waited for each other, and the CPU-bound tests took twice
the CPU time (the ratchet, sequential and max-T calibrations: 165 -> 77 CPU-s, 92 -> 48 s wall)."""
import contextlib
import dataclasses
import itertools
import os
import shutil
import socket
import textwrap
from pathlib import Path

import pytest

from benchmark_assets.processes import limit_blas_threads

_THREADS = os.environ.get("OPENBLAS_NUM_THREADS") or "1"
limit_blas_threads(_THREADS)  # inherited by the xdist workers and every process a test starts
with contextlib.suppress(ImportError, ValueError):  # numpy loaded before this file (by a plugin) keeps its threads otherwise
    from threadpoolctl import threadpool_limits

    threadpool_limits(int(_THREADS))

ROOT = Path(__file__).resolve().parents[1]
REQUIRE_SERVICES = os.environ.get("BENCHMARK_ASSETS_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get("BENCHMARK_ASSETS_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")

TOY_STUDY = """\
kind: ratchet
description: toy study for tests
target: benchmark_assets_tests.toy_target:evaluate
metric: score
scenarios: {count: 10, train_fraction: 0.3}  # 7 validation scenarios: the fewest at which a sign-flip test can reject 1 of 3 constants
trials_per_scenario: 2
constants:
  alpha: {tier: 1, current: 0.3, candidates: [0.1, 0.3, 0.5, 0.7, 0.8, 1.0]}
  beta:  {tier: 2, current: 1.0, candidates: [0.5, 1.0, 2.0]}
  gamma: {tier: 2, current: 1.0, candidates: [1.0, 2.0, 99]}
decision: {bootstrap_resamples: 2000, correction: holm}
"""


def service_unavailable(reason: str):
    """Skip on a user's machine without the service; fail in CI, where it must be there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def template_dagster_home(tmp_path_factory):
    """A DAGSTER_HOME whose instance databases (runs, event index, schedules) were created once per
    worker; every test's ``dagster_home`` is a copy of it, so no test pays for Dagster's schema
    creation and migrations again."""
    from dagster import DagsterInstance

    home = tmp_path_factory.mktemp("template_dagster_home")
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        patch.delenv("BENCHMARK_ASSETS_POSTGRES_URL", raising=False)
        with DagsterInstance.get() as instance:
            instance.get_runs(limit=1)  # opens (and so creates) every storage
    return home


@pytest.fixture
def dagster_home(tmp_path, monkeypatch, template_dagster_home):
    home = tmp_path / "dagster_home"
    shutil.copytree(template_dagster_home, home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("BENCHMARK_ASSETS_INBOX", str(tmp_path / "inbox"))  # never a developer's own inbox
    monkeypatch.delenv("BENCHMARK_ASSETS_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("BENCHMARK_ASSETS_ARTIFACTS", raising=False)
    return home


@pytest.fixture
def instance(dagster_home):
    from dagster import DagsterInstance

    with DagsterInstance.get() as dagster_instance:
        yield dagster_instance


@pytest.fixture
def study_dir(tmp_path, monkeypatch):
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "toy.yaml").write_text(TOY_STUDY)
    monkeypatch.setenv("BENCHMARK_ASSETS_STUDIES", str(folder))
    return folder


@pytest.fixture
def toy_study(study_dir):
    from benchmark_assets.studies import load_study

    return load_study(study_dir / "toy.yaml")


def write_study(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


# Ports handed out by free_port: below the kernel's ephemeral range (32768-60999 on Linux), so no
# client socket of any process is given one of them meanwhile, and a block of its own per xdist
# worker (gw0, gw1, ...), so two workers never hand out the same port.
PORT_BASE, PORTS_PER_WORKER = 20_000, 400
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
_next_ports = itertools.cycle(range(PORT_BASE + PORTS_PER_WORKER * (int(_worker) if _worker.isdigit() else 0),
                                    PORT_BASE + PORTS_PER_WORKER * ((int(_worker) if _worker.isdigit() else 0) + 1)))


def instance_at(folder: Path, yaml_text: str | None, monkeypatch):
    """A Dagster instance in a new ``folder`` made $DAGSTER_HOME, configured by ``yaml_text`` (None:
    the project's dagster.yaml); the pooled storage, like Dagster's default, keeps its shards under
    $DAGSTER_HOME/history/runs."""
    from dagster import DagsterInstance

    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    folder.mkdir()
    if yaml_text is None:
        shutil.copy(ROOT / "dagster.yaml", folder / "dagster.yaml")
    else:
        (folder / "dagster.yaml").write_text(yaml_text)
    return DagsterInstance.from_config(str(folder))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, never the one this worker handed out last (a server
    given the previous port may not have bound it yet) and never one another worker hands out."""
    for port in itertools.islice(_next_ports, PORTS_PER_WORKER):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use (or in TIME_WAIT): the next one
            return port
    raise RuntimeError(f"no free port in this worker's block of {PORTS_PER_WORKER} from {PORT_BASE}")


@pytest.fixture
def postgres_database():
    """A new, empty PostgreSQL database on the loopback server for one test (dropped after it):
    what a team's shared Dagster instance and warehouse start from."""
    import uuid

    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect():
            pass
    except Exception as error:  # noqa: BLE001
        service_unavailable(f"PostgreSQL at {POSTGRES_URL} unreachable: {error.__class__.__name__}")
    name = f"ba_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: a worker per core, and one more for the UI tests, which spend most of their
    minutes waiting for Dagster's daemon (its backfill loop ticks every 30 s) rather than computing."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores + 1


def pytest_collection_modifyitems(config, items):
    """Tests that need a service are marked ``services``; and the longest work goes first. Under
    xdist each group of tests (``xdist_group``) is one unit of work for one worker, handed out in
    this order: the UI tests (minutes, mostly waiting for Dagster's daemon), then the other groups
    and the calibration simulations, so that no long unit starts last while the other workers idle."""
    for item in items:
        if "postgres_database" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.services)

    def rank(item) -> int:
        groups = {mark.args[0] for mark in item.iter_markers("xdist_group") if mark.args}
        if "ui" in groups:
            return 0
        if groups or item.get_closest_marker("calibration"):
            return 1
        if item.get_closest_marker("system") or item.get_closest_marker("services"):
            return 2
        return 3

    items.sort(key=rank)  # stable: collection order within a rank


@dataclasses.dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    """``benchmark-assets`` run in this process (``cli.main``), for checks of an exit code and
    what was printed: ``cli("run", "toy", env={...}, cwd=...)``. The environment and the working
    directory are this test's alone. Tests about processes (signals, two CLIs at once, what a
    real shell sees) start the command as a subprocess instead (test_cli.run_cli)."""
    from benchmark_assets.cli import main

    def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> CliResult:
        env = dict(env or {})
        # main() sets DAGSTER_HOME itself: set through monkeypatch first, so that it is undone after the test
        env.setdefault("DAGSTER_HOME", os.environ.get("DAGSTER_HOME") or str(tmp_path / "cli_home"))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(cwd or ROOT)
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as stop:  # argparse's own exits (--help, a mistake on the command line)
            code = stop.code if isinstance(stop.code, int) else 1
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


# Settings a developer may have exported that would send a test's results elsewhere.
ISOLATED = ("BENCHMARK_ASSETS_WAREHOUSE_URL", "BENCHMARK_ASSETS_ARTIFACTS", "BENCHMARK_ASSETS_POSTGRES_URL",
            "BENCHMARK_ASSETS_ARTIFACTS_URL")


@dataclasses.dataclass
class StudyRan:
    """Studies that already ran on a DAGSTER_HOME of their own (a module-scoped fixture makes it
    once); the tests of the module only read what the runs left there."""
    home: Path
    studies: Path
    outcome: object

    @contextlib.contextmanager
    def opened(self, monkeypatch):
        """This test pointed at the runs' home and studies, with their instance open."""
        from dagster import DagsterInstance

        for name, value in self.env().items():
            monkeypatch.setenv(name, value)
        for name in ISOLATED:
            monkeypatch.delenv(name, raising=False)
        with DagsterInstance.get() as instance:
            yield instance

    def env(self) -> dict:
        return {"DAGSTER_HOME": str(self.home), "BENCHMARK_ASSETS_STUDIES": str(self.studies),
                "BENCHMARK_ASSETS_INBOX": str(self.home.parent / "inbox")}


def study_ran(tmp_path_factory, template_home: Path, files: dict[str, str], steps) -> StudyRan:
    """Write ``files`` (study name -> YAML) to a new studies folder, copy the template home, and run
    ``steps(instance, studies_folder)`` there once; what it returns is ``StudyRan.outcome``."""
    root = tmp_path_factory.mktemp("ran")
    ran = StudyRan(root / "dagster_home", root / "studies", None)
    shutil.copytree(template_home, ran.home)
    ran.studies.mkdir()
    for name, text in files.items():
        write_study(ran.studies, name, text)
    with pytest.MonkeyPatch.context() as patch, ran.opened(patch) as instance:
        ran.outcome = steps(instance, ran.studies)
    return ran


def proc_status(pid: int) -> str:
    """/proc/<pid>/status, or "" once the process is gone."""
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""


def planned_rerun(instance, request, path) -> dict[str, set[str]]:
    """Per step, the partition keys (as text; none for an unpartitioned step) that the study job's
    run of a sensor's ``request`` materialises before any follow-up: the stages the runner plans
    for its ``only`` config, their ranges expanded as Dagster ranges over them."""
    from benchmark_assets.defs.partitions import dimension_order, register, trial_key
    from benchmark_assets.defs.stages import plan_stages
    from benchmark_assets.edits import Rerun
    from benchmark_assets.graph import StudyGraph
    from benchmark_assets.kinds.base import POINT, TRIAL

    graph = StudyGraph.load(path)
    assert request.job_name == graph.run_job, request
    (op_config,) = request.run_config["ops"].values()
    only = op_config["config"]["only"]
    rerun = Rerun(only["points"], only["replicates"], only["trials"], only["steps"])
    register(instance, graph)  # as the job's run does first
    orders = {dimension.name: dimension_order(instance, graph, dimension) for dimension in graph.dimensions}

    def between(order: list[str], first: str, last: str) -> list[str]:
        return order[order.index(first): order.index(last) + 1]

    out: dict[str, set[str]] = {}
    for stage in plan_stages(graph, instance, rerun.wanted(graph), [], every_partition=rerun.steps):
        for key in stage.asset_keys:
            node = graph.nodes[key.path[-1]]
            keys = out.setdefault(node.name, set())
            if node.partitioned_by == TRIAL:
                start, end = ({d.name: k.split("|")[i] for i, d in enumerate(sorted(graph.dimensions, key=lambda d: d.name))}
                              for k in (stage.start, stage.end))
                keys |= {str(trial_key(graph, p, r))
                         for p in between(orders[graph.point.name], start[graph.point.name], end[graph.point.name])
                         for r in between(orders[graph.replicate.name], start[graph.replicate.name],
                                          end[graph.replicate.name])}
            elif node.partitioned_by is not None:
                dimension = graph.point if node.partitioned_by == POINT else graph.replicate
                keys |= set(between(orders[dimension.name], stage.start, stage.end))
    return out
