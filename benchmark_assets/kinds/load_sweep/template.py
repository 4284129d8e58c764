"""The study `benchmark-assets new load_sweep NAME` writes: commented, valid, and it runs as written."""
from __future__ import annotations

import hashlib

from benchmark_assets.kinds.base import no_own_target

TEMPLATE = """\
# {name}: drive an OpenAI-compatible server at several concurrencies and find the throughput /
# latency frontier. `mock_server` starts the shipped mock server on the URL's port for the sweep;
# point `url` at your own server and delete `mock_server` to measure it.
kind: load_sweep
description: A first load sweep of the mock LLM server.
target:
  http_load:
    url: http://127.0.0.1:{port}
    streaming: true
    input_tokens: 64
    output_tokens: 16
    concurrency: [1, 4, 16]   # a list is swept; request_rate: [...] sweeps arrival rates instead
    requests: 40              # per trial (or duration_seconds: 10)
    warmup_requests: 4
mock_server: {{ttft_ms: 20, itl_ms: 5, capacity: 8}}
trials: 3                     # per sweep point
slos:                         # optional: goodput, and whether each point meets them
  - {{metric: time_to_first_token, stat: p99, below: 200}}
# capacity: {{search: concurrency, low: 1, high: 64}}   # instead of a list: the highest load meeting the SLOs
"""


def study_template(name: str, target: str | None) -> str:
    no_own_target("load_sweep", target)
    port = 8800 + int(hashlib.sha256(name.encode()).hexdigest()[:4], 16) % 100  # the mock server's, one per name
    return TEMPLATE.format(name=name, port=port)
