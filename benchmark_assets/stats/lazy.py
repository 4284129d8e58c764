"""SciPy, imported on first use. Every Dagster process (the code location the UI loads, the
daemon, each run) imports the statistics with the study definitions, and importing SciPy's stats
is most of a second of that: the UI's code location loads that much sooner when the first
statistic, not the definitions, pays for it."""
from __future__ import annotations


def scipy_stats():
    """``scipy.stats`` (imported on the first call; later calls are a dictionary lookup)."""
    from scipy import stats

    return stats


def ndtr(x):
    """``scipy.special.ndtr``: the standard normal CDF."""
    from scipy.special import ndtr as function

    return function(x)


def ndtri(p):
    """``scipy.special.ndtri``: its inverse."""
    from scipy.special import ndtri as function

    return function(p)
