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

_requested: set[tuple[str, str]] = set()  # (location, study hash) already asked for, in this process
_lock = threading.Lock()


def webserver_url() -> str | None:
    url = os.environ.get(WEBSERVER_ENV, DEFAULT_WEBSERVER).strip()
    return None if url.lower() in ("", "off", "none") else url


def reload_location(url: str, location: str, *, timeout: int = 120) -> str:
    """Ask the webserver at ``url`` to reload ``location``; returns what happened, in one line."""
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError, ReloadRepositoryLocationStatus

    parts = urllib.parse.urlsplit(url)
    client = DagsterGraphQLClient(parts.hostname or "127.0.0.1", port_number=parts.port,
                                  use_https=parts.scheme == "https", timeout=timeout,
                                  path_prefix=parts.path.rstrip("/"))
    try:
        info = client.reload_repository_location(location)
    except DagsterGraphQLClientError as error:
        return f"could not reach the webserver at {url} to reload {location} ({error}); reload it in the UI"
    if info.status == ReloadRepositoryLocationStatus.SUCCESS:
        return f"reloaded code location {location}"
    return f"reloading {location} failed: {info.message}"


def reload_soon(location: str | None, study_hash: str, log) -> bool:
    """Once per (location, study hash) in this process: reload ``location`` shortly, in a thread,
    and ``log`` what happened. False when there is nothing to do (no location, reloading off,
    already asked)."""
    url = webserver_url()
    if not location or url is None:
        return False
    with _lock:
        if (location, study_hash) in _requested:
            return False
        _requested.add((location, study_hash))

    def reload() -> None:
        try:
            log(reload_location(url, location))
        except Exception as error:  # a thread must not die silently: say why the UI was not refreshed
            log(f"reloading {location} failed: {type(error).__name__}: {error}")

    timer = threading.Timer(RELOAD_DELAY_SECONDS, reload)
    timer.daemon = True
    timer.start()
    return True
