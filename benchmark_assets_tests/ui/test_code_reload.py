"""An edited study reaches the UI by itself: the study sensor reruns what the edit affects and has
the code location reloaded, so the webserver's definitions carry the new code versions and the
rerun assets are up to date, not "Unsynced: has a new code version" until a manual reload."""
import json
import time
import urllib.request

from benchmark_assets.defs.builder import node_versions
from benchmark_assets.defs.runner import run_study
from benchmark_assets.studies import load_study

ASSET = """
query Asset($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    __typename
    ... on AssetNode { opVersion staleStatus staleCauses { reason category } }
  }
}"""


def _graphql(base: str, query: str, variables: dict) -> dict:
    request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query, "variables": variables}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert not body.get("errors"), body["errors"]
    return body["data"]


def _asset(base: str, name: str) -> dict:
    return _graphql(base, ASSET, {"path": ["small", name]})["assetNodeOrError"]


def _wait(what: str, condition, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)
    return value


def test_an_edited_study_is_rerun_and_the_ui_shows_its_new_code_versions(dagster_dev, study_dir, instance):
    from dagster import AssetKey
    from dagster._core.execution.backfill import BulkActionStatus

    run_study("small", quiet=True, instance=instance)
    before = _asset(dagster_dev, "verdicts")
    assert before["staleStatus"] == "FRESH", before
    # The sensor's first tick adopts the file as it is; edit only after it.
    _wait("the study sensor's first tick", lambda: _sensor_has_ticked(instance))

    path = study_dir / "small.yaml"
    path.write_text(path.read_text().replace("correction: holm", "correction: bh"))
    edited = load_study(path)
    new_version = node_versions(edited)["verdicts"]
    assert new_version != before["opVersion"]

    # The edit reruns the decision (a backfill of verdicts and summary) and reloads the definitions.
    backfill = _wait("the sensor's rerun", lambda: next(iter(instance.get_backfills()), None))
    _wait("the rerun to finish", lambda: instance.get_backfill(backfill.backfill_id).status
          not in (BulkActionStatus.REQUESTED,))
    assert instance.get_backfill(backfill.backfill_id).status == BulkActionStatus.COMPLETED_SUCCESS
    after = _wait("the webserver to load the new code versions",
                  lambda: (node := _asset(dagster_dev, "verdicts"))["opVersion"] == new_version and node)
    assert after["staleStatus"] == "FRESH" and not after["staleCauses"], after
    rerun = instance.get_latest_materialization_event(AssetKey(["small", "verdicts"]))
    assert rerun.asset_materialization.tags["dagster/code_version"] == new_version


def _sensor_has_ticked(instance) -> bool:
    """The small study's sensor has finished a tick that stored its cursor (its view of the file)."""
    for state in instance.all_instigator_state():
        if state.name == "small__study_changes":
            return any(tick.cursor for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id))
    return False
