"""The study `benchmark-assets new comparison NAME` writes: commented, valid, and it runs as written."""
from __future__ import annotations

from benchmark_assets.kinds.base import no_own_target

TEMPLATE = """\
# {name}: is the candidate better than the control? Both arms run a command once per seed, on
# the same seeds (a paired design); the decision is on the paired difference of one metric.
kind: comparison
description: A first comparison (the shipped numpy SGD example, two learning rates).
target:
  command: ["{{python}}", "-m", "benchmark_assets.examples.train_sgd",
            "--seed", "{{seed}}", "--lr", "{{lr}}", "--out", "{{output}}"]
  timeout_seconds: 120
arms:                         # each arm's parameters fill the {{...}} fields of the command
  control:   {{lr: 0.05}}
  candidate: {{lr: 0.2}}
seeds: [1, 2, 3, 4, 5, 6]
metric: loss                  # a curve the command writes to {{output}}
summary: {{type: auc, window: 0.25}}
direction: minimize
decision:
  confidence_level: 0.95
  target_effect: 0.02         # the smallest difference worth detecting: sets the power and seeds needed
"""


def study_template(name: str, target: str | None) -> str:
    no_own_target("comparison", target)
    return TEMPLATE.format(name=name)
