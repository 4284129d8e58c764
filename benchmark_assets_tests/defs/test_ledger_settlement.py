"""Only runs that complete write the ledger: a run's decisions wait until it ends, then join the
ledger when it succeeds (or a re-execution of it does), and are dropped when it stays failed,
whether the CLI ran it or the UI did."""
import shutil

import pytest
from dagster import AssetKey, DagsterRunStatus, build_sensor_context, materialize

from benchmark_assets.artifacts import artifacts_dir
from benchmark_assets.defs.assets import build_assets
from benchmark_assets.defs.hygiene import build_ledger_sensor
from benchmark_assets.defs.partitions import register
from benchmark_assets.defs.resources import study_resources
from benchmark_assets.defs.runner import StudyRunError, run_study
from benchmark_assets.graph import StudyGraph
from benchmark_assets.ledger import Ledger
from benchmark_assets.warehouse import Warehouse


def _break_the_summary(dagster_home):
    """The ratchet summary writes its files under artifacts/<study>: a file there makes that step
    fail after the verdicts step has decided."""
    folder = artifacts_dir("toy")
    shutil.rmtree(folder)
    folder.write_text("not a folder")
    return folder


def test_a_run_that_fails_after_deciding_leaves_nothing_in_the_ledger(instance, toy_study, dagster_home):
    run_study("toy", quiet=True, instance=instance)  # trials stored; its 3 decisions are in the ledger
    first = Ledger(Warehouse()).read()
    assert len(first) == 3
    blocker = _break_the_summary(dagster_home)
    with pytest.raises(StudyRunError, match="FileExistsError"):
        run_study("toy", quiet=True, instance=instance, subjects=["alpha"])
    failed = instance.get_runs(limit=1)[0]
    assert failed.status == DagsterRunStatus.FAILURE
    verdicts = instance.get_latest_materialization_event(AssetKey(["toy", "verdicts"]))
    assert verdicts.run_id == failed.run_id  # the failed run did decide
    ledger = Ledger(Warehouse())
    assert ledger.read().equals(first)  # none of it reached the ledger
    assert ledger.pending_runs() == [failed.run_id]  # it waits for a re-execution, or to be dropped

    blocker.unlink()
    run_study("toy", quiet=True, instance=instance, subjects=["alpha"])
    rows = ledger.read()
    assert len(rows) == 4 and rows["run_id"].iloc[-1] == instance.get_runs(limit=1)[0].run_id


def test_the_ledger_sensor_settles_runs_launched_outside_the_cli(instance, toy_study, dagster_home):
    run_study("toy", quiet=True, instance=instance)
    ledger = Ledger(Warehouse())
    before = len(ledger.read())
    register(instance, StudyGraph.of(toy_study))
    assets = build_assets(StudyGraph.of(toy_study))
    decide = [AssetKey(["toy", "verdicts"]), AssetKey(["toy", "ratchet_summary"])]

    ok = materialize(assets, instance=instance, resources=study_resources(), selection=decide)
    assert ok.success and ledger.pending_runs() == [ok.run_id] and len(ledger.read()) == before
    blocker = _break_the_summary(dagster_home)
    bad = materialize(assets, instance=instance, resources=study_resources(), selection=decide, raise_on_error=False)
    assert not bad.success and sorted(ledger.pending_runs()) == sorted([ok.run_id, bad.run_id])
    blocker.unlink()

    sensor = build_ledger_sensor()

    def tick():
        with build_sensor_context(instance=instance, resources=study_resources()) as context:
            return sensor(context).skip_message

    message = tick()
    assert f"run {ok.run_id} succeeded: 3 decisions joined the ledger" in message
    assert bad.run_id not in message and ledger.pending_runs() == [bad.run_id]  # waits for a re-execution
    rows = ledger.read()
    assert len(rows) == before + 3 and set(rows["run_id"].iloc[before:]) == {ok.run_id}

    # "Re-execute from failure": a run of the same group runs what failed and succeeds.
    retry = materialize(assets, instance=instance, resources=study_resources(), selection=decide[1:],
                        tags={"dagster/root_run_id": bad.run_id, "dagster/parent_run_id": bad.run_id})
    assert retry.success
    assert f"run {bad.run_id} failed, its re-execution {retry.run_id} succeeded: 3 decisions joined" in tick()
    assert set(ledger.read()["run_id"].iloc[before + 3:]) == {bad.run_id} and ledger.pending_runs() == []


def test_a_failed_run_that_is_never_re_executed_has_its_decisions_dropped(instance, toy_study, dagster_home,
                                                                            monkeypatch):
    import benchmark_assets.defs.hygiene as hygiene

    run_study("toy", quiet=True, instance=instance)
    ledger = Ledger(Warehouse())
    before = len(ledger.read())
    blocker = _break_the_summary(dagster_home)
    with pytest.raises(StudyRunError):
        run_study("toy", quiet=True, instance=instance)
    failed = instance.get_runs(limit=1)[0]
    blocker.unlink()
    sensor = build_ledger_sensor()
    with build_sensor_context(instance=instance, resources=study_resources()) as context:
        assert failed.run_id not in sensor(context).skip_message  # within the week: it waits
    monkeypatch.setattr(hygiene, "KEEP_FAILED_DECISIONS_SECONDS", 0)
    with build_sensor_context(instance=instance, resources=study_resources()) as context:
        message = sensor(context).skip_message
    assert f"run {failed.run_id} failure and was not re-executed: its 3 decisions were dropped" in message
    assert ledger.pending_runs() == [] and len(ledger.read()) == before


def test_the_cli_says_why_a_run_failed_and_exits_1(instance, toy_study, dagster_home, capsys):
    from benchmark_assets.cli import main

    run_study("toy", quiet=True, instance=instance)
    _break_the_summary(dagster_home)
    assert main(["run", "toy", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert any(line.startswith("error: ") and "FileExistsError" in line for line in err.splitlines())
    assert "trials failed; most common errors:" in err and "AttributeError" not in err  # the trials' own errors
