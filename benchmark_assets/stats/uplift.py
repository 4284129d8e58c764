"""Treatment-effect (uplift) estimates scored against the known true effects of a synthetic experiment.

PEHE (the root mean squared error of the individual effects), sign accuracy, the uplift curve and its
area, the normalised Qini coefficient, interval coverage, and ``uplift_metrics``, every one of them
for one estimate at once. Ties in an estimate rank as a random order within the tie would, in
expectation: a constant estimate is the random-targeting line. Plain numpy; no Dagster, and nothing
from targets/ (an estimate is anything with the attributes of ``EffectEstimate``).
"""
from __future__ import annotations

import math
from typing import Protocol

import numpy as np

# A true effect counts as non-zero (for the sign) above this share of the largest |true effect|; the
# oracle's area must beat the random line by more than this share of it for the Qini to be defined.
_RELATIVE_ZERO = 1e-12

METRICS = (
    "ate_estimate", "true_ate", "ate_bias", "ate_abs_error", "ate_covered", "ate_interval_width",
    "pehe", "pehe_normalised", "ate_error_normalised", "sign_accuracy", "auuc", "qini", "coverage",
    "interval_width",
)


class EffectEstimate(Protocol):
    """What ``uplift_metrics`` reads from an estimate (``targets.uplift.Estimate`` has it): individual
    effects or None (average effect only), the average effect, optional individual and ATE intervals."""

    effects: np.ndarray | None
    ate: float | None
    lower: np.ndarray | None
    upper: np.ndarray | None
    ate_lower: float | None
    ate_upper: float | None


def pehe(estimated_effects, true_effects) -> float:
    """Precision in estimating heterogeneous effects: sqrt(mean((estimated - true)^2)), computed on
    errors scaled by the largest, so it is 0 exactly when the effects are equal (no underflow)."""
    e, t = _pair(estimated_effects, true_effects)
    errors = e - t
    largest = np.max(np.abs(errors))
    return 0.0 if largest == 0 else float(largest * np.sqrt(np.mean((errors / largest) ** 2)))


def sign_accuracy(estimated_effects, true_effects) -> float:
    """Share of units whose estimated effect has the true effect's sign, over the units whose true
    effect is not zero (|true| > 1e-12 of the largest |true|); an estimate of exactly 0 is wrong.
    NaN when every true effect is zero."""
    e, t = _pair(estimated_effects, true_effects)
    nonzero = np.abs(t) > _RELATIVE_ZERO * np.max(np.abs(t))
    if not nonzero.any():
        return math.nan
    return float(np.mean(np.sign(e[nonzero]) == np.sign(t[nonzero])))


def uplift_curve(estimated_effects, true_effects) -> tuple[np.ndarray, np.ndarray]:
    """The uplift curve of a ranking: (fractions, gains), where ``gains`` is the sum of the true
    effects of the top ``fraction`` of units, ranked by the estimate (highest first), divided by n.

    Units tied in the estimate are treated in a random order, in expectation: the curve is linear
    across a tie group, so its vertices are the tie-group boundaries, from (0, 0) to (1, ATE) with
    ATE = mean(true_effects) exactly. A constant estimate is the straight random-targeting line."""
    e, t = _pair(estimated_effects, true_effects)
    n = e.size
    order = np.argsort(-e, kind="stable")
    ranked = e[order]
    ends = np.append(np.flatnonzero(ranked[1:] != ranked[:-1]) + 1, n)  # exclusive end of each tie group
    gains = np.cumsum(t[order])[ends - 1] / n
    gains[-1] = np.mean(t)  # the same float as the ATE everywhere else, whatever the summation order
    return np.concatenate(([0.0], ends / n)), np.concatenate(([0.0], gains))


def auuc(estimated_effects, true_effects) -> float:
    """Area under the uplift curve (trapezoids, exact for the piecewise-linear curve); ATE / 2 for a
    constant estimate, the oracle's area (the largest) for a ranking by the true effect."""
    fractions, gains = uplift_curve(estimated_effects, true_effects)
    return float(np.trapezoid(gains, fractions))


def qini_coefficient(estimated_effects, true_effects) -> float:
    """The normalised Qini coefficient: (auuc - ATE/2) / (oracle auuc - ATE/2), the estimate's area
    above the random-targeting line as a share of the oracle's. 1 for a ranking in the true order,
    0 for a constant (or random) one, below 0 for a ranking worse than random. Invariant to any
    strictly increasing transform of the estimate. NaN when the true effect is constant, or so
    nearly that the oracle's area beats random by no more than rounding (1e-12 of the largest
    |true effect|): then no ranking is better than another."""
    e, t = _pair(estimated_effects, true_effects)
    random_area = np.mean(t) / 2
    oracle_gain = auuc(t, t) - random_area
    if np.ptp(t) == 0 or not oracle_gain > _RELATIVE_ZERO * np.max(np.abs(t)):
        return math.nan
    return float((auuc(e, t) - random_area) / oracle_gain)


def interval_coverage(lower, upper, true_values) -> tuple[float, float]:
    """(share of units with lower <= true <= upper, mean width upper - lower)."""
    low, high = _pair(lower, upper, names=("lower", "upper"))
    _, t = _pair(low, true_values, names=("lower", "true_values"))
    return float(np.mean((low <= t) & (t <= high))), float(np.mean(high - low))


def uplift_metrics(estimate: EffectEstimate, true_effects) -> dict[str, float]:
    """Every metric of one estimate against the true effects, keyed as ``METRICS``, NaN where it does
    not apply: the ATE ones (the true ATE is the mean true effect of these units; ``ate_covered`` is
    1.0 or 0.0 when the estimate has an ATE interval), and the individual-effect ones, NaN for an
    estimate of the average effect only. ``*_normalised`` divide by sqrt(mean(true^2)), the PEHE of
    the zero-effect estimate (NaN when every true effect is 0); ``coverage`` and ``interval_width``
    need individual-effect intervals."""
    t = _vector(true_effects, "true_effects")
    effects = None if estimate.effects is None else _vector(estimate.effects, "effects")
    ate = estimate.ate if estimate.ate is not None else (math.nan if effects is None else np.mean(effects))
    true_ate = float(np.mean(t))
    scale = float(np.sqrt(np.mean(t**2)))
    ate_lower, ate_upper = estimate.ate_lower, estimate.ate_upper
    has_ate_interval = ate_lower is not None and ate_upper is not None
    out = dict.fromkeys(METRICS, math.nan)
    out.update(
        ate_estimate=float(ate),
        true_ate=true_ate,
        ate_bias=float(ate) - true_ate,
        ate_abs_error=abs(float(ate) - true_ate),
        ate_covered=float(ate_lower <= true_ate <= ate_upper) if has_ate_interval else math.nan,
        ate_interval_width=float(ate_upper - ate_lower) if has_ate_interval else math.nan,
    )
    out["ate_error_normalised"] = out["ate_abs_error"] / scale if scale > 0 else math.nan
    if effects is None:
        return out
    out.update(pehe=pehe(effects, t), sign_accuracy=sign_accuracy(effects, t), auuc=auuc(effects, t),
               qini=qini_coefficient(effects, t))
    out["pehe_normalised"] = out["pehe"] / scale if scale > 0 else math.nan
    if estimate.lower is not None and estimate.upper is not None:
        out["coverage"], out["interval_width"] = interval_coverage(estimate.lower, estimate.upper, t)
    return out


def _vector(values, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"{name} must be one value per unit, shaped (n,) with n >= 1, got {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} hold NaN or infinite values; every unit needs a finite value")
    return v


def _pair(first, second, *, names=("estimated_effects", "true_effects")) -> tuple[np.ndarray, np.ndarray]:
    a, b = _vector(first, names[0]), _vector(second, names[1])
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must cover the same units, got {a.shape} and {b.shape}")
    return a, b
