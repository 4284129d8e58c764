"""An edited study reaches the UI by itself: the study sensor launches the study's job over what
the edit affects (its follow-ups, validation rounds here, run too, and the decisions join the
ledger, with no click) and has the code location reloaded, so the webserver's definitions carry
the new code versions and the rerun assets are up to date, not "Unsynced: has a new code
version" until a manual reload."""
import time

from benchmark_assets.defs.runner import run_study
from benchmark_assets.graph import StudyGraph
from benchmark_assets.studies import load_study
from benchmark_assets_tests.ui.conftest import UI, graphql, wait_for

pytestmark = UI
STUDY = "reload"  # a study of its own on the shared server: the browser test's is never edited

ASSET = """
query Asset($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    __typename
    ... on AssetNode { opVersion staleStatus staleCauses { reason category } }
  }
}"""


def _asset(base: str, name: str) -> dict:
    return graphql(base, ASSET, {"path": [STUDY, name]})["assetNodeOrError"]


def _quiet(instance) -> bool:
    """No run in flight and no backfill unfinished on the shared server: a reload of the code
    location now restarts no code server that a run of another test still needs."""
    from dagster import RunsFilter
    from dagster._core.execution.backfill import BulkActionStatus
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

    busy = instance.get_runs(filters=RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES), limit=1)
    return not busy and not instance.get_backfills(status=BulkActionStatus.REQUESTED, limit=1)


def test_an_edited_study_is_rerun_and_the_ui_shows_its_new_code_versions(deployment, instance):
    from dagster import AssetKey, DagsterRunStatus, RunsFilter

    from benchmark_assets.defs.tags import PARENT_RUN_TAG
    from benchmark_assets.ledger import Ledger
    from benchmark_assets.warehouse import Warehouse

    run_study(STUDY, quiet=True, instance=instance)
    before = _asset(deployment.url, "verdicts")
    assert before["staleStatus"] == "FRESH", before
    # The sensor's first tick adopts the file as it is; edit only after it.
    wait_for("the study sensor's first tick", lambda: _sensor_has_ticked(instance), log=deployment)
    wait_for("the other tests' runs to end", lambda: _quiet(instance), timeout=600, log=deployment)

    edited_at = time.time()
    path = deployment.studies / f"{STUDY}.yaml"
    # Rounds of further validation scenarios: the first look's level is now far stricter, so the
    # verdict waits for a round the job's follow-ups must measure.
    path.write_text(path.read_text() + "sequential: {rounds: 2, scenarios_per_round: 3}\n")
    edited = load_study(path)
    new_version = StudyGraph.of(edited).versions()["verdicts"]
    assert new_version != before["opVersion"]

    # The edit reruns the decision (a run of the study's job: verdicts, the validation round the
    # verdicts still open ask for, the summary) and reloads the definitions.
    job_run = wait_for("the sensor's run of the job", lambda: _job_run(instance, after=edited_at), log=deployment)
    finished = wait_for("the job's run to finish", lambda: (run := instance.get_run_by_id(job_run.run_id))
                        .is_finished and run, log=deployment)
    logged = [entry.user_message for entry in instance.all_logs(job_run.run_id)]
    assert finished.status == DagsterRunStatus.SUCCESS, "\n".join(logged[-30:])
    assert finished.tags["dagster/sensor_name"] == f"{STUDY}__study_changes"
    assert any(line.startswith("follow-up: validation round 1 of 2") for line in logged), logged
    verdicts = Warehouse().read(f"{STUDY}__verdicts")
    assert verdicts["final"].all() and (verdicts["next_round"] == 0).all(), verdicts  # settled, nothing waits
    stages = {r.run_id for r in instance.get_runs(filters=RunsFilter(tags={PARENT_RUN_TAG: job_run.run_id}))}
    ledger = Ledger(Warehouse()).read()
    assert set(ledger[ledger["study"] == STUDY]["run_id"]) & stages  # the decisions joined the ledger
    after = wait_for("the webserver to load the new code versions",
                     lambda: (node := _asset(deployment.url, "verdicts"))["opVersion"] == new_version and node,
                     log=deployment)
    assert after["staleStatus"] == "FRESH" and not after["staleCauses"], after
    rerun = instance.get_latest_materialization_event(AssetKey([STUDY, "verdicts"]))
    assert rerun.asset_materialization.tags["dagster/code_version"] == new_version


def _job_run(instance, *, after: float):
    """The newest run of the study's job created after ``after`` (a timestamp), or None."""
    from dagster import RunsFilter

    records = instance.get_run_records(RunsFilter(job_name=f"{STUDY}__run_study"), limit=1)
    return records[0].dagster_run if records and records[0].create_timestamp.timestamp() > after else None


def _sensor_has_ticked(instance) -> bool:
    """The study's sensor has finished a tick that stored its cursor (its view of the file)."""
    for state in instance.all_instigator_state():
        if state.name == f"{STUDY}__study_changes":
            return any(tick.cursor for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id))
    return False
