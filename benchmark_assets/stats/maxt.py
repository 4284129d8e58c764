"""Step-down max-T adjusted p-values with joint sign flips (Westfall & Young 1993, algorithm 2.8).

A ratchet measures every proposal's validation delta against the same run of today's values, on
the same scenarios: the deltas of a family are correlated, and Holm, which must hold under any
dependence, spends the error budget as if they were not. Flipping the sign of a whole scenario's
row (every hypothesis at once) keeps that dependence in the null distribution, so the family-wise
error rate is held at the level asked with less to spare.

Each hypothesis j gets the scale-free statistic z_j = sum(d_ij) / sqrt(sum(d_ij**2)). Under a sign
pattern s its value is sum(s_i d_ij) / sqrt(sum(d_ij**2)) (the denominator does not change with the
signs), and it is an increasing function of the paired t statistic, the same function for every
hypothesis; so a hypothesis's own p-value is the sign-flip test's, and no hypothesis dominates the
maximum because its deltas are larger. The step-down: order the hypotheses by their observed
statistic, largest first; the k-th is adjusted by the share of sign patterns whose maximum over the
hypotheses from k on (those still in play) reaches its statistic; a later one is never adjusted
below an earlier one. Exact up to ``EXACT_PAIRS`` scenarios (every pattern), a seeded sample above,
as for the single test (``stats.permutation``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark_assets.stats.permutation import sign_patterns

ALTERNATIVES = ("two-sided", "greater")


def max_t_statistics(differences: np.ndarray, patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(observed z per hypothesis, z per pattern and hypothesis) of ``differences`` (scenarios x
    hypotheses). A hypothesis whose deltas are all 0, or all within float noise of 0 (the single
    test's tolerance, 1e-12 of the family's largest delta), has z = 0 under every pattern: a scale-free
    statistic would otherwise make rounding noise look like a consistent change."""
    noise = 1e-12 * max(1.0, float(np.abs(differences).max(initial=0.0)))
    scale = np.sqrt((differences**2).sum(axis=0))
    scale = np.where(np.abs(differences).max(axis=0, initial=0.0) > noise, scale, np.inf)
    return differences.sum(axis=0) / scale, patterns @ differences / scale


def step_down_max_t(differences, *, alternative: str = "two-sided", rng=None) -> np.ndarray:
    """Adjusted p-values of the hypotheses "no change" for each column of ``differences`` (rows:
    the scenarios every hypothesis was measured on, paired; columns: the hypotheses of one
    family). ``alternative="greater"`` tests for an increase only."""
    return max_t_family(differences, alternative=alternative, rng=rng).adjusted


@dataclass(frozen=True)
class MaxTFamily:
    """The step-down max-T of one family at level ``alpha``.

    ``adjusted``: each hypothesis's adjusted p-value (rejected exactly when it is at most alpha).
    ``levels``: for each hypothesis, the level at which its own sign-flip test (on its own column,
    the same test as ``stats.permutation.SignFlip``) rejects exactly when the step-down does: the
    share of sign patterns whose statistic of that hypothesis reaches the critical value of the
    step that decides it (the (1 - alpha) quantile of the maximum over the hypotheses in play;
    after the step-down stops, the critical value it stopped at). An interval that inverts the
    hypothesis's own test at that level therefore excludes 0 exactly when it is rejected: the
    interval shown agrees with the verdict."""

    adjusted: np.ndarray
    levels: np.ndarray


def max_t_family(differences, *, alpha: float = 0.05, alternative: str = "two-sided", rng=None,
                 offsets=None) -> MaxTFamily:
    """``step_down_max_t`` with each hypothesis's matching level (see ``MaxTFamily``). A missing
    paired difference may be given as 0: it adds nothing to a hypothesis's sums under any sign
    pattern, so each hypothesis's statistic is the one of its own measured scenarios.

    ``offsets`` (one per hypothesis, fixed before these differences were seen, e.g. from
    independent train data) are added to each hypothesis's statistic, observed and under every
    sign pattern alike: the maximum is then taken over z_j + offset_j, so a hypothesis with a
    larger offset faces a lower bar (critical value minus its offset) while the family-wise error
    rate stays exact, since the offsets are constants under the sign flips (a weighted max-T)."""
    d = np.asarray(differences, dtype=float)
    if d.ndim != 2 or d.shape[0] < 1 or not np.isfinite(d).all():
        raise ValueError("step_down_max_t needs a 2-D array (scenarios x hypotheses) of finite paired differences")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r}: use one of {ALTERNATIVES}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha {alpha}: use a level between 0 and 1")
    if d.shape[1] == 0:
        return MaxTFamily(np.empty(0), np.empty(0))
    observed, permuted = max_t_statistics(d, sign_patterns(d.shape[0], rng=rng))
    if alternative == "two-sided":
        observed, permuted = np.abs(observed), np.abs(permuted)
    shift = np.zeros(d.shape[1]) if offsets is None else np.asarray(offsets, dtype=float)
    if shift.shape != (d.shape[1],) or not np.isfinite(shift).all():
        raise ValueError(f"offsets: give one finite number per hypothesis ({d.shape[1]})")
    observed, permuted = observed + shift, permuted + shift
    order = np.argsort(-observed, kind="stable")
    # The maximum over the hypotheses still in play at each step: from rank k to the last.
    in_play = np.maximum.accumulate(permuted[:, order][:, ::-1], axis=1)[:, ::-1]
    tolerance = 1e-9  # z is scale-free (|z| <= sqrt(n)): ties of the same pattern must count
    adjusted = np.maximum.accumulate((in_play >= observed[order] - tolerance).mean(axis=0))
    levels = np.empty(d.shape[1])
    critical = np.inf
    for rank, j in enumerate(order):
        if rank == 0 or adjusted[rank - 1] <= alpha:  # the step-down still goes on: this step's value
            critical = _critical_value(in_play[:, rank], alpha)
        levels[j] = float((permuted[:, j] >= critical - tolerance).mean())
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return MaxTFamily(out, levels)


def _critical_value(maxima: np.ndarray, alpha: float) -> float:
    """The smallest of the patterns' maxima that at most a share ``alpha`` of them reach (with the
    same tolerance as the p-values); infinite when even the largest is reached too often (too few
    scenarios for this level)."""
    values = np.sort(maxima)[::-1]
    tolerance = 1e-9
    reached = np.searchsorted(-values, -(values - tolerance), side="right")  # patterns >= each value - tol
    allowed = reached / values.size <= alpha
    return float(values[allowed].min()) if allowed.any() else np.inf
