"""A small user target for tests: alpha has a better value than today's and a cliff past 0.9,
beta changes nothing, and gamma=99 makes the target crash."""
import numpy as np

constants = frozenset({"alpha", "beta", "gamma"})
metrics = ("score", "cost")


def evaluate(scenario, params, seed):
    if params["gamma"] == 99:
        raise RuntimeError("toy target crashed on purpose")
    rng = np.random.default_rng(seed)
    offset = np.random.default_rng(scenario.seed.seed_id).normal(0.0, 0.05)  # per scenario: paired
    alpha = params["alpha"]
    score = 1.0 - (alpha - 0.7) ** 2 + offset + rng.normal(0.0, 0.002)
    if alpha > 0.9:
        score -= 0.5
    return {"score": float(score), "cost": float(alpha + params["beta"])}


evaluate.constants = constants
evaluate.metrics = metrics
