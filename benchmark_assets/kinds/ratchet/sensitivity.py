"""Paired sensitivity curves: each swept value's gain over the current value, scenario by scenario."""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark_assets.kinds.ratchet.analysis import metric_table
from benchmark_assets.stats import describe
from benchmark_assets.sweep import ConstantSweep

SENSITIVITY_COLUMNS = ["constant", "value", "split", "n", "gain", "std", "t_low", "t_high"]


def paired_gain_curves(
    trials: pd.DataFrame,
    sweeps: list[ConstantSweep],
    *,
    metric: str,
    maximize: bool,
    splits: dict[str, list[int]],
    confidence_level: float = 0.95,
) -> pd.DataFrame:
    """For every constant, value and split: the mean paired gain over the current value (positive
    is better whatever the direction) with its Student-t interval over scenarios.

    This is the quantity the ratchet decides on (the verdict's validation delta is the gain of
    the proposed value on validation), so a plot of it shows the decision, not just two curves
    whose bands overlap because scenarios differ more than the values do."""
    table = metric_table(trials, metric)
    sign = 1.0 if maximize else -1.0
    rows = []
    for sweep in sweeps:
        current_key = sweep.key_for(sweep.current)
        if current_key not in table.index:
            continue
        for split, seed_ids in splits.items():
            columns = [s for s in seed_ids if s in table.columns]
            current = table.loc[current_key, columns].to_numpy(dtype=float)
            values = [v for v in sweep.values if sweep.key_for(v) in table.index]
            if not values:
                continue
            gains = sign * (table.loc[[sweep.key_for(v) for v in values], columns].to_numpy(dtype=float) - current)
            summary = describe(gains, confidence_level=confidence_level)
            for i, value in enumerate(values):
                rows.append({
                    "constant": sweep.name, "value": float(value), "split": split, "n": int(summary.n[i]),
                    "gain": float(summary.mean[i]), "std": float(summary.std[i]),
                    "t_low": float(summary.t_low[i]), "t_high": float(summary.t_high[i]),
                })
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS).astype({"n": np.int64})
