"""One `dagster dev` on 127.0.0.1 for all the UI tests, as a team runs it: webserver, daemon
and code server over one DAGSTER_HOME, serving each study the UI tests need (``small`` for the
browser test, ``reload`` for the edited study, ``sweep`` with files already in its inbox). Sensors
tick every few seconds through the project's own setting ($BENCHMARK_ASSETS_SENSOR_SECONDS);
Dagster's backfill daemon loops every 3 s instead of its fixed 30 s (``daemon_pace/``). The UI tests
share the xdist group ``ui``, so one worker runs them one after another against this one server, which stops after the last."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmark_assets_tests.conftest import ISOLATED, ROOT, StudyRan, free_port, service_unavailable, study_ran

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

LOCATION = "benchmark_assets.definitions"  # the code location `dagster dev -m benchmark_assets.definitions` makes
SENSOR_SECONDS = 5  # Dagster's sensor daemon looks every 5 s; the project's sensors may tick that often here
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

# The other kinds, each small enough to run in seconds (the load sweep is ``sweep``, from its inbox).
COMPARE = """\
kind: comparison
description: toy comparison for the browser test
target:
  command: ["{python}", "-m", "benchmark_assets_tests.toy_command", "--seed", "{seed}", "--shift", "{shift}",
            "--crash-seed", "-1", "--out", "{output}"]
  timeout_seconds: 60
arms:
  control:   {shift: 0.0}
  candidate: {shift: -0.05}
seeds: [11, 12, 13, 14, 15, 16]
metric: loss
summary: {type: auc, window: 0.25}
direction: minimize
decision: {bootstrap_resamples: 2000, target_effect: 0.02, method: bca}
"""
SUITE = """\
kind: acceptance
description: toy suite for the browser test
repeats: 4
base_seed: 100
benchmarks:
  model:
    baseline: {call: "benchmark_assets_tests.acceptance_sides:baseline"}
    optimised: {call: "benchmark_assets_tests.acceptance_sides:optimised"}
    metrics: [score]
    criteria:
      - {name: score kept, measure: score, max_loss: 0.10}
      - {measure: peak_memory, reduction: [0.70, 0.80]}
"""
ESTIMATORS = """\
kind: estimator_benchmark
description: toy benchmark for the browser test
catalog:
  templates: [constant, reversal]
  metric_ids: [conversion_rate]
  effect_scale_grid: [3.0]
  default_effect_scale: 3.0
  knob_grids: {n_visitors: [1500]}
  defaults: {n_visitors: 3000, baseline_rate: 0.3}
  categorical_driver: is_returning
seeds: 2
estimators:
  - zero_effect
  - difference_in_means
  - {name: ridge_t, function: "benchmark_assets_tests.uplift_estimators:linear_t_learner"}
decision: {bootstrap_resamples: 500}
"""

# One mistake (a correction that does not exist): the definitions leave this file out alone.
BROKEN = SMALL.replace("the browser test", "the broken study test").replace("correction: holm", "correction: holmes")


# Every UI test module carries these: a UI test, on the one worker that runs the server; the first one
# also starts the server and each waits on Dagster's backfill loop, so it may take 15 minutes
# before it counts as hung (the suite's default is 5).
UI = [pytest.mark.ui, pytest.mark.xdist_group("ui"), pytest.mark.timeout(900)]


@dataclass
class Deployment:
    ran: StudyRan  # the home, the studies (and, beside them, the inbox) the server serves
    url: str
    log: Path

    @property
    def studies(self) -> Path:
        return self.ran.studies

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def _prepare(instance, studies: Path) -> None:
    """What the CLI or the study sensor does first (register partition keys), and aiperf exports in
    the load sweep's inbox, there before `dagster dev` starts (as on a team's server)."""
    from benchmark_assets.defs.partitions import register
    from benchmark_assets.graph import StudyGraph
    from benchmark_assets.studies import load_study
    from benchmark_assets_tests.test_inbox import AIPERF

    for name in ("small", "reload"):
        register(instance, StudyGraph.of(load_study(name)))
    folder = studies.parent / "inbox" / "sweep"
    for source, run in (("flat_concurrency4.json", "c4"), ("phases_concurrency16.json", "c16")):
        (folder / run).mkdir(parents=True)
        shutil.copy(AIPERF / source, folder / run / "profile_export_aiperf.json")
    (folder / "c12").mkdir()
    (folder / "c12" / "profile_export_aiperf.json").write_text(
        (AIPERF / "flat_concurrency4.json").read_text().replace('"concurrency": 4', '"concurrency": 12'))


@pytest.fixture(scope="package")  # stopped after the last UI test, not at the end of the session
def deployment(tmp_path_factory, template_dagster_home):
    from benchmark_assets_tests.test_inbox import LOAD_SWEEP

    # ``broken`` is invalid from the start: every UI test runs beside it (test_broken_study.py).
    files = {"small": SMALL, "reload": SMALL.replace("the browser test", "the code reload test"), "sweep": LOAD_SWEEP,
             "broken": BROKEN, "neighbour": SMALL.replace("the browser test", "the broken study's neighbour"),
             "compare": COMPARE, "suite": SUITE, "estimators": ESTIMATORS}
    ran = study_ran(tmp_path_factory, template_dagster_home, files, _prepare)
    # The "Join the Dagster community" notice a new instance shows once (dagster._core.nux) would
    # cover the page whenever it happens to appear: mark it seen, as clicking Skip does.
    (ran.home / ".nux").mkdir(exist_ok=True)
    (ran.home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {name: value for name, value in os.environ.items() if name not in ISOLATED}
    env.update(ran.env(), PYTHONPATH=os.pathsep.join([str(ROOT), str(Path(__file__).parent / "daemon_pace")]),
               BENCHMARK_ASSETS_WEBSERVER_URL=base,
               BENCHMARK_ASSETS_SENSOR_SECONDS=str(SENSOR_SECONDS))
    log_path = ran.home.parent / "dagster_dev.log"
    log = open(log_path, "wb")
    # As the README starts it: `benchmark-assets ui` (dagster dev, its daemon, the artifacts server).
    artifacts_port = free_port()  # not port + 1: another test of this worker may be handed that one
    server = subprocess.Popen([sys.executable, "-m", "benchmark_assets.cli", "ui", "--port", str(port),
                               "--artifacts-port", str(artifacts_port)], cwd=ROOT,
                              env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=2):
                    break
            except OSError:
                assert server.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "dagster dev did not start"
                time.sleep(0.5)
        yield Deployment(ran, base, log_path)
    finally:
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C, as a user stops it
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture
def instance(deployment, monkeypatch):
    """This test process pointed at the deployment's home, studies and inbox, and its instance."""
    with deployment.ran.opened(monkeypatch) as dagster_instance:
        yield dagster_instance


def wait_for(what: str, condition, timeout: float = 300, log: Deployment | None = None):
    """Poll ``condition`` every second until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}" + (f"\n{log.log_tail()}" if log else "")
        time.sleep(1)
    return value


def graphql(base: str, query: str, variables: dict) -> dict:
    """The data of a GraphQL query to the deployment's webserver; fails on any error it reports."""
    request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query, "variables": variables}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert not body.get("errors"), body["errors"]
    return body["data"]


LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""


def selector(**more) -> dict:
    """A job's or sensor's selector in the deployment's one code location."""
    return {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", **more}


def launch_job(deployment: Deployment, job: str) -> str:
    """Launch ``job`` with no config, as the Launchpad's button does; its run id."""
    launched = graphql(deployment.url, LAUNCH, {"params": {"selector": selector(jobName=job), "runConfigData": {},
                                                            "mode": "default"}})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def finished_run(deployment: Deployment, instance, run_id: str, timeout: float = 600):
    """The run once it has succeeded, failed or been cancelled."""
    from dagster import DagsterRunStatus

    done = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
    return wait_for(f"run {run_id}", lambda: (r := instance.get_run_by_id(run_id)) and r.status in done and r,
                    timeout=timeout, log=deployment)


def show_markdown(page, key: str):
    """Open the Markdown metadata entry ``key`` of the asset page shown, as a person does (its
    "[Show Markdown]" link); the dialog, once its fade-in has ended."""
    from playwright.sync_api import expect

    expect(page.get_by_role("dialog")).to_have_count(0)  # the previous one has finished closing
    page.locator("tr", has=page.locator("td", has_text=key).first).first.get_by_text("[Show Markdown]").click()
    expect(page.get_by_role("dialog")).to_have_count(1)
    dialog = page.get_by_role("dialog")
    # The dialog fades in: wait for the page's finite transitions to end, so a screenshot shows it
    # whole. A transition the page cancels (a re-render replaces it) rejects its `finished` with an
    # AbortError (the fresh-clone CI of 261b019 failed so): it is over, so look again for the next.
    page.evaluate("""async () => {
      for (let look = 0; look < 50; look++) {
        const running = document.getAnimations().filter(
          a => a.effect && a.effect.getTiming().iterations !== Infinity && a.playState === "running");
        if (!running.length) return;
        await Promise.all(running.map(a => a.finished.catch(() => null)));
      }
    }""")
    return dialog


# A desktop screen: at 1400 px Dagster's asset page leaves its metadata values about 270 px beside
# the key and timestamp columns, and any 40-character value (a commit) widens that column past the
# panel's edge.
VIEWPORT = {"width": 1920, "height": 1200}

_CUT_OFF = """text => {
  const cell = [...document.querySelectorAll('td')].find(td => td.textContent.trim() === text);
  if (!cell) return 'no cell holds it';
  cell.scrollIntoView({block: 'center'});
  // as the page opens: scrolled down to the cell, not sideways (a person does not scroll to find the rest)
  for (let e = cell; e; e = e.parentElement) e.scrollLeft = 0;
  const range = document.createRange();
  range.selectNodeContents(cell);
  const lines = [...range.getClientRects()].filter(r => r.width > 0);
  const last = lines[lines.length - 1];
  const seen = document.elementFromPoint(last.right - 2, last.top + last.height / 2);
  return cell.contains(seen) ? '' : 'its end is hidden under ' + (seen ? seen.outerHTML.slice(0, 120) : 'nothing');
}"""


def fully_shown(page, text: str) -> str:
    """'' when the metadata value ``text`` is on the page to its last character (what is drawn at
    its end is its own cell, not whatever the panel's edge lets through); else what hides it."""
    return page.evaluate(_CUT_OFF, text)


def close(dialog) -> None:
    dialog.get_by_role("button", name="Close").click()


def backfill_of(instance, study: str, *, after: float = 0.0):
    """The newest backfill over ``study``'s assets created after ``after`` (a timestamp), or None."""
    for backfill in instance.get_backfills():
        keys = backfill.asset_selection or []
        if backfill.backfill_timestamp > after and any(key.path[0] == study for key in keys):
            return backfill
    return None


@pytest.fixture(scope="package")  # Playwright's sync API keeps an event loop running while it is open
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


# The UI guide's pictures (docs/images/ui/) are this browser test's screenshots: with
# BENCHMARK_ASSETS_DOCS_SCREENSHOTS=docs/images/ui the tests that take them write them there too,
# at a width and a palette a docs page can carry.
DOCS_SCREENSHOTS = "BENCHMARK_ASSETS_DOCS_SCREENSHOTS"


def publish_for_docs(shots: Path, names: list[str], prefix: str = "") -> list[Path]:
    """Copy screenshots to $BENCHMARK_ASSETS_DOCS_SCREENSHOTS (if set), 1,200 px wide and in 128
    colours; the copies made (none when it is unset). docs/guides/ui.md shows them and gives the
    command that refreshes them."""
    import os

    from PIL import Image

    folder = os.environ.get(DOCS_SCREENSHOTS, "").strip()
    if not folder:
        return []
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    made = []
    for name in names:
        with Image.open(shots / name) as image:
            image = image.convert("RGB")
            height = round(image.height * 1200 / image.width)
            small = image.resize((1200, height), Image.LANCZOS).quantize(colors=128)
            path = target / f"{prefix}{name}"
            small.save(path, optimize=True)
            made.append(path)
    return made
