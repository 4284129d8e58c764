"""Ratchet studies simulated with a known truth, to measure how often its decisions are wrong.
No Dagster.

Each study has ``constants`` constants with five values each (today's and four candidates), 35
train and 15 validation scenarios. A scenario has its own level (shared by every value: the
comparison is paired) and each (value, scenario) its own noise, so a validation delta's standard
deviation is ``sqrt(2) * noise``. Truths are planted per constant as a gain per value, in units of
that standard deviation, equal on train and validation: the null (no gain anywhere), one real
improvement, a cliff beyond an improvement, an improvement at the edge of the swept range.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark_assets.kinds.ratchet.analysis import decide_ratchet
from benchmark_assets.kinds.ratchet.rules import DecisionRules
from benchmark_assets.sweep import CURRENT_POINT, ConstantSweep, point_key

VALUES = (0.1, 0.2, 0.3, 0.4, 0.5)
TRAIN, VALIDATION = 35, 15
NOISE = 0.02
DIFFERENCE_SD = math.sqrt(2) * NOISE  # of one validation delta: two independent noises


def simulate_study(rng: np.random.Generator, gains: dict[int, dict[float, float]] | None = None, *,
                   currents: dict[int, float] | None = None, constants: int = 20,
                   rules: DecisionRules | None = None, rounds: int = 0, per_round: int = VALIDATION,
                   spending: str = "obrien_fleming") -> pd.DataFrame:
    """The ratchet's verdicts on one simulated study. ``gains[c][value]`` is the planted gain of
    constant ``c`` at ``value`` in SDs of a validation delta (0 where not given); ``currents[c]``
    its current value (0.3 where not given). Constants are named ``c00``, ``c01``, ... With
    ``rounds``, that many further validation rounds of ``per_round`` scenarios are there for the
    verdicts that stay inconclusive (every value is measured on them; the decisions look only at
    what the sequential design would have run)."""
    trials, sweeps = simulate_trials(rng, gains, currents=currents, constants=constants,
                                     scenarios=TRAIN + VALIDATION + rounds * per_round)
    first = TRAIN + VALIDATION
    return decide_ratchet(trials, sweeps, rules or DecisionRules(), metric="m", maximize=True,
                          train_ids=list(range(TRAIN)), validation_ids=list(range(TRAIN, first)),
                          rounds=[list(range(first + r * per_round, first + (r + 1) * per_round)) for r in range(rounds)],
                          spending=spending)


def simulate_trials(rng: np.random.Generator, gains: dict[int, dict[float, float]] | None = None, *,
                    currents: dict[int, float] | None = None, constants: int = 20,
                    scenarios: int = TRAIN + VALIDATION) -> tuple[pd.DataFrame, list[ConstantSweep]]:
    """One simulated study's trials (``sweep_point``, ``seed_id`` = scenario, ``m``) and sweeps."""
    gains, currents = gains or {}, currents or {}
    level = 0.5 + rng.normal(0.0, 0.05, scenarios)
    frames = [pd.DataFrame({"sweep_point": CURRENT_POINT, "seed_id": np.arange(scenarios), "status": "ok",
                            "m": level + rng.normal(0.0, NOISE, scenarios)})]
    sweeps = []
    for c in range(constants):
        name, current = f"c{c:02d}", currents.get(c, 0.3)
        sweeps.append(ConstantSweep(name, 1, current, VALUES))
        for value in VALUES:
            if value == current:
                continue
            gain = gains.get(c, {}).get(value, 0.0) * DIFFERENCE_SD
            frames.append(pd.DataFrame({"sweep_point": point_key(name, value), "seed_id": np.arange(scenarios),
                                        "status": "ok", "m": level + gain + rng.normal(0.0, NOISE, scenarios)}))
    return pd.concat(frames, ignore_index=True), sweeps


def lucky_pick_accepts(trials: pd.DataFrame, sweeps: list[ConstantSweep], alpha: float = 0.05) -> bool:
    """The ad-hoc rule the ratchet replaces, for calibration checks to catch: each constant's value
    is picked by its mean on the validation scenarios and kept when a paired t-test on those same
    scenarios says it beats today's value at ``alpha``, with no correction for the values or the
    constants tried. True when it keeps any change."""
    from scipy import stats

    validation = trials[trials["seed_id"].between(TRAIN, TRAIN + VALIDATION - 1)]
    table = validation.pivot_table(index="sweep_point", columns="seed_id", values="m")
    today = table.loc[CURRENT_POINT].to_numpy()
    for sweep in sweeps:
        deltas = [table.loc[point_key(sweep.name, v)].to_numpy() - today for v in sweep.values if v != sweep.current]
        best = max(deltas, key=np.mean)
        if stats.ttest_1samp(best, 0.0, alternative="greater").pvalue < alpha:
            return True
    return False
