"""The benchmark-assets command as users run it: a real subprocess against a temporary home for
the end-to-end run, in this process (``cli`` fixture) where only exit codes and messages count."""
import os
import subprocess
import sys

import pytest

from benchmark_assets_tests.conftest import POSTGRES_URL, ROOT, service_unavailable


def run_cli(*args, env_extra=None, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "benchmark_assets.cli", *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=cwd)


@pytest.mark.system
def test_cli_runs_a_study_prints_the_report_and_keeps_a_ledger(tmp_path, study_dir, cli):
    home = tmp_path / "home"
    env = {"DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    result = run_cli("run", "toy", env_extra=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr  # progress bars only on a terminal, not in a pipe or CI's log
    assert "Warning" not in result.stderr, result.stderr  # Dagster's beta notices are not for CLI users
    assert "# Ratchet summary: toy" in result.stdout
    assert "*corrected CI* is the one that agrees with the change's one-sided test" in result.stdout
    assert "| alpha | 1 | 0.3 | 0.7 |" in result.stdout
    assert f"Artifacts: {home / 'artifacts' / 'toy' / 'latest'}" in result.stdout
    assert (home / "dagster.yaml").exists() and (home / "benchmark.db").exists()
    report = cli("report", "toy", env=env)
    assert report.returncode == 0 and "# Ratchet summary: toy" in report.stdout
    ledger = cli("ledger", "--constant", "alpha", env=env)
    assert ledger.returncode == 0 and "accept" in ledger.stdout and "beta" not in ledger.stdout


def test_cli_bad_study_is_one_line_and_exit_code_2(tmp_path, study_dir, cli):
    (study_dir / "broken.yaml").write_text((study_dir / "toy.yaml").read_text().replace("[0.5, 1.0, 2.0]", "[0.5, 0.5]"))
    result = cli("run", "broken", env={"DAGSTER_HOME": str(tmp_path / "h"), "BENCHMARK_ASSETS_STUDIES": str(study_dir)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "constants.beta.candidates: duplicate candidate 0.5" in lines[0]


@pytest.mark.services
def test_cli_runs_against_a_postgres_warehouse(tmp_path, study_dir, cli):
    import sqlalchemy as sa

    try:
        with sa.create_engine(POSTGRES_URL).connect():
            pass
    except Exception as error:  # noqa: BLE001
        service_unavailable(f"PostgreSQL at {POSTGRES_URL} unreachable: {error.__class__.__name__}")
    schema_study = study_dir / "pgtoy.yaml"
    schema_study.write_text((study_dir / "toy.yaml").read_text())
    env = {"DAGSTER_HOME": str(tmp_path / "h"), "BENCHMARK_ASSETS_STUDIES": str(study_dir),
           "BENCHMARK_ASSETS_WAREHOUSE_URL": POSTGRES_URL}
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        for name in ("scenario_catalog", "trials", "aggregates", "verdicts", "ratchet_summary"):
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "pgtoy__{name}"'))
    for _ in range(2):
        result = cli("run", "pgtoy", "--quiet", env=env)
        assert result.returncode == 0, result.stderr
    with engine.connect() as conn:
        count = conn.execute(sa.text('SELECT count(*) FROM "pgtoy__trials"')).scalar()
        distinct = conn.execute(sa.text(
            'SELECT count(*) FROM (SELECT DISTINCT sweep_point, seed_id, trial_index FROM "pgtoy__trials") d')).scalar()
    assert count == distinct == 10 * 10 * 2


FAILING = """\
kind: ratchet
target: benchmark_assets_tests.failing_target:evaluate
metric: score
scenarios: {count: 6, train_fraction: 0.5}
constants:
  alpha: {tier: 1, current: 0.3, candidates: [0.1, 0.5]}
decision: {bootstrap_resamples: 200}
"""


def test_a_study_whose_every_trial_fails_exits_3_and_shows_the_trials_own_error(tmp_path, study_dir, cli):
    (study_dir / "broken_setup.yaml").write_text(FAILING)
    env = {"DAGSTER_HOME": str(tmp_path / "home"), "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    result = cli("run", "broken_setup", "--quiet", env=env)
    assert result.returncode == 3, result.stderr
    assert "18 of 18 trials failed; most common errors:" in result.stderr
    assert "18 x FileNotFoundError: model weights not found at /models/ranker.bin" in result.stderr
    assert "every trial failed, so broken_setup decided nothing" in result.stderr
    assert "## Failed trials: 18 of 18" in result.stdout  # the report says it too


def test_a_comparison_whose_program_is_missing_is_refused_before_anything_runs(tmp_path, study_dir, cli):
    (study_dir / "missing_program.yaml").write_text(
        "kind: comparison\ntarget: {command: [no_such_program_xyz, '{seed}', '{x}']}\n"
        "arms: {control: {x: 1}, candidate: {x: 2}}\nseeds: [1, 2, 3]\nmetric: loss\n")
    env = {"DAGSTER_HOME": str(tmp_path / "home"), "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    result = cli("run", "missing_program", "--quiet", env=env)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert line.endswith("missing_program.yaml: target.command: program 'no_such_program_xyz' is not on PATH. Fix: "
                         "install it, give its full path, or use '{python}' to run a Python script with this "
                         "interpreter"), line
    assert len(line.splitlines()) == 1 and not (tmp_path / "home").exists()
