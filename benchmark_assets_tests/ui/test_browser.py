"""The Dagster UI as a user meets it: `dagster dev` on 127.0.0.1, a study materialised by clicking
"Materialize all" in headless Chromium (Debian's, driven by Playwright), then the partition grid,
an asset check, the report, an embedded plot and the per-subject history checked on the pages.
Screenshots are kept in the test's temporary folder (``screenshots/``)."""
import time
from pathlib import Path

from benchmark_assets.defs.tags import PARENT_RUN_TAG, STAGE_TAG
from benchmark_assets.kinds.ratchet.analysis import headline
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.ui.conftest import (
    LOCATION,
    UI,
    VIEWPORT,
    backfill_of,
    fully_shown,
    publish_for_docs,
    show_markdown,
    wait_for,
)

pytestmark = UI


def artifacts_of(study: str) -> Path:
    from benchmark_assets.artifacts import artifacts_dir

    return artifacts_dir(study)


def test_a_study_materialised_from_the_ui_shows_its_evidence(browser, deployment, instance, tmp_path):
    """Materialised from the UI, a study shows its evidence; the screenshots taken on the way are
    the ones docs/guides/ui.md shows (BENCHMARK_ASSETS_DOCS_SCREENSHOTS refreshes them)."""
    from dagster import AssetKey, RunsFilter
    from dagster._core.execution.backfill import BulkActionStatus
    from PIL import Image

    from benchmark_assets.ledger import Ledger

    shots = tmp_path / "screenshots"
    shots.mkdir()
    dagster_dev = deployment.url
    page = browser.new_page(viewport=VIEWPORT)
    # The lineage filtered to the study's group (what typing group:"small" in its search box gives;
    # the server shows other studies' groups too).
    page.goto(f"{dagster_dev}/asset-groups~group%3A%22small%22/", wait_until="networkidle")
    page.get_by_role("button", name="Materialize all…").click()
    page.get_by_role("button", name="All", exact=True).click()
    page.screenshot(path=shots / "launch.png")
    page.get_by_role("button", name="Launch backfill").click()

    # the daemon runs the backfill, as for any user
    backfill = wait_for("the backfill to finish", lambda: (found := backfill_of(instance, "small")) and
                        found.status != BulkActionStatus.REQUESTED and found, timeout=600, log=deployment)
    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS, backfill.status
    assert instance.get_latest_materialization_event(AssetKey(["small", "ratchet_summary"])) is not None
    runs = instance.get_runs(filters=RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
    per_asset = {name: sum(AssetKey(["small", name]) in (r.asset_selection or set()) for r in runs)
                 for name in ("scenario_catalog", "trials", "aggregates", "verdicts", "ratchet_summary")}
    assert per_asset == dict.fromkeys(per_asset, 1), per_asset  # the 12 trials too: one run per asset

    page.goto(f"{dagster_dev}/assets/small/trials?view=partitions", wait_until="networkidle")
    page.get_by_text("Materialized (12)").wait_for()  # 2 sweep points x 6 seed ids, all green
    page.screenshot(path=shots / "partitions.png")
    assert page.get_by_text("alpha=0.7").count() and page.get_by_text("Missing (0)").count()

    page.goto(f"{dagster_dev}/assets/small/verdicts?view=checks", wait_until="networkidle")
    page.get_by_text("check_verdicts_schema").first.wait_for()
    page.get_by_text("Passed").first.wait_for()
    page.screenshot(path=shots / "checks.png")
    # the check says what it checks: the rules, not only that there is a schema
    page.get_by_text("each (constant) once", exact=False).first.wait_for()

    # What was decided, first on the verdicts' page, and the decision per constant as a table.
    decided = headline(Warehouse().read("small__verdicts"))
    page.goto(f"{dagster_dev}/assets/small/verdicts", wait_until="networkidle")
    page.get_by_text(decided).first.wait_for()
    assert fully_shown(page, decided) == "", fully_shown(page, decided)
    page.screenshot(path=shots / "verdicts.png", full_page=True)

    page.goto(f"{dagster_dev}/assets/small/ratchet_summary", wait_until="networkidle")
    report = show_markdown(page, "report")
    report.get_by_text("Ratchet summary: small").wait_for()
    page.screenshot(path=shots / "report.png")
    report.get_by_role("button", name="Close").click()
    # Full size from the artifacts server `benchmark-assets ui` starts (the event keeps links, not
    # pictures), in the dialog (in place, the page's value column would clip them): the overview
    # of the three constants, then each constant's own plot, drawn.
    plots = show_markdown(page, "plots")
    images = plots.locator("img[src^='http://127.0.0.1:']")
    images.first.wait_for()
    assert images.first.get_attribute("alt") == "all constants at a glance"
    assert images.count() == 4
    for i, name in enumerate(["overview", "alpha", "beta", "gamma"]):
        drawn = images.nth(i).evaluate("e => e.complete && e.naturalWidth")
        with Image.open(next(artifacts_of("small").rglob(f"plots/{name}.png"))) as on_disk:
            assert drawn == on_disk.width >= 960, (name, drawn)
    page.screenshot(path=shots / "plots.png")
    plots.get_by_role("button", name="Close").click()
    # An artifact opened from its link, as a person would: the report's file.
    with page.context.expect_page() as opened:
        page.locator("tr", has=page.locator("td", has_text="file_report_md")).first.get_by_role("link").first.click()
    report_file = opened.value
    report_file.wait_for_load_state()
    assert "Ratchet summary: small" in report_file.content()
    report_file.screenshot(path=shots / "artifact_report.png")
    report_file.close()

    page.goto(f"{dagster_dev}/assets/small/verdicts", wait_until="networkidle")
    history = show_markdown(page, "history")
    history.get_by_role("heading", name="alpha").wait_for()
    # One table per constant decided (alpha, beta, gamma), each with its first decision.
    assert history.get_by_role("table").count() == 3 and history.get_by_text("(first decision)").count() == 3
    page.screenshot(path=shots / "history.png")
    history.get_by_role("button", name="Close").click()
    # One constant's own history, a click away from the verdicts' page.
    alpha = show_markdown(page, "history: alpha")
    alpha.get_by_role("heading", name="alpha").wait_for()
    assert alpha.get_by_role("table").count() == 1 and alpha.get_by_role("heading", name="beta").count() == 0
    page.screenshot(path=shots / "history_alpha.png")

    deadline = time.monotonic() + 120
    while not len(Ledger(Warehouse()).read(study="small")):  # the ledger_settlement sensor's tick
        assert time.monotonic() < deadline, "the UI run's decision never reached the ledger"
        time.sleep(2)

    # The whole study again in one click: the study's job, from the Launchpad.
    page.goto(f"{dagster_dev}/locations/{LOCATION}/jobs/small__run_study/playground", wait_until="networkidle")
    page.get_by_role("button", name="Launch run").click()
    page.wait_for_url("**/runs/*", timeout=60_000)
    job_run_id = page.url.rstrip("/").split("/runs/")[-1].split("?")[0]
    deadline = time.monotonic() + 300
    while (job_run := instance.get_run_by_id(job_run_id)) is None or not job_run.is_finished:
        assert time.monotonic() < deadline, "the study's job did not finish"
        time.sleep(2)
    assert job_run.is_success, deployment.log_tail()
    stages = instance.get_runs(filters=RunsFilter(tags={PARENT_RUN_TAG: job_run_id}))
    # Every trial is up to date (the ratchet reruns its trials: the CLI's plan), then the decision.
    # the scenario catalog the backfill built is current: not built again
    assert sorted(run.tags[STAGE_TAG] for run in stages) == sorted(
        ["trials", "aggregates", "search, verdicts, interactions, cumulative, ratchet summary"])
    # The run's page followed the run live (a watch on its shard's write-ahead log): the job's log
    # lines are on it, and it says the run succeeded.
    page.get_by_text("stage 3 of 3: search, verdicts, interactions, cumulative, ratchet summary succeeded").first.wait_for(timeout=60_000)
    page.get_by_text("Success", exact=True).first.wait_for(timeout=60_000)
    page.get_by_text(f"decided: {headline(Warehouse().read('small__verdicts'))}").first.wait_for(timeout=60_000)
    page.screenshot(path=shots / "job_run.png", full_page=True)
    publish_for_docs(shots, ["partitions.png", "verdicts.png", "plots.png", "job_run.png"])
