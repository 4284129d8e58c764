"""A kind from outside the package, registered through the entry point group, gets everything the shipped ones get."""
import importlib
import json
import os
import subprocess
import sys

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, Definitions, build_sensor_context

from benchmark_assets.definitions import build_definitions
from benchmark_assets.kinds import ENTRY_POINT_GROUP, KINDS, get_kind, load_entry_point_kinds
from benchmark_assets.ledger import LEDGER_TABLE
from benchmark_assets.studies import StudyError, load_study
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.conftest import ROOT, planned_rerun, write_study
from benchmark_assets_tests.toy_kind import EXAMPLE


def install_entry_point(folder):
    """A distribution on sys.path that declares the toy kind, as a user's package would in its pyproject."""
    info = folder / "toy_kinds-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-kinds\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ntoy_kind = benchmark_assets_tests.toy_kind:KIND\n")
    return folder


@pytest.fixture
def entry_point(tmp_path, monkeypatch):
    site = install_entry_point(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    KINDS.pop("toy_kind", None)
    yield site
    KINDS.pop("toy_kind", None)


def test_an_entry_point_registers_the_kind_and_its_studies_load(entry_point, study_dir):
    # the group docs/guides/writing-a-kind.md tells a package to declare its kind under
    assert f'[project.entry-points."{ENTRY_POINT_GROUP}"]' in (ROOT / "docs" / "guides" / "writing-a-kind.md").read_text()
    assert "toy_kind" not in KINDS
    assert "toy_kind" in load_entry_point_kinds(force=True) and get_kind("toy_kind").name == "toy_kind"
    study = load_study(write_study(study_dir, "pick_x", EXAMPLE))
    assert study.kind == "toy_kind" and study.point_keys == ["x=0.2", "x=0.4", "x=0.6", "x=1"]
    with pytest.raises(StudyError, match=r"pick_x.yaml: baseline: 0.3 is not among the values\. Fix: add it"):
        load_study(write_study(study_dir, "pick_x", EXAMPLE.replace("baseline: 0.2", "baseline: 0.3")))
    with pytest.raises(StudyError, match=r": noise: Input should be greater than or equal to 0"):
        load_study(write_study(study_dir, "pick_x", EXAMPLE.replace("noise: 0.01", "noise: -1.0")))


def test_the_toy_kind_gets_the_graph_checks_sensor_and_schedule(entry_point, study_dir, dagster_home):
    load_entry_point_kinds(force=True)
    study = load_study(write_study(study_dir, "pick_x", EXAMPLE))
    defs = build_definitions([study])
    Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    graph = repository.asset_graph
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {"pick_x/trials", "pick_x/aggregates",
                                                                         "pick_x/decision", "pick_x/regressions"}
    assert {c.name for c in graph.asset_check_keys} == {"check_trials_schema", "no_new_regression",
                                                          "unattended_health"}
    assert repository.has_schedule_def("pick_x__nightly")
    sensor = repository.get_sensor_def("pick_x__study_changes")
    with DagsterInstance.get() as instance:
        first = sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=repository))
        assert [list(r.partition_keys) for r in first.dynamic_partitions_requests] == [study.point_keys]
        instance.add_dynamic_partitions("pick_x__points", study.point_keys)
        path = study.path
        path.write_text(path.read_text().replace("values: [0.2, 0.4, 0.6, 1.0]", "values: [0.2, 0.4, 0.6, 1.0, 0.7]"))
        second = sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=repository,
                                                           cursor=first.cursor))
        planned = planned_rerun(instance, second.run_requests[0], path)
        assert planned["trials"] == {f"{s}|x=0.7" for s in range(1, 7)}  # seed sorts before x_point
        assert planned["aggregates"] == {"x=0.7"} and planned["decision"] == set() and len(planned) == 3


def test_the_toy_kind_runs_from_the_cli_and_writes_ledger_rows(entry_point, study_dir, tmp_path, monkeypatch):
    write_study(study_dir, "pick_x", EXAMPLE)
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(entry_point)]), "DAGSTER_HOME": str(home),
           "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    run = subprocess.run([sys.executable, "-m", "benchmark_assets.cli", "run", "pick_x", "--quiet"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "**change**: x=0.6 beats x=0.2" in run.stdout
    assert "Ran 24 trials over 4 sweep points" in run.stdout and "(report.md, decision.csv)" in run.stdout
    warehouse = Warehouse(f"sqlite:///{home / 'benchmark.db'}")
    trials = warehouse.read("pick_x__trials")
    assert len(trials) == 24 and (trials.loc[trials["x_point"] == "x=1", "status"] == "failed").all()
    ledger = warehouse.read(LEDGER_TABLE)
    assert list(ledger["kind"]) == ["toy_kind"] and ledger["subject"].iloc[0] == "x"
    assert json.loads(ledger["proposal"].iloc[0]) == 0.6 and ledger["ci_low"].iloc[0] > 0
    shown = subprocess.run([sys.executable, "-m", "benchmark_assets.cli", "ledger", "--kind", "toy_kind"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and "toy_kind" in shown.stdout and "change" in shown.stdout
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        materialised = instance.get_materialized_partitions(AssetKey(["pick_x", "trials"]))
        assert len(materialised) == 24
        evaluations = [e for record in instance.get_run_records() for e in
                       instance.all_logs(record.dagster_run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)]
        assert [e.dagster_event.event_specific_data.passed for e in evaluations] == [True]


def test_the_docs_example_kind_runs_as_written(study_dir, instance):
    """The example of docs/guides/writing-a-kind.md, executed as it stands there."""
    from benchmark_assets.defs.runner import run_study
    from benchmark_assets.kinds import register_kind

    page = (ROOT / "docs" / "guides" / "writing-a-kind.md").read_text()
    code = page.split("# mypackage/pick_x.py\n", 1)[1].split("```", 1)[0]
    namespace = {"my_benchmark": lambda x, seed: 1.0 - (x - 0.6) ** 2 + seed * 1e-4}
    exec(compile(code, "writing-a-kind.md", "exec"), namespace)
    register_kind(namespace["KIND"])
    try:
        write_study(study_dir, "readme_kind", "kind: pick_x\nbaseline: 0.2\nvalues: [0.2, 0.6, 0.9]\nseeds: [1, 2, 3]\n")
        outcome = run_study("readme_kind", quiet=True, instance=instance)
        assert outcome.measured == 9 and len(outcome.stages) == 2
        assert Warehouse().read("readme_kind__decision")["best"].tolist() == ["x=0.6"]
        # A kind that writes neither: the machinery stamps each trial's point fingerprint and source.
        trials = Warehouse().read("readme_kind__trials")
        assert set(trials["fingerprint"]) == {"v1"} and set(trials["source"]) == {"measured"}
        ledger = Warehouse().read(LEDGER_TABLE)
        assert ledger[["kind", "subject", "decision"]].values.tolist() == [["pick_x", "x", "change"]]
    finally:
        KINDS.pop("pick_x", None)


def test_a_broken_plugin_fails_only_its_own_studies(tmp_path, monkeypatch, study_dir):
    site = tmp_path / "site"
    site.mkdir()
    (site / "broken_kind.py").write_text("raise ImportError('needs a package that is not installed')\n")
    info = site / "broken_kinds-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-kinds\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbroken = broken_kind:KIND\n"
                                           "toy_kind = benchmark_assets_tests.toy_kind:KIND\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    KINDS.pop("toy_kind", None)
    try:
        assert load_entry_point_kinds(force=True) == ["toy_kind"]  # the broken one does not hide the other
        assert load_study(ROOT / "studies" / "memory_ratchet.yaml").kind == "ratchet"
        assert load_study(write_study(study_dir, "pick_x", EXAMPLE)).kind == "toy_kind"
        with pytest.raises(StudyError) as raised:
            load_study(write_study(study_dir, "uses_broken", "kind: broken\n"))
        assert ": kind: entry point 'broken' = 'broken_kind:KIND'" in str(raised.value)
        assert "ImportError: needs a package that is not installed" in str(raised.value)
    finally:
        KINDS.pop("toy_kind", None)
        monkeypatch.undo()
        importlib.invalidate_caches()
        load_entry_point_kinds(force=True)
