"""The study `benchmark-assets new ratchet NAME` writes: commented, valid, and it runs as written."""
from __future__ import annotations

TEMPLATE = """\
# {name}: tune constants on train scenarios, confirm each change on held-out validation
# scenarios, and propose (never apply) the changes that hold up. Run it with
#   benchmark-assets run {name}
# then read the report it prints, or open the UI (benchmark-assets ui).
kind: ratchet
description: A first ratchet.
target: {target}{target_note}
metric: {metric}               # the result key decisions are made on (all keys are recorded)
direction: maximize           # or minimize
scenarios:
  factory: parametric         # generated scenarios; seed ids split into train and validation
  count: 20
  train_fraction: 0.7         # seed ids 0-13 train, 14-19 validation
constants:                    # each: its tier, today's value, the values to try
{constants}
decision:
  improvement_threshold: 0.01   # the smallest gain worth a change, in the metric's units (train and validation)
  confidence_level: 0.95
"""

MEMORY_CONSTANTS = """\
  decay_rate:     {tier: 1, current: 0.3, candidates: [0.1, 0.3, 0.7]}
  recency_weight: {tier: 1, current: 0.5, candidates: [0.0, 0.5, 1.0]}
  # The built-in memory target takes all of its 20 constants; these hold at today's value (a
  # single candidate). Give one more candidates to try it too.
""" + "\n".join(f"  {name + ':':<31} {{tier: {tier}, current: {value}, candidates: [{value}]}}" for name, tier, value in (
    ("recency_half_life_days", 1, 7.0), ("write_filter_threshold", 1, 0.05), ("surfacing_threshold", 1, 0.05),
    ("initial_confidence", 1, 0.5), ("confidence_weight", 1, 0.5), ("acted_confidence_signal", 2, 0.1),
    ("dismissed_confidence_signal", 2, 0.05), ("contradicted_confidence_signal", 2, 0.2),
    ("cycle_strengthen_factor", 2, 1.05), ("cycle_weaken_factor", 2, 0.95), ("confidence_floor", 2, 0.05),
    ("max_confidence", 2, 1.0), ("link_initial_weight", 3, 0.3), ("link_delta", 3, 0.1),
    ("link_decay_factor", 3, 0.95), ("link_decay_per_hop", 3, 0.5), ("link_activation_weight", 3, 0.1),
    ("link_seed_count", 3, 3)))

OWN_CONSTANTS = """\
  # Name your function's constants here: it receives them in `params`, every one each time.
  x: {tier: 1, current: 1.0, candidates: [0.5, 1.0, 2.0]}"""

DECLARED = """\
  # The constants {target} declares. Set each one's current value to today's (the one in your
  # code) and list the values to try; a single candidate holds it at today's value."""


def declared(target: str) -> tuple[list[str], frozenset[str], tuple[str, ...]] | None:
    """The constants (sorted), whole-number constants and metrics ``target`` declares
    (``evaluate.constants``, ``.integer_constants``, ``.metrics``), or None when it cannot be
    imported or declares no constants: the template then names a placeholder."""
    from benchmark_assets.targets import TargetError, resolve_target

    try:
        found = resolve_target(target)
    except TargetError:
        return None
    if not found.constants:
        return None
    return sorted(found.constants), found.integer_constants, found.metrics or ()


def own_constants(target: str, names: list[str], whole: frozenset[str]) -> str:
    width = max(len(n) for n in names) + 1
    rows = [f"  {n + ':':<{width}} {{tier: 1, current: 1, candidates: [1, 2, 4]}}" if n in whole else
            f"  {n + ':':<{width}} {{tier: 1, current: 1.0, candidates: [0.5, 1.0, 2.0]}}" for n in names]
    return DECLARED.format(target=target) + "\n" + "\n".join(rows)


def study_template(name: str, target: str | None) -> str:
    own = target is not None
    found = declared(target) if own else None
    metric = (found[2][0] if found and found[2] else "score") if own else "ndcg_5"
    constants = (own_constants(target, found[0], found[1]) if found else OWN_CONSTANTS) if own else MEMORY_CONSTANTS
    return TEMPLATE.format(name=name, target=target or "memory",
                           target_note="   # your module:function" if own else
                           "           # built-in; or your module:function (benchmark-assets new ratchet NAME "
                           "--target mypackage.module:evaluate)",
                           metric=metric, constants=constants)
