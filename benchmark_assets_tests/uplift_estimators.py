"""Estimators a user might write, for the estimator benchmark's tests: one that works, one that
raises, one that returns the wrong shape, one that gives an average effect only."""
import numpy as np


def linear_t_learner(X, treatment, outcome, *, seed, ridge=1.0):
    """Two ridge regressions (one per arm), in numpy: effects are the difference of their predictions."""
    design = np.column_stack([np.ones(len(X)), X])
    fits = []
    for arm in (0, 1):
        rows = design[treatment == arm]
        target = outcome[treatment == arm]
        fits.append(np.linalg.solve(rows.T @ rows + ridge * np.eye(design.shape[1]), rows.T @ target))
    return design @ fits[1] - design @ fits[0]


def raises(X, treatment, outcome, *, seed):
    raise RuntimeError(f"this estimator does not converge on seed {seed}")


def wrong_shape(X, treatment, outcome, *, seed):
    return np.zeros((len(X), 1))


def ate_only(X, treatment, outcome, *, seed):
    return {"ate": float(outcome[treatment == 1].mean() - outcome[treatment == 0].mean())}
