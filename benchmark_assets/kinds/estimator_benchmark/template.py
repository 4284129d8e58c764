"""The study `benchmark-assets new estimator_benchmark NAME` writes: commented, valid, and it runs as written."""
from __future__ import annotations

from benchmark_assets.kinds.base import no_own_target

TEMPLATE = """\
# {name}: which treatment-effect estimator to trust? Each is fitted on synthetic A/B tests whose
# true effects are known, ranked on its errors, and every pair is judged with a sign test.
kind: estimator_benchmark
description: A first estimator benchmark (the baselines; add s_learner etc. with the estimators extra).
catalog:
  profile: validate           # validate (seconds) | standard (minutes) | thorough
seeds: 2
estimators:
  - difference_in_means
  - zero_effect
  - constant_effect
decision:
  metric: pehe_normalised
  confidence_level: 0.95
"""


def study_template(name: str, target: str | None) -> str:
    no_own_target("estimator_benchmark", target)
    return TEMPLATE.format(name=name)
