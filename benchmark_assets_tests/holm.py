"""Holm's step-down levels worked out plainly, for tests to check the package's against."""
import pandas as pd


def holm_tails(p_values: pd.Series, alpha: float = 0.05) -> dict:
    """Per hypothesis (the series' index), the level Holm tests it at: the i-th smallest p at
    alpha / (m - i + 1) while the step-down goes on; once it stops, every later one keeps the
    level it stopped at (so each reported interval agrees with its verdict)."""
    order = p_values.sort_values(kind="stable")
    tails, stopped = {}, None
    for rank, (name, p) in enumerate(order.items()):
        level = alpha / (len(order) - rank)
        stopped = stopped if stopped is not None else (level if p > level else None)
        tails[name] = level if stopped is None else stopped
    return tails
