"""The inbox as a team meets it: `dagster dev` on 127.0.0.1 (webserver, daemon, code server), aiperf
exports put in a load sweep's inbox folder; the daemon's tick of `<study>__inbox_watch` ingests them and
its backfill stores them as trial partitions and updates the summary; the rejected file is on the
trials asset's page in headless Chromium, and in the sensor's tick log. Screenshots are kept in the
test's temporary folder (``screenshots/``)."""
import re

from dagster import AssetKey

from benchmark_assets.kinds.base import INBOX_BASE
from benchmark_assets_tests.ui.conftest import LOCATION, UI, graphql, wait_for

CHECK_EXECUTIONS = """
query Executions($key: AssetKeyInput!, $name: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $name, limit: 1) {
    status
    evaluation { success severity metadataEntries { label ... on MarkdownMetadataEntry { mdStr } } }
  }
}"""

# The files are in the inbox of the study ``sweep`` before the shared `dagster dev` starts (see
# conftest.py), as on a team's server.
pytestmark = UI


def test_files_in_the_inbox_are_ingested_by_the_daemon_and_shown_in_the_ui(browser, deployment, instance, tmp_path):
    from benchmark_assets.warehouse import Warehouse

    dagster_dev = deployment.url
    trials_key = AssetKey(["sweep", "trials"])
    wanted = {f"concurrency=4|{INBOX_BASE + 1}", f"concurrency=16|{INBOX_BASE}"}
    # The daemon evaluates the sensor, launches the backfill it asks for, and runs it.
    wait_for("the inbox's trials and the summary", lambda: (
        wanted <= instance.get_materialized_partitions(trials_key)
        and instance.get_latest_materialization_event(AssetKey(["sweep", "sweep_summary"]))), log=deployment)
    trials = Warehouse().read("sweep__trials").set_index("sweep_point")
    assert trials.loc["concurrency=4", "request_throughput_avg"] == 41.5  # the file's, not a measurement
    assert trials.loc["concurrency=16", "request_throughput_avg"] == 150.0

    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # The trials asset's events: two partitions materialised, and the observation of the rejected
    # file, its table (file, what, reason) shown inline.
    page.goto(f"{dagster_dev}/assets/sweep/trials?view=events", wait_until="networkidle")
    page.get_by_text(f"concurrency=4|{INBOX_BASE + 1}").first.wait_for()
    events = page.get_by_text(re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{1,2}:\d{2} [AP]M$"))
    for index in range(events.count()):
        events.nth(index).click()
        if page.get_by_text("inbox_rejected").count():
            break
    page.get_by_text("inbox_rejected").first.wait_for()
    assert page.get_by_text("Observed").count()
    page.get_by_text("c12/profile_export_aiperf.json").first.wait_for()
    assert page.get_by_text("which is no sweep point of sweep", exact=False).count()
    page.screenshot(path=shots / "rejected_observation.png")

    # The sensor's tick that ingested them, and its log with the rejected file's warning.
    page.goto(f"{dagster_dev}/locations/{LOCATION}/sensors/sweep__inbox_watch", wait_until="networkidle")
    # The sensor ticks every few seconds here: show the ticks that requested runs, as a user would.
    page.get_by_text("All ticks").click()
    page.get_by_text("Requested", exact=True).click()
    tick = page.locator("tr", has=page.get_by_text("1 run requested")).first
    tick.get_by_text("View logs").click()
    log = page.get_by_role("dialog")
    log.get_by_text("WARNING").first.wait_for()
    assert log.get_by_text("c12/profile_export_aiperf.json: rejected: it ran concurrency=12", exact=False).count()
    assert log.get_by_text("c4/profile_export_aiperf.json: ingested as 1 trials (1 rows)").count()
    page.screenshot(path=shots / "sensor_tick_log.png")

    # The rejected file is where a UI user looks: the study's unattended_health check, kept by the
    # daemon's health sensor, fails with the file and what to do; the asset's Checks tab shows it.
    execution = wait_for("the health check on the sweep's summary", lambda: (found := graphql(
        dagster_dev, CHECK_EXECUTIONS, {"key": {"path": ["sweep", "sweep_summary"]}, "name": "unattended_health"})[
        "assetCheckExecutions"]) and found[0]["evaluation"] and not found[0]["evaluation"]["success"] and found[0],
        log=deployment)
    assert execution["evaluation"]["severity"] == "WARN"
    problems = next(e["mdStr"] for e in execution["evaluation"]["metadataEntries"] if e["label"] == "problems")
    assert "inbox file c12/profile_export_aiperf.json is rejected: it ran concurrency=12" in problems
    assert "Fix or remove it" in problems
    page.goto(f"{dagster_dev}/assets/sweep/sweep_summary?view=checks", wait_until="networkidle")
    page.get_by_text("unattended_health").first.wait_for()
    page.screenshot(path=shots / "health_check.png")
