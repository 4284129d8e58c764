"""Shared fixtures: a real Dagster instance in a temporary DAGSTER_HOME, small studies, services."""
import os
import shutil
import socket
import textwrap
from pathlib import Path

import pytest

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


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
