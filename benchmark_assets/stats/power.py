"""Seeds needed to detect an effect, and the power a given number of seeds has (statsmodels t-test power)."""
from __future__ import annotations

import math
import warnings

import numpy as np

from benchmark_assets.stats.bootstrap import ALTERNATIVES

# statsmodels' names for scipy's alternatives.
_STATSMODELS_ALTERNATIVE = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


def standardised_effect(effect: float, *, sd: float | None = None) -> float:
    """effect / sd, or effect itself when sd is None (already standardised).

    ``sd`` is a standard deviation of single observations: of the paired differences for a paired
    design, the pooled SD of the groups for an unpaired one. Never a standard error: dividing by
    SD/sqrt(n) inflates d by sqrt(n) (the reference pipeline's unpaired bug)."""
    if sd is None:
        return float(effect)
    if not sd > 0:
        raise ValueError(f"sd must be a positive standard deviation, got {sd}")
    return float(effect) / float(sd)


def required_n(
    effect: float,
    *,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    paired: bool = True,
    alternative: str = "two-sided",
    ratio: float = 1.0,
) -> int:
    """Seeds needed for a t-test to detect ``effect`` with ``power`` at level ``alpha``, rounded up.

    Paired (or one-sample): pairs of seeds (``TTestPower``). Unpaired: candidate seeds per group
    (``TTestIndPower``); the control group needs ``ceil(ratio * n)``. ``effect`` is in raw units
    when ``sd`` is given, else standardised (d_z paired, Cohen's d unpaired)."""
    d = _checked_effect(effect, sd, alternative)
    if not 0.0 < power < 1.0 or not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha and power must be in (0, 1), got alpha={alpha}, power={power}")
    kind = _STATSMODELS_ALTERNATIVE[alternative]

    def power_at(n: float) -> float:
        return _power(d, n, alpha=alpha, paired=paired, kind=kind, ratio=ratio)

    # A t-test needs two seeds; statsmodels' root finder fails when fewer would do.
    if power_at(2) >= power:
        return 2
    from statsmodels.stats.power import TTestIndPower, TTestPower  # on first use: they import SciPy (stats.lazy)
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if paired:
            n = TTestPower().solve_power(effect_size=d, nobs=None, alpha=alpha, power=power, alternative=kind)
        else:
            n = TTestIndPower().solve_power(effect_size=d, nobs1=None, alpha=alpha, power=power, ratio=ratio,
                                            alternative=kind)
    n = float(np.asarray(n).squeeze())
    if not np.isfinite(n):
        return _smallest_n(power_at, power)
    # Rounding before the ceiling keeps an exact solution like 34.0000000001 at 34.
    return max(2, math.ceil(round(n, 6)))


def achieved_power(
    effect: float,
    *,
    n: int,
    sd: float | None = None,
    alpha: float = 0.05,
    paired: bool = True,
    alternative: str = "two-sided",
    ratio: float = 1.0,
) -> float:
    """Power of the t-test with ``n`` seeds (pairs, or candidate seeds per group when unpaired) to
    detect ``effect`` at level ``alpha``; options as in ``required_n``."""
    d = _checked_effect(effect, sd, alternative)
    return _power(d, n, alpha=alpha, paired=paired, kind=_STATSMODELS_ALTERNATIVE[alternative], ratio=ratio)


def _power(d: float, n: float, *, alpha: float, paired: bool, kind: str, ratio: float) -> float:
    from statsmodels.stats.power import TTestIndPower, TTestPower

    if paired:
        value = TTestPower().power(effect_size=d, nobs=n, alpha=alpha, alternative=kind)
    else:
        value = TTestIndPower().power(effect_size=d, nobs1=n, alpha=alpha, ratio=ratio, alternative=kind)
    return float(np.asarray(value).squeeze())


def _smallest_n(power_at, power: float, limit: int = 10**9) -> int:
    """The smallest integer n >= 2 with power_at(n) >= power, by doubling then bisection (power
    grows with n); the fallback when statsmodels' root finder does not converge."""
    low, high = 2, 4
    while power_at(high) < power:
        if high >= limit:
            raise ValueError(f"more than {limit:,} seeds would be needed: the effect is too small to detect")
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if power_at(middle) < power else (low, middle)
    return high


def _checked_effect(effect: float, sd: float | None, alternative: str) -> float:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r} unknown; choose one of {ALTERNATIVES}")
    d = standardised_effect(effect, sd=sd)
    if d == 0 or not np.isfinite(d):
        raise ValueError("the effect must be finite and non-zero: give the smallest change worth detecting")
    if (alternative == "greater" and d < 0) or (alternative == "less" and d > 0):
        raise ValueError(f"alternative {alternative!r} cannot detect an effect of sign {np.sign(d):+.0f}")
    return d
