"""A small seeded training run (minibatch SGD on logistic regression) for demonstrating command studies.

The task is fixed: 20 features of very different scales and a fixed true weight vector, with noisy
labels. The seed draws the data sample, the initial weights and the minibatch order, so seeds
differ and one seed always gives the bit-identical run. Prints (or writes to ``--out``)::

    {"final_loss": ..., "final_accuracy": ..., "loss": {"steps": [...], "values": [...]}}

where ``loss`` is the validation log-loss every ``--eval-every`` steps (step 0 included).

    python -m benchmark_assets.examples.train_sgd --seed 1 --lr 0.2 --out metrics.json
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

FEATURES = 20
TRAIN_SIZE = 2000
VALIDATION_SIZE = 2000
TASK_SEED = 20240601  # the task itself (true weights) is the same for every seed
# Badly scaled features make the step size matter: small steps leave the small-scale directions unlearnt.
FEATURE_SCALES = np.geomspace(0.1, 2.0, FEATURES)


def log_loss(weights: np.ndarray, bias: float, x: np.ndarray, y: np.ndarray) -> float:
    margin = x @ weights + bias
    return float(np.mean(np.logaddexp(0.0, -np.where(y > 0, margin, -margin))))


def train(seed: int, *, lr: float, steps: int = 300, batch_size: int = 32, momentum: float = 0.0,
          eval_every: int = 10) -> dict:
    """Train once and return the metrics document (final loss and accuracy, validation loss curve)."""
    true_weights = np.random.default_rng(TASK_SEED).normal(0.0, 1.0, FEATURES) / FEATURE_SCALES
    data_rng, init_rng, order_rng = np.random.default_rng(seed).spawn(3)
    x = data_rng.normal(0.0, 1.0, (TRAIN_SIZE + VALIDATION_SIZE, FEATURES)) * FEATURE_SCALES
    probability = 1.0 / (1.0 + np.exp(-(x @ true_weights) - 0.3))
    y = (data_rng.random(len(x)) < probability).astype(float)
    x_train, y_train = x[:TRAIN_SIZE], y[:TRAIN_SIZE]
    x_val, y_val = x[TRAIN_SIZE:], y[TRAIN_SIZE:]

    weights = init_rng.normal(0.0, 0.5, FEATURES)
    bias = 0.0
    velocity_w, velocity_b = np.zeros(FEATURES), 0.0
    order, cursor = order_rng.permutation(TRAIN_SIZE), 0
    curve_steps, curve_values = [0], [log_loss(weights, bias, x_val, y_val)]
    for step in range(1, steps + 1):
        if cursor + batch_size > TRAIN_SIZE:
            order, cursor = order_rng.permutation(TRAIN_SIZE), 0
        batch = order[cursor : cursor + batch_size]
        cursor += batch_size
        xb, yb = x_train[batch], y_train[batch]
        residual = 1.0 / (1.0 + np.exp(-(xb @ weights + bias))) - yb
        velocity_w = momentum * velocity_w - lr * (xb.T @ residual) / batch_size
        velocity_b = momentum * velocity_b - lr * float(residual.mean())
        weights, bias = weights + velocity_w, bias + velocity_b
        if step % eval_every == 0 or step == steps:
            curve_steps.append(step)
            curve_values.append(log_loss(weights, bias, x_val, y_val))
    accuracy = float(np.mean(((x_val @ weights + bias) > 0) == (y_val > 0)))
    return {
        "final_loss": curve_values[-1],
        "final_accuracy": accuracy,
        "loss": {"steps": curve_steps, "values": curve_values},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--lr", type=float, required=True, help="step size")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--eval-every", type=int, default=10, help="steps between validation-loss points")
    parser.add_argument("--out", help="write the metrics JSON here (default: print it as one line)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.eval_every < 1 or args.lr <= 0:
        parser.error("--steps, --batch-size, --eval-every and --lr must be positive")
    if args.batch_size > TRAIN_SIZE:
        parser.error(f"--batch-size must be at most {TRAIN_SIZE}")
    metrics = train(args.seed, lr=args.lr, steps=args.steps, batch_size=args.batch_size,
                    momentum=args.momentum, eval_every=args.eval_every)
    text = json.dumps(metrics)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
