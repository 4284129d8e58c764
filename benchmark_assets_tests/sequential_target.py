"""A test target with one modest real gain: k=1 scores 0.05 more than k=0, under noise of the same
size that differs between the two values, so a few validation scenarios rarely decide it."""
import numpy as np

constants = frozenset({"k", "idle"})
metrics = ("score",)


def evaluate(scenario, params, seed):
    level = np.random.default_rng(scenario.seed.seed_id).normal(0.0, 0.1)
    noise = np.random.default_rng([seed, round(params["k"] * 1000)]).normal(0.0, 0.035)
    return {"score": float(1.0 + level + 0.05 * params["k"] + noise)}


evaluate.constants = constants
evaluate.metrics = metrics
