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


def evaluate_steps(scenario, params, seed):
    """An integer constant k in 1..4 (best at 3) and a constant that changes nothing: a search
    over so few points asks for the same one again and again."""
    level = np.random.default_rng(scenario.seed.seed_id).normal(0.0, 0.05)
    return {"score": float(1.0 - 0.05 * (params["k"] - 3) ** 2 + level), "cost": float(params["k"])}


evaluate_steps.constants = frozenset({"k", "flat"})
evaluate_steps.metrics = metrics
evaluate_steps.integer_constants = frozenset({"k"})


def evaluate_flat(scenario, params, seed):
    """Nothing the constants do changes the score; a = 1 crashes the target."""
    if params["a"] >= 0.999:
        raise RuntimeError("a = 1 crashes")
    return {"score": 0.5 + np.random.default_rng(scenario.seed.seed_id).normal(0.0, 0.05), "cost": 1.0}


evaluate_flat.constants = constants
evaluate_flat.metrics = metrics


def evaluate_crash(scenario, params, seed):
    """Every setting but today's crashes."""
    if params["a"] != 0.2:
        raise RuntimeError("only today's values work")
    return evaluate(scenario, params, seed)


evaluate_crash.constants = constants
evaluate_crash.metrics = metrics


def evaluate_no_cost(scenario, params, seed):
    """Declares a cost but never returns it: a search objective no trial reports."""
    result = evaluate(scenario, params, seed)
    del result["cost"]
    return result


evaluate_no_cost.constants = constants
evaluate_no_cost.metrics = metrics
