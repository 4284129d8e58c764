"""A team's shared deployment: the Dagster instance and the warehouse on one PostgreSQL server,
chosen by $BENCHMARK_ASSETS_POSTGRES_URL with the shipped dagster.yaml unchanged."""
import sqlalchemy as sa

from benchmark_assets_tests.test_cli import run_cli


def test_one_environment_variable_puts_the_instance_and_the_warehouse_on_postgres(tmp_path, study_dir,
                                                                               postgres_database):
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
