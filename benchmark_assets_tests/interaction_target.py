"""A test target with known interactions: x and y only help together (synergy), u and v each help
alone but clash together, w changes nothing. Every scenario shifts all scores alike (paired)."""
import numpy as np

constants = frozenset({"x", "y", "u", "v", "w"})
metrics = ("score",)


def evaluate(scenario, params, seed):
    offset = np.random.default_rng(scenario.seed.seed_id).normal(0.0, 0.05)
    noise = np.random.default_rng(seed).normal(0.0, 0.002)
    synergy = 0.1 * params["x"] * params["y"]
    clash = 0.1 * params["u"] + 0.1 * params["v"] - 0.25 * params["u"] * params["v"]
    return {"score": float(1.0 + synergy + clash + offset + noise)}


evaluate.constants = constants
evaluate.metrics = metrics


def evaluate_clash_fails(scenario, params, seed):
    """As ``evaluate``, but u and v together crash the target."""
    if params["u"] == 1 and params["v"] == 1:
        raise RuntimeError("u and v together crash")
    return evaluate(scenario, params, seed)


evaluate_clash_fails.constants = constants
evaluate_clash_fails.metrics = metrics
