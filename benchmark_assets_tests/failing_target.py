"""A target that fails every trial, as a user's broken setup would (for the exit-code tests)."""

constants = frozenset({"alpha"})
metrics = ("score",)


def evaluate(scenario, params, seed):
    raise FileNotFoundError("model weights not found at /models/ranker.bin")


evaluate.constants = constants
evaluate.metrics = metrics
