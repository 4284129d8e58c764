"""Health a team can see: the health sensor records each study's ``unattended_health`` check when
what needs a person changes: a failed run that a sensor launched, decisions waiting for a failed
run's re-execution. (Rejected inbox files, through the daemon and the webserver: ui/test_inbox_ui.)"""
from dagster import AssetKey, build_sensor_context

from benchmark_assets.definitions import build_definitions
from benchmark_assets.defs.health import CHECK, problems
from benchmark_assets.defs.resources import study_resources
from benchmark_assets.defs.run_job import build_run_job
from benchmark_assets.defs.runner import run_study
from benchmark_assets.graph import StudyGraph
from benchmark_assets.ledger import PENDING_TABLE, Ledger
from benchmark_assets.studies import load_study
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.test_cli import FAILING


def _tick(instance, repository, cursor=None):
    with build_sensor_context(instance=instance, repository_def=repository, cursor=cursor,
                              resources=study_resources()) as context:
        return repository.get_sensor_def("benchmark_assets__health").evaluate_tick(context)


def test_a_failed_unattended_run_and_waiting_decisions_fail_the_check_until_they_are_resolved(instance, study_dir):
    (study_dir / "broken_setup.yaml").write_text(FAILING)
    studies = [load_study("toy"), load_study("broken_setup")]
    repository = build_definitions(studies).get_repository_def()
    assert any(c.name == CHECK and c.asset_key.path == ["toy", "ratchet_summary"] for c in repository.asset_graph.asset_check_keys)
    run_study("toy", quiet=True, instance=instance)

    first = _tick(instance, repository)
    assert {(e.asset_key.path[0], e.passed) for e in first.asset_events} == {("toy", True), ("broken_setup", True)}
    assert all(e.check_name == CHECK for e in first.asset_events)
    again = _tick(instance, repository, first.cursor)
    assert not again.asset_events and again.skip_message == "every study runs on its own"

    # The nightly schedule's run of the broken study fails: its check fails, saying why and what to do.
    failed = build_run_job(StudyGraph.of(studies[1])).execute_in_process(
        instance=instance, raise_on_error=False, tags={"dagster/schedule_name": "broken_setup__nightly"})
    assert not failed.success
    second = _tick(instance, repository, again.cursor)
    (event,) = second.asset_events
    assert event.asset_key == AssetKey(["broken_setup", "ratchet_summary"]) and not event.passed
    assert event.severity.value == "WARN" and event.metadata["count"].value == 1
    (first_line,) = event.metadata["problems"].value.splitlines()
    said = next(e for e in failed.all_events if e.is_step_failure).step_failure_data.user_failure_data.description
    assert first_line == (f"- the last run that broken_setup__nightly launched, {failed.run_id}, failed: "
                          f"{said.splitlines()[0][:300]}. Fix the cause and re-execute it from the run's page (or "
                          "`benchmark-assets run broken_setup`)")

    # Decisions of a toy run that failed wait for its re-execution: the toy's check fails too.
    ledger = Ledger(Warehouse()).read(study="toy")
    Warehouse().append(PENDING_TABLE, ledger.assign(run_id=failed.run_id))
    found = problems(instance, StudyGraph.of(studies[0]), Warehouse())
    assert found == [f"{len(ledger)} decisions of run {failed.run_id} (failure) are held back from the ledger; they "
                     "are dropped 7 days after it ended. Run the study again (its job toy__run_study, or "
                     "`benchmark-assets run toy`) to decide anew"]
    third = _tick(instance, repository, second.cursor)
    assert [(e.asset_key.path[0], e.passed) for e in third.asset_events] == [("toy", False)]

    # A new materialisation of the checked asset records the check again (the UI shows a check's
    # result for the latest materialisation), though what it finds has not changed.
    run_study("toy", quiet=True, instance=instance, subjects=["alpha"])
    fourth = _tick(instance, repository, third.cursor)
    assert [(e.asset_key.path[0], e.passed) for e in fourth.asset_events] == [("toy", True)]  # decided anew since

    # A later run of the study that succeeds (any launcher) clears the broken study's problem.
    (study_dir / "broken_setup.yaml").write_text(load_study("toy").path.read_text())
    assert problems(instance, StudyGraph.load("broken_setup"), Warehouse())
    run_study("broken_setup", quiet=True, instance=instance)
    assert problems(instance, StudyGraph.load("broken_setup"), Warehouse()) == []
