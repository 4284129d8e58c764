"""The artifacts folder over HTTP, read-only, for the browser: the plots, reports and exports a
study's assets link to (``artifacts.artifact_url``). `benchmark-assets ui` runs one beside the
Dagster UI; a team can point $BENCHMARK_ASSETS_ARTIFACTS_URL at its own file server instead."""
from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:
        pass  # one line per plot request would bury the UI's own log

    def do_PUT(self) -> None:
        self.send_error(405, "read-only")

    do_POST = do_DELETE = do_PUT


def serve_artifacts(folder: Path, host: str, port: int) -> ThreadingHTTPServer:
    """Serve ``folder`` (files and listings; nothing outside it) on host:port from a daemon thread;
    ``shutdown()`` stops it."""
    folder.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((host, port), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, name="artifacts", daemon=True).start()
    return server
