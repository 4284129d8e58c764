"""Each kind's decision read in the UI as a person would, in headless Chromium against the shared
`benchmark-assets ui` (the ratchet is read in test_browser.py): the headline on the decision's
page, one subject's history in its own dialog, the report's plots drawn at their files' full size
from the artifacts server, and the report opened from its link. The comparison, the acceptance
suite and the estimator benchmark are launched as the Launchpad does; the load sweep is the one its
inbox sensor ingests. Screenshots are kept in ``screenshots/`` (``<kind>_*.png``)."""
from dataclasses import dataclass

from dagster import AssetKey, DagsterRunStatus

from benchmark_assets_tests.ui.conftest import (
    UI,
    VIEWPORT,
    close,
    finished_run,
    fully_shown,
    launch_job,
    show_markdown,
    wait_for,
)

pytestmark = UI


@dataclass(frozen=True)
class Reading:
    kind: str
    study: str
    decision: str  # the asset whose run decides (its ledger entries, so its histories)
    report: str  # the asset with the plots and the files
    title: str  # the report's first line
    launched: bool = True  # False: the daemon materialises it by itself (the inbox sensor)


READINGS = [
    Reading("comparison", "compare", "comparison_report", "comparison_report", "# Comparison: compare"),
    Reading("acceptance", "suite", "verdicts", "suite_report", "# Acceptance suite: suite"),
    Reading("estimator_benchmark", "estimators", "verdicts", "benchmark_report", "# Estimator benchmark: estimators"),
    Reading("load_sweep", "sweep", "sweep_summary", "sweep_summary", "# Load sweep: sweep", launched=False),
]


def _metadata(instance, study: str, asset: str) -> dict:
    event = instance.get_latest_materialization_event(AssetKey([study, asset]))
    assert event is not None, f"{study}/{asset} was never materialised"
    return event.asset_materialization.metadata


def test_each_kind_says_what_it_decided_why_and_on_which_evidence(browser, deployment, instance, tmp_path):
    from PIL import Image

    from benchmark_assets.artifacts import artifacts_dir

    shots = tmp_path / "screenshots"
    shots.mkdir()
    runs = {r.study: launch_job(deployment, f"{r.study}__run_study") for r in READINGS if r.launched}
    for study, run_id in runs.items():
        run = finished_run(deployment, instance, run_id)
        assert run.status == DagsterRunStatus.SUCCESS, (study, deployment.log_tail())
    wait_for("the load sweep's summary from its inbox", lambda: instance.get_latest_materialization_event(
        AssetKey(["sweep", "sweep_summary"])), log=deployment)

    page = browser.new_page(viewport=VIEWPORT)
    for reading in READINGS:
        study, kind = reading.study, reading.kind
        decided = _metadata(instance, study, reading.decision)
        # What was decided, first on the decision's page.
        headline = decided["headline"].value
        page.goto(f"{deployment.url}/assets/{study}/{reading.decision}", wait_until="networkidle")
        page.get_by_text(headline).first.wait_for()
        assert fully_shown(page, headline) == "", (kind, fully_shown(page, headline))
        page.screenshot(path=shots / f"{kind}_decision.png", full_page=True)

        # Why: one subject's decisions, in a dialog of its own.
        subject = next(name.removeprefix("history: ") for name in decided if name.startswith("history: "))
        history = show_markdown(page, f"history: {subject}")
        history.get_by_role("heading", name=subject).wait_for()
        assert history.get_by_role("table").count() == 1, kind
        assert history.get_by_text("(first decision)").count() >= 1, kind
        page.screenshot(path=shots / f"{kind}_history.png")
        close(history)

        # On which evidence: the plots at full size from the artifacts server, then the report's file.
        if reading.report != reading.decision:
            page.goto(f"{deployment.url}/assets/{study}/{reading.report}", wait_until="networkidle")
        plots = show_markdown(page, "plots")
        images = plots.locator("img[src^='http://127.0.0.1:']")
        images.first.wait_for()
        drawn_files = sorted(artifacts_dir(study).joinpath("latest", "plots").glob("*.png"))
        assert images.count() >= 1 and drawn_files, kind
        for i in range(images.count()):
            src = images.nth(i).get_attribute("src")
            width = images.nth(i).evaluate("e => e.complete && e.naturalWidth")
            on_disk = artifacts_dir(study) / "latest" / "plots" / src.rsplit("/", 1)[-1]
            with Image.open(on_disk) as image:
                assert width == image.width, (kind, src, width, image.width)
        page.screenshot(path=shots / f"{kind}_plots.png")
        close(plots)
        with page.context.expect_page() as opened:
            page.locator("tr", has=page.locator("td", has_text="file_report_md")).first.get_by_role("link").first.click()
        report = opened.value
        report.wait_for_load_state()
        assert reading.title in report.content(), kind
        report.screenshot(path=shots / f"{kind}_report_file.png")
        report.close()
    page.close()
