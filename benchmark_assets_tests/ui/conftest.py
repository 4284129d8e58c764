"""`dagster dev` on 127.0.0.1 with a small study, as a user starts it: webserver, daemon, code server."""
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from benchmark_assets_tests.conftest import ROOT, free_port, service_unavailable, write_study

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

LOCATION = "benchmark_assets.definitions"  # the code location `dagster dev -m benchmark_assets.definitions` makes
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
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(dagster_home),
           "BENCHMARK_ASSETS_STUDIES": str(study_dir), "BENCHMARK_ASSETS_WEBSERVER_URL": base}
    log = open(tmp_path / "dagster_dev.log", "wb")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen([sys.executable, "-m", "dagster", "dev", "-m", "benchmark_assets.definitions",
                               "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT, env=env, start_new_session=True,
                              stdout=log, stderr=subprocess.STDOUT)
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


@pytest.fixture
def browser():
    """Debian's Chromium, headless, driven by Playwright (nothing downloads a browser build)."""
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
