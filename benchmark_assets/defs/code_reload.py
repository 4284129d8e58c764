"""Reload the code location when a study file changes, so the UI shows the study as it is now.

Code versions follow a study's values, and the UI compares each materialisation with the
definitions it loaded: after an edit, runs (whose workers load the file afresh) record the new
versions while the UI still holds the old ones and calls every asset "Unsynced: has a new code
version" until someone reloads the definitions. The study sensor sees the edit first; it asks the
webserver to reload this code location, as the UI's Reload button does (the GraphQL mutation
``reloadRepositoryLocation``, through dagster-graphql's client). The daemon notices that the code
server was restarted and reloads too. The request is sent from a thread after a short delay, so
the sensor's tick (which runs in the code server being replaced) has returned by then.

The webserver is at $BENCHMARK_ASSETS_WEBSERVER_URL (default http://127.0.0.1:3000, the README's
`dagster dev` command); set it to "off" to leave reloading to people."""
from __future__ import annotations

import os
import threading
import urllib.parse

WEBSERVER_ENV = "BENCHMARK_ASSETS_WEBSERVER_URL"
DEFAULT_WEBSERVER = "http://127.0.0.1:3000"
RELOAD_DELAY_SECONDS = 2.0

_lock = threading.Lock()
_requested: set[tuple[str, str]] = set()  # (location, study hash) asked for, in this process
_pending: set[str] = set()  # locations with a reload about to be sent
_outcomes: dict[str, str] = {}  # location -> what the last reload did, for the next tick's log


def _logger():
    from dagster import get_dagster_logger

    return get_dagster_logger("benchmark_assets")  # the code server's log shows Dagster's loggers


def webserver_url() -> str | None:
    url = os.environ.get(WEBSERVER_ENV, DEFAULT_WEBSERVER).strip()
    return None if url.lower() in ("", "off", "none") else url


def reload_location(url: str, location: str, *, timeout: int = 120) -> tuple[bool, str]:
    """Ask the webserver at ``url`` to reload ``location``: (done, what happened in one line)."""
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError, ReloadRepositoryLocationStatus

    parts = urllib.parse.urlsplit(url)
    client = DagsterGraphQLClient(parts.hostname or "127.0.0.1", port_number=parts.port,
                                  use_https=parts.scheme == "https", timeout=timeout,
                                  path_prefix=parts.path.rstrip("/"))
    try:
        info = client.reload_repository_location(location)
    except DagsterGraphQLClientError as error:
        return False, f"could not reach the webserver at {url} to reload {location} ({error}); reload it in the UI"
    if info.status == ReloadRepositoryLocationStatus.SUCCESS:
        return True, f"reloaded code location {location}"
    return False, f"reloading {location} failed: {info.message}"


def take_outcome(location: str | None) -> str | None:
    """What the last reload of ``location`` did, once (the sensor logs it on its next tick)."""
    with _lock:
        return _outcomes.pop(location, None) if location else None


def reload_soon(location: str | None, study_hash: str) -> bool:
    """Reload ``location`` shortly, from a thread, once per (location, study hash) in this process
    and with one reload pending per location (two studies edited together: one reload). A reload
    that fails is asked for again by the next tick. False when nothing was asked."""
    url = webserver_url()
    if not location or url is None:
        return False
    with _lock:
        if (location, study_hash) in _requested:
            return False
        _requested.add((location, study_hash))
        if location in _pending:
            return True  # the reload about to be sent covers this edit too
        _pending.add(location)

    def reload() -> None:
        with _lock:
            _pending.discard(location)
        try:  # a study file that is invalid meanwhile is left out alone (``definitions``)
            done, outcome = reload_location(url, location)
        except Exception as error:  # noqa: BLE001 - a thread must not die silently: say why the UI was not refreshed
            done, outcome = False, f"reloading {location} failed: {type(error).__name__}: {error}"
        with _lock:
            _outcomes[location] = outcome
            if not done:  # ask again on a later tick
                _requested.discard((location, study_hash))
        (_logger().info if done else _logger().warning)(outcome)

    timer = threading.Timer(RELOAD_DELAY_SECONDS, reload)
    timer.daemon = True
    timer.start()
    return True
