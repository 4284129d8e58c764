"""A test target for the search: a smooth score of two continuous constants with its peak at
a = 0.6, b = 2 (today: a = 0.2, b = 1), a cost that grows with both, and c that changes nothing."""
import numpy as np

constants = frozenset({"a", "b", "c"})
metrics = ("score", "cost")


def evaluate(scenario, params, seed):
    level = np.random.default_rng(scenario.seed.seed_id).normal(0.0, 0.05)
    noise = np.random.default_rng([seed, int(params["a"] * 1e4), int(params["b"] * 1e4)]).normal(0.0, 0.005)
    a, b = params["a"], params["b"]
    score = 1.0 - (a - 0.6) ** 2 - 0.1 * np.log2(b / 2.0) ** 2 + level + noise
    return {"score": float(score), "cost": float(a + b)}


evaluate.constants = constants
evaluate.metrics = metrics
