"""An edited study reaches the UI by itself: the study sensor reruns what the edit affects and has
the code location reloaded, so the webserver's definitions carry the new code versions and the
rerun assets are up to date, not "Unsynced: has a new code version" until a manual reload."""
import time

from benchmark_assets.defs.runner import run_study
from benchmark_assets.graph import StudyGraph
from benchmark_assets.studies import load_study
from benchmark_assets_tests.ui.conftest import UI, backfill_of, graphql, wait_for

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
    from dagster import AssetKey
    from dagster._core.execution.backfill import BulkActionStatus

    run_study(STUDY, quiet=True, instance=instance)
    before = _asset(deployment.url, "verdicts")
    assert before["staleStatus"] == "FRESH", before
    # The sensor's first tick adopts the file as it is; edit only after it.
    wait_for("the study sensor's first tick", lambda: _sensor_has_ticked(instance), log=deployment)
    wait_for("the other tests' runs to end", lambda: _quiet(instance), timeout=600, log=deployment)

    edited_at = time.time()
    path = deployment.studies / f"{STUDY}.yaml"
    path.write_text(path.read_text().replace("correction: holm", "correction: bh"))
    edited = load_study(path)
    new_version = StudyGraph.of(edited).versions()["verdicts"]
    assert new_version != before["opVersion"]

    # The edit reruns the decision (a backfill of verdicts and summary) and reloads the definitions.
    backfill = wait_for("the sensor's rerun", lambda: backfill_of(instance, STUDY, after=edited_at), log=deployment)
    wait_for("the rerun to finish", lambda: instance.get_backfill(backfill.backfill_id).status
             not in (BulkActionStatus.REQUESTED,), log=deployment)
    assert instance.get_backfill(backfill.backfill_id).status == BulkActionStatus.COMPLETED_SUCCESS
    after = wait_for("the webserver to load the new code versions",
                     lambda: (node := _asset(deployment.url, "verdicts"))["opVersion"] == new_version and node,
                     log=deployment)
    assert after["staleStatus"] == "FRESH" and not after["staleCauses"], after
    rerun = instance.get_latest_materialization_event(AssetKey([STUDY, "verdicts"]))
    assert rerun.asset_materialization.tags["dagster/code_version"] == new_version


def _sensor_has_ticked(instance) -> bool:
    """The study's sensor has finished a tick that stored its cursor (its view of the file)."""
    for state in instance.all_instigator_state():
        if state.name == f"{STUDY}__study_changes":
            return any(tick.cursor for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id))
    return False
