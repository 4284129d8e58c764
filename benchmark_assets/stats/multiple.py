"""Multiple-testing control for many constants tested at once (statsmodels does the adjusting)."""
from __future__ import annotations

import numpy as np

CORRECTIONS = {"holm": "holm", "bonferroni": "bonferroni", "bh": "fdr_bh", "none": None}


def adjust_p_values(p_values, method: str) -> np.ndarray:
    """Holm (family-wise error) or Benjamini-Hochberg (false discovery rate) adjusted p-values."""
    if method not in CORRECTIONS:
        raise ValueError(f"correction {method!r} unknown; choose one of {sorted(CORRECTIONS)}")
    p = np.asarray(p_values, dtype=float)
    if CORRECTIONS[method] is None or p.size <= 1:  # one test: nothing to correct
        return p.copy()
    if method == "holm":
        # statsmodels' Holm ends in a full gc.collect() on every call (0.03-0.2 s, growing with the
        # process's heap), which dominated the ratchet's simulations; the step-down is three lines.
        order = np.argsort(p, kind="stable")
        stepped = np.minimum(1.0, np.maximum.accumulate(p[order] * np.arange(p.size, 0, -1)))
        adjusted = np.empty_like(p)
        adjusted[order] = stepped
        return adjusted
    from statsmodels.stats.multitest import multipletests  # on first use: it imports SciPy (stats.lazy)

    return multipletests(p, method=CORRECTIONS[method])[1]


def corrected_confidence_levels(p_values, method: str, confidence_level: float) -> np.ndarray:
    """The confidence level each hypothesis's interval must use so that 'its interval excludes 0'
    agrees with the step-wise correction: Holm tests the i-th smallest p at alpha/(m-i+1),
    Benjamini-Hochberg at alpha*i/m."""
    if method not in CORRECTIONS:
        raise ValueError(f"correction {method!r} unknown; choose one of {sorted(CORRECTIONS)}")
    p = np.asarray(p_values, dtype=float)
    alpha = 1.0 - confidence_level
    m = p.size
    levels = np.full(m, confidence_level)
    if method == "none" or m == 0:
        return levels
    ranks = np.empty(m, dtype=int)
    ranks[np.argsort(p, kind="stable")] = np.arange(1, m + 1)
    per_test_alpha = (alpha / (m - ranks + 1) if method == "holm" else np.full(m, alpha / m)
                      if method == "bonferroni" else alpha * ranks / m)
    return 1.0 - per_test_alpha


def step_down_tails(p_values: np.ndarray, correction: str, alpha: float) -> np.ndarray:
    """Each claim's test level ``alpha_i``, so that 'claimed' (p <= alpha_i) and 'its interval at
    that level excludes the null' always agree; the acceptance bands use one-sided tails (a 1 - 2
    alpha_i interval), a two-sided test a 1 - alpha_i interval. Holm: the i-th smallest p is tested
    at alpha / (m - i + 1) while the step-down goes on; once it stops at rank k, every later claim
    gets rank k's level (its p is above that level, so its interval at that level straddles, as its
    verdict says)."""
    m = p_values.size
    if correction == "none" or m == 0:
        return np.full(m, alpha)
    if correction == "bonferroni":
        return np.full(m, alpha / m)
    order = np.argsort(p_values, kind="stable")
    tails = np.empty(m)
    stopped = None
    for rank, i in enumerate(order):
        level = alpha / (m - rank)
        if stopped is None and p_values[i] > level:
            stopped = level
        tails[i] = level if stopped is None else stopped
    return tails


def weighted_holm(p_values, weights, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down with weights fixed before the data (Holm 1979, the weighted form): at each
    step the hypothesis with the smallest p / w among those left is rejected if p <= alpha w / W,
    W the weight left. It is the closed test of weighted Bonferroni tests, so the family-wise error
    stays within alpha for any weights chosen without the p-values (here: from train, disjoint
    from the validation scenarios the p-values come from). Returns (adjusted p-values, each
    hypothesis's level): a hypothesis is rejected exactly when its p is at most its level, the
    level it was tested at, or, once the step-down stops, the level it would have had then."""
    p = np.asarray(p_values, dtype=float)
    w = np.asarray(weights, dtype=float)
    m = p.size
    if m == 0:
        return np.empty(0), np.empty(0)
    if w.shape != p.shape or not np.all(w > 0) or not np.all(np.isfinite(w)):
        raise ValueError("weighted_holm needs one positive, finite weight per p-value")
    order = np.lexsort((np.arange(m), p / w))  # smallest p / w first, ties in input order
    left = w.sum()
    adjusted, tails = np.empty(m), np.empty(m)
    running, stopped = 0.0, None
    for i in order:
        running = max(running, min(1.0, p[i] * left / w[i]))
        adjusted[i] = running
        if stopped is None and p[i] > alpha * w[i] / left:
            stopped = left  # every hypothesis from here on keeps this step's weight sum
        tails[i] = alpha * w[i] / (left if stopped is None else stopped)
        left -= w[i]
    return adjusted, tails
