"""The study sensor's reload request: once per edit, said on the next tick when it failed, asked
again later, and never sent while a study file is invalid (the location would fail to load). The
reload that works, against a real `dagster dev`, is in ui/test_code_reload.py."""
import time

import pytest

from benchmark_assets.defs import code_reload
from benchmark_assets_tests.conftest import free_port


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(code_reload, "RELOAD_DELAY_SECONDS", 0.0)
    for name in ("_requested", "_pending", "_outcomes"):  # a fresh process's state
        monkeypatch.setattr(code_reload, name, type(getattr(code_reload, name))())


def _outcome(location: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while (outcome := code_reload.take_outcome(location)) is None:
        assert time.monotonic() < deadline, "the reload thread said nothing"
        time.sleep(0.05)
    return outcome


def test_an_unreachable_webserver_is_said_and_the_reload_is_asked_for_again(monkeypatch, study_dir):
    monkeypatch.setenv(code_reload.WEBSERVER_ENV, f"http://127.0.0.1:{free_port()}")  # nobody listens
    assert code_reload.reload_soon("here", "hash1")
    assert not code_reload.reload_soon("here", "hash1")  # the same edit: one request
    outcome = _outcome("here")
    assert outcome.startswith("could not reach the webserver at http://127.0.0.1:") and "reload it in the UI" in outcome
    assert code_reload.reload_soon("here", "hash1")  # it failed: the next tick asks again
    _outcome("here")


def test_reloading_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(code_reload.WEBSERVER_ENV, "off")
    assert not code_reload.reload_soon("here", "hash1")
    assert not code_reload.reload_soon(None, "hash1")  # no code location known (a test's sensor context)


def test_a_reload_goes_ahead_while_another_study_file_is_invalid(monkeypatch, study_dir):
    # The definitions leave an invalid file out alone, so a half-edited file holds no reload back.
    monkeypatch.setenv(code_reload.WEBSERVER_ENV, f"http://127.0.0.1:{free_port()}")
    (study_dir / "half_edited.yaml").write_text("kind: ratchet\nmetric: [\n")
    assert code_reload.reload_soon("here", "hash2")
    assert _outcome("here").startswith("could not reach the webserver at http://127.0.0.1:")
