"""Optional installs: the base install carries what the main job and the UI need; a study or a
setting that needs a missing extra is refused with one line naming the file, the field and the
`pip install` that fixes it, before anything runs or is created. A missing module is simulated by
setting it to None in sys.modules (what importlib then reports for an uninstalled one)."""
import logging
import os
import subprocess
import sys
import tomllib

import pytest

from benchmark_assets.extras import EXTRAS, MissingExtraError, missing_modules
from benchmark_assets.studies import MissingExtraStudyError, discover_studies, load_study
from benchmark_assets_tests.conftest import ROOT, TOY_STUDY, write_study

RANGED = TOY_STUDY.replace("candidates: [0.1, 0.3, 0.5, 0.7, 0.8, 1.0]", "range: [0.05, 1.0]")
UPLIFT = """\
kind: estimator_benchmark
catalog: {profile: validate}
seeds: 2
estimators: [difference_in_means, zero_effect, t_learner, causal_forest]
"""
RENAMED = UPLIFT.replace("t_learner, causal_forest", "{name: deep_t, function: t_learner, options: {max_leaf_nodes: 31}}")


def hide(monkeypatch, *modules: str) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_the_base_install_leaves_one_kinds_or_one_deployments_packages_to_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    for heavy in ("scikit-learn", "optuna", "psycopg2", "dagster-postgres", "econml", "dagster-celery", "dagster-k8s"):
        assert heavy not in base, heavy
    extras = project["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)  # every extra the refusals name can be installed by that name
    assert "optuna" in extras["search"][0] and "scikit-learn" in extras["estimators"][0]


def test_a_ranged_ratchet_without_optuna_is_refused_naming_the_search_extra(study_dir, monkeypatch):
    path = write_study(study_dir, "ranged", RANGED)
    assert load_study(path).name == "ranged"  # installed here: it loads
    hide(monkeypatch, "optuna")
    assert missing_modules("search") == ["optuna"]
    with pytest.raises(MissingExtraStudyError) as refused:
        load_study(path)
    line = str(refused.value)
    assert line == (f"{path}: constants.alpha.range: needs the 'search' extra for the ratchet's search over ranged "
                    "constants (Optuna) (optuna not installed). Fix: pip install 'benchmark_assets[search]'")


def test_an_estimator_benchmark_names_the_first_estimator_needing_each_extra(study_dir, monkeypatch):
    path = write_study(study_dir, "uplift", UPLIFT)
    hide(monkeypatch, "sklearn", "econml")
    with pytest.raises(MissingExtraStudyError) as refused:
        load_study(path)
    assert refused.value.field_path == "estimators[2] (t_learner)"
    assert refused.value.fix == "pip install 'benchmark_assets[estimators]'"
    renamed = write_study(study_dir, "renamed", RENAMED)  # a shipped learner under a name of its own
    with pytest.raises(MissingExtraStudyError, match=r": estimators\[2\] \(deep_t\): needs the 'estimators' extra"):
        load_study(renamed)
    monkeypatch.delitem(sys.modules, "sklearn")  # scikit-learn back, EconML still missing
    with pytest.raises(MissingExtraStudyError, match=r"estimators\[3\] \(causal_forest\): needs the 'causal' extra"):
        load_study(path)


def test_the_cli_refuses_it_in_one_line_before_creating_anything(study_dir, tmp_path, monkeypatch, cli):
    write_study(study_dir, "ranged", RANGED)
    hide(monkeypatch, "optuna")
    home = tmp_path / "home"
    result = cli("run", "ranged", env={"DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(study_dir)})
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "pip install 'benchmark_assets[search]'" in result.stderr and not home.exists()


@pytest.mark.system
def test_the_installed_command_without_optuna_says_the_same_one_line(study_dir, tmp_path):
    """A real process in which Optuna cannot be imported (a sitecustomize hides it, as an install
    without the extra would): one line on stderr, exit 2, nothing created."""
    write_study(study_dir, "ranged", RANGED)
    hiding = tmp_path / "hide_optuna"
    hiding.mkdir()
    (hiding / "sitecustomize.py").write_text("import sys\nsys.modules['optuna'] = None\n")
    env = {**os.environ, "PYTHONPATH": f"{hiding}{os.pathsep}{ROOT}", "DAGSTER_HOME": str(tmp_path / "home"),
           "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    result = subprocess.run([sys.executable, "-m", "benchmark_assets.cli", "run", "ranged"], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert result.stderr.strip() == (f"error: {study_dir / 'ranged.yaml'}: constants.alpha.range: needs the 'search' "
                                     "extra for the ratchet's search over ranged constants (Optuna) (optuna not "
                                     "installed). Fix: pip install 'benchmark_assets[search]'")
    assert not (tmp_path / "home").exists()


def test_the_ui_serves_the_other_studies_and_says_which_one_it_left_out(study_dir, monkeypatch, caplog):
    write_study(study_dir, "ranged", RANGED)
    hide(monkeypatch, "optuna")
    with caplog.at_level(logging.WARNING, logger="benchmark_assets"):
        studies = discover_studies(study_dir)
    assert [study.name for study in studies] == ["toy"]
    assert "left out: " in caplog.text and "pip install 'benchmark_assets[search]'" in caplog.text


def test_a_postgresql_warehouse_or_instance_without_the_driver_names_the_postgres_extra(dagster_home, monkeypatch):
    from benchmark_assets.warehouse import Warehouse

    hide(monkeypatch, "psycopg2")
    with pytest.raises(MissingExtraError, match=r"^a PostgreSQL warehouse needs the 'postgres' extra .*psycopg2 not "
                                                r"installed\)\. Fix: pip install 'benchmark_assets\[postgres\]'$"):
        Warehouse("postgresql+psycopg2://nobody@127.0.0.1:9/none")

    from dagster import DagsterInstance

    hide(monkeypatch, "dagster_postgres")
    monkeypatch.setenv("BENCHMARK_ASSETS_POSTGRES_URL", "postgresql+psycopg2://nobody@127.0.0.1:9/none")
    with pytest.raises(MissingExtraError, match=r"BENCHMARK_ASSETS_POSTGRES_URL .*Fix: pip install"):
        DagsterInstance.get()
