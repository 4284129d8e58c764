"""A team's shared deployment: the Dagster instance and the warehouse on one PostgreSQL server,
chosen by $BENCHMARK_ASSETS_POSTGRES_URL with the shipped dagster.yaml unchanged."""
import pytest
import sqlalchemy as sa

from benchmark_assets_tests.test_cli import run_cli

pytestmark = [pytest.mark.system, pytest.mark.services]


def test_one_environment_variable_puts_the_instance_and_the_warehouse_on_postgres(tmp_path, study_dir,
                                                                               postgres_database):
    """docs/deployment.md's first block: one variable, then `benchmark-assets run`."""
    home = tmp_path / "home"
    env = {"DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(study_dir),
           "BENCHMARK_ASSETS_POSTGRES_URL": postgres_database}
    result = run_cli("run", "toy", "--quiet", env_extra=env)
    assert result.returncode == 0, result.stderr
    assert "# Ratchet summary: toy" in result.stdout
    assert "Warehouse: postgresql+psycopg2://postgres@127.0.0.1:5432/" in result.stdout

    engine = sa.create_engine(postgres_database)
    with engine.connect() as conn:
        # Dagster's own tables (dagster-postgres) hold the runs and every partition's materialisation.
        runs = conn.execute(sa.text("SELECT count(*) FROM public.runs WHERE status = 'SUCCESS'")).scalar()
        materialised = conn.execute(sa.text(
            "SELECT count(DISTINCT partition) FROM public.event_logs "
            "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key LIKE '%trials%'")).scalar()
        # The warehouse sits beside them in a schema of its own.
        trials = conn.execute(sa.text("SELECT count(*) FROM benchmark_assets.toy__trials")).scalar()
        ledger = conn.execute(sa.text("SELECT count(*) FROM benchmark_assets.ledger")).scalar()
        public = {row[0] for row in conn.execute(sa.text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"))}
    engine.dispose()
    assert runs >= 3  # scenario catalog, trials, the analysis
    assert materialised == 10 * 10  # 10 sweep points x 10 scenarios, one partition each
    assert trials == 10 * 10 * 2 and ledger == 3
    assert not any(name.startswith("toy__") for name in public)
    # Nothing went to the embedded SQLite files.
    assert not (home / "history" / "runs.db").exists() and not (home / "benchmark.db").exists()

    # The same home without the variable is the embedded default again, with its own history.
    again = run_cli("run", "toy", "--quiet", env_extra={**env, "BENCHMARK_ASSETS_POSTGRES_URL": ""})
    assert again.returncode == 0, again.stderr
    assert (home / "history" / "runs.db").exists() and (home / "benchmark.db").exists()


def test_the_shared_warehouse_url_keeps_its_password_and_the_options_it_had(monkeypatch):
    from benchmark_assets.warehouse import default_url, with_search_path

    secret = "postgresql+psycopg2://team:p%40ss%2Fw0rd@db.internal:5432/bench"  # password p@ss/w0rd
    monkeypatch.delenv("BENCHMARK_ASSETS_WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("BENCHMARK_ASSETS_POSTGRES_URL", secret)
    url = sa.make_url(default_url())
    assert url.password == "p@ss/w0rd" and url.query["options"] == "-csearch_path=benchmark_assets"
    merged = sa.make_url(with_search_path(secret + "?options=-cstatement_timeout%3D5000", "benchmark_assets"))
    assert merged.query["options"] == "-cstatement_timeout=5000 -csearch_path=benchmark_assets"
    kept = with_search_path(secret + "?options=-csearch_path%3Dmine", "benchmark_assets")
    assert sa.make_url(kept).query["options"] == "-csearch_path=mine"


def test_steps_creating_one_table_at_once_on_postgres_all_succeed(postgres_database):
    """Measuring steps start together and each writes the checkpoint table first: on PostgreSQL
    the table is created under a lock, so none fails on 'already exists'."""
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd

    from benchmark_assets.warehouse import Warehouse, with_search_path

    url = with_search_path(postgres_database, "benchmark_assets")

    def write(index: int) -> int:
        frame = pd.DataFrame({"key": [f"k{index}"], "value": [float(index)], f"extra_{index % 3}": [1.0]})
        return Warehouse(url).replace_partitions("racing", frame, ["key"], [(f"k{index}",)])

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(write, range(16))) == [1] * 16
    rows = Warehouse(url).read("racing")
    assert sorted(rows["key"]) == sorted(f"k{i}" for i in range(16))
    assert {"extra_0", "extra_1", "extra_2"} <= set(rows.columns)  # widened by several writers, none lost


def test_a_second_run_of_a_study_on_another_machine_waits_for_the_first(postgres_database):
    """Machines of a team share the PostgreSQL server, not a folder for file locks."""
    import threading
    import time

    from benchmark_assets.locks import database_lock

    said, order = [], []
    first_holds = threading.Event()

    def first():
        with database_lock(postgres_database, "benchmark_assets:study:s"):
            first_holds.set()
            time.sleep(1.0)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    first_holds.wait(10)
    with database_lock(postgres_database, "benchmark_assets:study:s", say=said.append, poll_seconds=0.1,
                       waiting="waiting for another run of s ({holder}) to finish"):
        order.append("second runs")
    thread.join()
    assert order == ["first done", "second runs"]
    assert said == ["waiting for another run of s (a process on another machine or in another home) to finish"]
