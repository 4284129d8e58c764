"""The ratchet's family of hypotheses: what is tested on validation, and how it is corrected. No Dagster.

Train and validation scenarios are disjoint, so a family chosen on train alone can be tested on
validation with error control over that family only (sample splitting: Rubin, Dudoit & van der
Laan 2006; Wasserman & Roeder 2009). A study's family is every change that clears the screen on
train: a constant whose best value on train gains more than the improvement threshold over
today's and is not next to a cliff, the search's best proposal by the same rule, and each
interaction pair whose best cell moves both constants and beats each single change and today's
values by more than the threshold on train. The rest get their verdicts without a test and do
not count in the correction.

Each claim is "this change is better", one-sided: only improvements are accepted. A claim may
need several comparisons to hold at once (a pair against each constant alone and today's
values: an intersection-union test), so a claim is a list of columns of paired validation
deltas, and it is accepted when every one of its columns is. The default correction is the
step-down max-T with joint sign flips (``stats.maxt``): every column of the family is flipped
with the same sign per scenario, which keeps the correlation of deltas measured against the
same run of today's values. Holm, Bonferroni, Benjamini-Hochberg and none remain choices; they
judge a claim by the largest of its columns' p-values.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark_assets.stats.maxt import max_t_family
from benchmark_assets.stats.multiple import adjust_p_values, step_down_tails
from benchmark_assets.stats.permutation import SignFlip

CORRECTIONS = ("max_t", "holm", "bonferroni", "bh", "none")
CORRECTION_NAMES = {"max_t": "max-T", "holm": "Holm", "weighted_holm": "train-weighted Holm", "bonferroni": "Bonferroni", "bh": "Benjamini-Hochberg",
                    "none": "un"}


@dataclass(frozen=True)
class Claim:
    """One hypothesis of the family: ``name`` and its columns of paired validation deltas (sign
    applied: higher is better), aligned on the same validation seed ids, NaN where a comparison
    was not measured."""

    name: str
    columns: tuple[np.ndarray, ...]
    train: tuple[np.ndarray, ...] = ()  # the same comparisons on train (for the max-T's weights)


@dataclass(frozen=True)
class Tested:
    """A claim's test: its one-sided p-value (the largest of its columns'), adjusted p-value,
    and per column the one-sided level whose own sign-flip test rejects exactly when the family's
    correction does (an interval at confidence 1 - 2 x that level has its lower end above 0
    exactly then)."""

    p_value: float
    p_adjusted: float
    tails: tuple[float, ...]


def aligned_deltas(table: pd.DataFrame, better: str, worse: str, seed_ids, sign: float) -> np.ndarray:
    """``sign`` x (better - worse) per seed id in ``seed_ids`` (NaN where either is unmeasured)."""
    if better not in table.index or worse not in table.index:
        return np.full(len(seed_ids), np.nan)
    pair = table.reindex(columns=list(seed_ids)).loc[[better, worse]]
    return sign * (pair.iloc[0].to_numpy(dtype=float) - pair.iloc[1].to_numpy(dtype=float))


def train_offset(train: np.ndarray) -> float:
    """A comparison's evidence on train: its scale-free statistic sum(d) / sqrt(sum(d**2)) (the
    one max-T uses on validation), 0 when train shows no gain. Train and validation scenarios are
    disjoint, so it is a constant under validation's sign flips."""
    own = measured(np.asarray(train, dtype=float))
    scale = float(np.sqrt((own**2).sum()))
    return max(0.0, float(own.sum()) / scale) if scale > 0 else 0.0


def measured(column: np.ndarray) -> np.ndarray:
    return column[np.isfinite(column)]


def sign_flip(column: np.ndarray, rng) -> SignFlip | None:
    own = measured(column)
    return SignFlip(own, rng=rng) if own.size else None


def one_sided_p(column: np.ndarray, rng, flip: SignFlip | None = None) -> float:
    flip = flip or sign_flip(column, rng)
    return flip.p_value(0.0, alternative="greater") if flip is not None else 1.0


def judge_family(claims: list[Claim], correction: str, alpha: float, *, rng, train_weight: float = 0.0
                 ) -> dict[str, Tested]:
    """Each claim's test at family-wise level ``alpha`` (false discovery rate with ``bh``). With
    max-T and a ``train_weight``, each column's bar is lowered by that weight times its train
    evidence (``train_offset``)."""
    if correction not in CORRECTIONS:
        raise ValueError(f"correction {correction!r}: use one of {CORRECTIONS}")
    if not claims:
        return {}
    raw = [[one_sided_p(c, rng) for c in claim.columns] for claim in claims]
    p_values = np.array([max(ps) for ps in raw])
    if correction == "max_t":
        matrix = np.column_stack([np.nan_to_num(c, nan=0.0) for claim in claims for c in claim.columns])
        offsets = [train_weight * train_offset(claim.train[k] if k < len(claim.train) else np.array([]))
                   for claim in claims for k in range(len(claim.columns))]
        family = max_t_family(matrix, alpha=alpha, alternative="greater", rng=rng, offsets=offsets)
        out, start = {}, 0
        for claim, p in zip(claims, p_values):
            span = slice(start, start + len(claim.columns))
            start = span.stop
            out[claim.name] = Tested(float(p), float(family.adjusted[span].max()),
                                     tuple(float(t) for t in family.levels[span]))
        return out
    return stepwise([claim.name for claim in claims], p_values, correction, alpha,
                    widths=[len(claim.columns) for claim in claims])


def stepwise(names: list[str], p_values: np.ndarray, correction: str, alpha: float, *, widths=None
             ) -> dict[str, Tested]:
    """A p-value correction (Holm, Bonferroni, BH or none) over one p-value per claim: each
    claim's adjusted p and its level, repeated for each of its ``widths`` columns."""
    adjusted = adjust_p_values(p_values, correction)
    tails = family_tails(p_values, correction, alpha)
    widths = widths or [1] * len(names)
    return {name: Tested(float(p), float(a), (float(t),) * w)
            for name, p, a, t, w in zip(names, p_values, adjusted, tails, widths)}


def family_tails(p_values: np.ndarray, correction: str, alpha: float) -> np.ndarray:
    """Each claim's one-sided test level under a p-value correction: Holm's step-down levels
    (``stats.multiple.step_down_tails``), Bonferroni's alpha / m, none's alpha, and
    Benjamini-Hochberg's alpha x rank / m."""
    if correction != "bh":
        return step_down_tails(p_values, correction, alpha)
    ranks = np.empty(p_values.size, dtype=int)
    ranks[np.argsort(p_values, kind="stable")] = np.arange(1, p_values.size + 1)
    return alpha * ranks / max(p_values.size, 1)


def finite_or_nan(value: float) -> float:
    """An interval end as a float, NaN for an unbounded one (too few scenarios for the level)."""
    return float(value) if np.isfinite(value) else np.nan


def interval(flip: SignFlip | None, tail: float) -> tuple[float, float]:
    """The two-sided sign-flip interval at confidence 1 - 2 x ``tail`` (its lower end is the
    one-sided bound at 1 - tail) of a column's test (``sign_flip``); NaN ends where too few
    scenarios were measured for that level."""
    if flip is None or not 0.0 < tail < 0.5:
        return np.nan, np.nan
    return tuple(map(finite_or_nan, flip.interval(1.0 - 2.0 * tail)))
