"""Estimator benchmarks simulated with a known truth, to measure how often the pairwise verdicts
are wrong. No Dagster.

Under the null every estimator's errors are exchangeable: heavy-tailed (a squared Student t with 3
degrees of freedom), scaled by entry (entries differ a lot, as real catalogs do), on two seeds. Any
"better" or "worse" verdict is then a false claim."""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark_assets.kinds.estimator_benchmark.analysis import judge_pairs
from benchmark_assets.kinds.estimator_benchmark.spec import DecisionSpec

METRICS = ("pehe_normalised", "ate_error_normalised", "qini")


def trial_table(errors: dict[str, np.ndarray], metric: str = "pehe_normalised") -> pd.DataFrame:
    """Trials of each estimator from an array of its errors shaped (seeds, entries); NaN: failed."""
    frames = []
    for name, values in errors.items():
        seed, entry = np.indices(values.shape)
        ok = np.isfinite(values.ravel())
        frames.append(pd.DataFrame({
            "estimator": name, "seed": seed.ravel(), "entry_id": [f"e{i}" for i in entry.ravel()],
            "status": np.where(ok, "ok", "failed"), "error": np.where(ok, "", "boom"),
            **dict.fromkeys(METRICS, 0.5), metric: values.ravel(),
            "sign_accuracy": 0.5, "ate_covered": np.nan, "fit_seconds": 0.01}))
    return pd.concat(frames, ignore_index=True)


def null_claims(rng: np.random.Generator, runs: int, *, correction: str = "holm", estimators: str = "abcd",
                entries: int = 12, seeds: int = 2) -> int:
    """In how many of ``runs`` null benchmarks any pair of estimators got a verdict."""
    names, entry_ids = list(estimators), [f"e{i}" for i in range(entries)]
    claims = 0
    for _ in range(runs):
        entry_scale = rng.lognormal(0, 1, entries)
        errors = {name: entry_scale * rng.standard_t(3, (seeds, entries)) ** 2 for name in names}
        pairs = judge_pairs(trial_table(errors), names, DecisionSpec(correction=correction), list(range(seeds)),
                            entry_ids)
        claims += bool(pairs["verdict"].isin(["better", "worse"]).any())
    return claims
