"""`benchmark-assets ui`: the Dagster UI for the studies of the folder it is started in, on any
port, with a start that says only what a person needs (no beta warnings, no warning about the
project's dagster.yaml, no community notice over the first page)."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from benchmark_assets_tests.conftest import ISOLATED, ROOT, free_port
from benchmark_assets_tests.ui.conftest import SMALL

pytestmark = pytest.mark.system

LOCATION = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on RepositoryLocation { repositories { assetGroups { groupName } } } } } } } }"""


def _loaded(base: str):
    body = json.dumps({"query": LOCATION}).encode()
    request = urllib.request.Request(f"{base}/graphql", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            entries = json.loads(response.read())["data"]["workspaceOrError"]["locationEntries"]
    except OSError:
        return None
    if entries and all(e["loadStatus"] == "LOADED" for e in entries):
        return entries
    return None


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_ui_starts_quietly_on_the_port_asked_for_with_the_studies_of_this_folder(tmp_path):
    """`benchmark-assets ui`, as README.md and docs/guides/ui.md start it."""
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "small.yaml").write_text(SMALL)
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # a project's own, as in the repo
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name not in ISOLATED and not name.startswith("DAGSTER")}
    env.pop("BENCHMARK_ASSETS_STUDIES", None)
    env.pop("BENCHMARK_ASSETS_WEBSERVER_URL", None)
    env["PYTHONPATH"] = str(ROOT)  # where the study's target module is, as a user's own would be
    log = tmp_path / "ui.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "benchmark_assets.cli", "ui", "--port", str(port)],
                                  cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while not (entries := _loaded(f"http://127.0.0.1:{port}")):
                assert server.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
            # the artifacts server beside it: what the UI's plot and file links open, read-only
            plots = tmp_path / ".dagster_home" / "artifacts" / "small" / "run1" / "plots"
            plots.mkdir(parents=True)
            (plots / "alpha.png").write_bytes(b"\x89PNG not really")
            with urllib.request.urlopen(f"http://127.0.0.1:{port + 1}/small/run1/plots/alpha.png", timeout=10) as got:
                assert got.read() == b"\x89PNG not really" and got.headers["Content-Type"] == "image/png"
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port + 1}/small/x", data=b"x",
                                                              method="PUT"), timeout=10)
            assert refused.value.code == 405
            with pytest.raises(urllib.error.HTTPError) as outside:
                urllib.request.urlopen(f"http://127.0.0.1:{port + 1}/../../dagster.yaml", timeout=10)
            assert outside.value.code == 404
        finally:
            os.kill(server.pid, signal.SIGTERM)  # `kill` of the command alone: it stops dagster dev too
            try:
                stopped = server.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                raise
    assert stopped == 130
    # Alone they are gone in seconds; in the full suite, beside the browser and celery tests, the
    # code servers took just over 30 s to finish shutting down.
    deadline = time.monotonic() + 60
    while _group_alive(server.pid):  # the webserver, the daemon and the code servers end with it
        assert time.monotonic() < deadline, "processes of dagster dev outlived the command"
        time.sleep(0.5)
    groups = {g["groupName"] for e in entries for r in e["locationOrLoadError"]["repositories"] for g in r["assetGroups"]}
    assert "small" in groups  # the studies of the folder it was started in
    text = log.read_text()
    assert text.splitlines()[0].startswith(f"Dagster UI: http://127.0.0.1:{port}  (studies: {tmp_path / 'studies'}")
    assert text.splitlines()[1].startswith(f"Artifacts: http://127.0.0.1:{port + 1}  (")
    assert "Warning" not in text and "Found a dagster instance configuration" not in text, text[-3000:]
    home = tmp_path / ".dagster_home"
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"  # seeded from the folder's
    assert (home / ".nux" / "nux.yaml").read_text() == "seen: 1\n"
