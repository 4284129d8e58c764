"""The train_sgd example: deterministic per seed, different across seeds, learns, and its demo arms differ."""
import json
import subprocess
import sys

import numpy as np

from benchmark_assets.examples.train_sgd import train
from benchmark_assets.targets.command import CommandSpec, run_command_trial

COMMAND = CommandSpec(("{python}", "-m", "benchmark_assets.examples.train_sgd", "--seed", "{seed}",
                       "--lr", "{lr}", "--out", "{output}"), timeout_seconds=60)


def last_quarter_auc(steps: np.ndarray, values: np.ndarray) -> float:
    """Mean height of the curve over the last 25 % of training (trapezoid area / width)."""
    keep = steps >= steps[-1] - 0.25 * (steps[-1] - steps[0])
    steps, values = steps[keep], values[keep]
    return float(np.sum(np.diff(steps) * (values[1:] + values[:-1]) / 2) / (steps[-1] - steps[0]))


def test_one_seed_gives_the_bit_identical_run_across_processes():
    argv = [sys.executable, "-m", "benchmark_assets.examples.train_sgd", "--seed", "1072", "--lr", "0.2"]
    first, second = (subprocess.run(argv, capture_output=True, text=True, check=True).stdout for _ in range(2))
    assert first == second
    assert json.loads(first) == train(1072, lr=0.2)


def test_different_seeds_give_different_curves():
    a, b = train(1072, lr=0.05), train(2043, lr=0.05)
    assert a["loss"]["steps"] == b["loss"]["steps"]
    assert a["loss"]["values"][0] != b["loss"]["values"][0]  # initialisation and data differ
    assert a["final_loss"] != b["final_loss"]


def test_the_validation_loss_falls_and_the_model_learns():
    metrics = train(3011, lr=0.2)
    loss = metrics["loss"]
    assert loss["steps"][:3] == [0, 10, 20] and loss["steps"][-1] == 300 and len(loss["steps"]) == 31
    assert loss["values"][-1] < 0.6 * loss["values"][0]
    assert metrics["final_loss"] == loss["values"][-1]
    assert 0.75 < metrics["final_accuracy"] <= 1.0


def test_output_runs_through_the_command_target_as_a_curve():
    trial = run_command_trial(COMMAND, seed=4099, params={"lr": 0.05})
    assert trial.status == "ok", trial.error
    assert set(trial.scalars) == {"final_loss", "final_accuracy"} and set(trial.curves) == {"loss"}
    assert trial.duration_seconds > 0


def test_the_larger_step_size_lowers_the_late_loss_on_every_paired_seed():
    differences = []
    for seed in (1072, 2043, 3011, 4099):
        control, candidate = (run_command_trial(COMMAND, seed=seed, params={"lr": lr}) for lr in (0.05, 0.2))
        late = [last_quarter_auc(t.curves["loss"].steps, t.curves["loss"].values) for t in (control, candidate)]
        differences.append(late[1] - late[0])
    assert all(d < 0 for d in differences), differences
    assert np.mean(differences) < -0.05
