"""The Dagster UI as a user meets it: `dagster dev` on 127.0.0.1, a study materialised by clicking
"Materialize all" in headless Chromium (Debian's, driven by Playwright), then the partition grid,
an asset check, the report, an embedded plot and the per-subject history checked on the pages.
Screenshots are kept in the test's temporary folder (``screenshots/``)."""
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from benchmark_assets_tests.conftest import ROOT, service_unavailable, write_study
from benchmark_assets_tests.kinds.load_sweep.test_assets import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# One constant, two candidates: a small grid, so the UI's backfill stays short.
SMALL = """\
kind: ratchet
description: small study for the browser test
target: benchmark_assets_tests.toy_target:evaluate
metric: score
scenarios: {count: 6, train_fraction: 0.5}
trials_per_scenario: 1
constants:
  alpha: {tier: 1, current: 0.3, candidates: [0.3, 0.7]}
  beta:  {tier: 2, current: 1.0, candidates: [1.0]}
  gamma: {tier: 2, current: 1.0, candidates: [1.0]}
decision: {bootstrap_resamples: 500, correction: holm}
"""


@pytest.fixture
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_unavailable("playwright is not installed (pip install -e '.[test]')")
    if not os.path.exists(CHROMIUM):
        service_unavailable("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def dagster_dev(tmp_path, dagster_home, study_dir, instance):
    from benchmark_assets.defs.builder import register_study
    from benchmark_assets.studies import load_study

    (study_dir / "toy.yaml").unlink()
    write_study(study_dir, "small", SMALL)
    register_study(instance, load_study("small"))  # what the CLI or the study sensor does first
    # The "Join the Dagster community" notice a new instance shows once (dagster._core.nux) would
    # cover the page whenever it happens to appear: mark it seen, as clicking Skip does.
    (dagster_home / ".nux").mkdir(exist_ok=True)
    (dagster_home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(dagster_home),
           "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    log = open(tmp_path / "dagster_dev.log", "wb")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen([sys.executable, "-m", "dagster", "dev", "-m", "benchmark_assets.definitions",
                               "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT, env=env, start_new_session=True,
                              stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=2):
                    break
            except OSError:
                assert server.poll() is None, (tmp_path / "dagster_dev.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "dagster dev did not start"
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _show_markdown(page, key: str):
    """Open the Markdown metadata entry ``key`` of the asset page shown, return the dialog."""
    from playwright.sync_api import expect

    expect(page.get_by_role("dialog")).to_have_count(0)  # the previous one has finished closing
    page.locator("tr", has=page.locator("td", has_text=key).first).first.get_by_text("[Show Markdown]").click()
    expect(page.get_by_role("dialog")).to_have_count(1)
    return page.get_by_role("dialog")


def test_a_study_materialised_from_the_ui_shows_its_evidence(browser, dagster_dev, instance, tmp_path):
    from dagster import AssetKey, RunsFilter
    from dagster._core.execution.backfill import BulkActionStatus

    from benchmark_assets.ledger import Ledger
    from benchmark_assets.warehouse import Warehouse

    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{dagster_dev}/asset-groups/small@__repository__@benchmark_assets.definitions", wait_until="networkidle")
    page.get_by_role("button", name="Materialize all…").click()
    page.get_by_role("button", name="All", exact=True).click()
    page.screenshot(path=shots / "launch.png")
    page.get_by_role("button", name="Launch backfill").click()

    deadline = time.monotonic() + 600
    while True:  # the daemon runs the backfill, as for any user
        backfills = instance.get_backfills()
        if backfills and backfills[0].status not in (BulkActionStatus.REQUESTED,):
            break
        assert time.monotonic() < deadline, "the backfill did not finish"
        time.sleep(2)
    assert backfills[0].status == BulkActionStatus.COMPLETED_SUCCESS, backfills[0].status
    assert instance.get_latest_materialization_event(AssetKey(["small", "ratchet_summary"])) is not None
    runs = instance.get_runs(filters=RunsFilter(tags={"dagster/backfill": backfills[0].backfill_id}))
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
    assert page.get_by_text("matches its pandera schema").count()  # the check says what it checks

    page.goto(f"{dagster_dev}/assets/small/ratchet_summary", wait_until="networkidle")
    report = _show_markdown(page, "report")
    report.get_by_text("Ratchet summary: small").wait_for()
    page.screenshot(path=shots / "report.png")
    report.get_by_role("button", name="Close").click()
    plots = _show_markdown(page, "plots")
    image = plots.locator("img[src^='data:image/png;base64,']").first
    image.wait_for()
    assert image.evaluate("e => e.complete && e.naturalWidth") == 560  # decoded and drawn
    page.screenshot(path=shots / "plots.png")
    plots.get_by_role("button", name="Close").click()

    page.goto(f"{dagster_dev}/assets/small/verdicts", wait_until="networkidle")
    history = _show_markdown(page, "history")
    history.get_by_role("heading", name="alpha").wait_for()
    # One table per constant decided (alpha, beta, gamma), each with its first decision.
    assert history.get_by_role("table").count() == 3 and history.get_by_text("(first decision)").count() == 3
    page.screenshot(path=shots / "history.png")

    deadline = time.monotonic() + 120
    while not len(Ledger(Warehouse()).read(study="small")):  # the ledger_settlement sensor's tick
        assert time.monotonic() < deadline, "the UI run's decision never reached the ledger"
        time.sleep(2)
