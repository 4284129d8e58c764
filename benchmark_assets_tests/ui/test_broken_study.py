"""A study file with a mistake fails alone in a real `dagster dev`: the code location loads every
other study (every UI test of this package runs beside ``broken.yaml``), the broken file shows its
one-line error as a sensor's description and skip reason, and a study beside it is materialised
by the daemon from a launch in the UI's API while the broken file is still there."""

from dagster import AssetKey, DagsterRunStatus

from benchmark_assets_tests.ui.conftest import LOCATION, UI, finished_run, graphql, launch_job, selector, wait_for

pytestmark = UI
SENSOR = "broken__invalid_study_file"
ERROR = "decision.correction"  # the field the one-line error names

SENSOR_QUERY = """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { description sensorState { ticks(limit: 5) { status skipReason } } }
  }
}"""


def test_a_broken_study_file_fails_alone(browser, deployment, instance, tmp_path):
    sensor = graphql(deployment.url, SENSOR_QUERY, {"selector": selector(sensorName=SENSOR)})["sensorOrError"]
    assert sensor["__typename"] == "Sensor", sensor
    assert "broken.yaml" in sensor["description"] and ERROR in sensor["description"]
    assert "Fix:" in sensor["description"]  # one line naming the file, the field and the fix

    # Each tick says it again, as the skip reason.
    def skipped() -> str:
        found = graphql(deployment.url, SENSOR_QUERY, {"selector": selector(sensorName=SENSOR)})["sensorOrError"]
        return next((t["skipReason"] for t in found["sensorState"]["ticks"] if t["skipReason"]), "")
    reason = wait_for("the broken file's sensor tick", skipped, log=deployment)
    assert reason.startswith("left out of the definitions: ") and ERROR in reason

    # Where a UI user looks: the sensor's page shows the error.
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{deployment.url}/locations/{LOCATION}/sensors/{SENSOR}", wait_until="networkidle")
    page.get_by_text(ERROR, exact=False).first.wait_for()
    page.screenshot(path=tmp_path / "broken_study_sensor.png")
    page.close()

    # The study beside it is there and runs: its whole-study job, launched as the Launchpad does.
    run = finished_run(deployment, instance, launch_job(deployment, "neighbour__run_study"))
    assert run.status == DagsterRunStatus.SUCCESS, deployment.log_tail()
    assert instance.get_latest_materialization_event(AssetKey(["neighbour", "ratchet_summary"])) is not None
