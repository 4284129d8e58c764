"""The study `benchmark-assets new acceptance NAME` writes: commented, valid, and it runs as written."""
from __future__ import annotations

from benchmark_assets.kinds.base import no_own_target

TEMPLATE = """\
# {name}: does the optimised side meet every criterion against the baseline? Each benchmark runs
# both sides on paired seeds in alternating order; criteria are judged on corrected intervals.
kind: acceptance
description: A first acceptance suite (the shipped int8 embeddings example).
repeats: 5
confidence_level: 0.95
benchmarks:
  index_memory:
    baseline: {{call: "benchmark_assets.examples.embeddings:index_float32"}}
    optimised: {{call: "benchmark_assets.examples.embeddings:index_int8"}}
    criteria:
      - {{name: smaller index, measure: peak_memory, reduction: [0.70, 0.80]}}
  quality:
    baseline: {{call: "benchmark_assets.examples.embeddings:quality_float32"}}
    optimised: {{call: "benchmark_assets.examples.embeddings:quality_int8"}}
    metrics: [top10_agreement]
    criteria:
      - {{name: top-10 agreement kept, measure: top10_agreement, max_loss: 0.02}}
"""


def study_template(name: str, target: str | None) -> str:
    no_own_target("acceptance", target)
    return TEMPLATE.format(name=name)
