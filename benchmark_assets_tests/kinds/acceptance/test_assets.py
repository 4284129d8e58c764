"""The acceptance suite materialised on a real Dagster instance: real callables measured in
process, real commands with their memory sampled, verdicts checked against scipy."""
import math

import numpy as np
import pytest
from dagster import AssetKey, DagsterEventType
from scipy import stats

from benchmark_assets.artifacts import latest_dir
from benchmark_assets.defs.runner import run_study
from benchmark_assets.ledger import LEDGER_TABLE
from benchmark_assets.studies import load_study
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.conftest import write_study
from benchmark_assets_tests.holm import holm_tails

SIDES = "benchmark_assets_tests.acceptance_sides"
SUITE = f"""\
kind: acceptance
description: toy suite for tests
repeats: 6
base_seed: 100
benchmarks:
  model:
    baseline: {{call: "{SIDES}:baseline"}}
    optimised: {{call: "{SIDES}:optimised"}}
    metrics: [score]
    criteria:
      - {{name: score kept, measure: score, max_loss: 0.10}}         # true ratio 0.95: met
      - {{name: score unchanged, measure: score, equivalent_within: 0.01}}  # 5 % lower: not met
      - {{name: score near 0.95, measure: score, above: 0.949}}      # mean 0.95, sd 0.002: inconclusive
      - {{measure: peak_memory, reduction: [0.70, 0.80]}}            # 4 MiB -> 1 MiB: met
  broken:
    baseline: {{call: "{SIDES}:baseline"}}
    optimised: {{call: "{SIDES}:crashes"}}
    metrics: [score]
    criteria:
      - {{name: broken score, measure: score, max_loss: 0.10}}
"""


@pytest.fixture
def suite(study_dir):
    return load_study(write_study(study_dir, "suite", SUITE))


def test_suite_runs_end_to_end_judges_each_criterion_and_keeps_a_crashing_side_as_data(
        instance, suite, tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("ACCEPTANCE_CALL_LOG", str(log))
    outcome = run_study("suite", quiet=True, instance=instance)
    assert outcome.measured == 2 * 6 * 2
    assert len(instance.get_materialized_partitions(AssetKey(["suite", "trials"]))) == 12
    for run_id in (stage.run_id for stage in outcome.stages):
        checks = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        assert checks and all(e.dagster_event.event_specific_data.passed for e in checks)

    # Sides alternate A B, B A, ... on the repeat's seed: each side's warm-up call, its timed call
    # and its traced call (memory is asked for) back to back.
    # The broken benchmark's optimised side raises in its warm-up call, so it is called once.
    calls = log.read_text().split("\n")[:-1]
    order = [("baseline", "optimised"), ("optimised", "baseline")]
    model = [f"{side} {100 + r}" for r in range(6) for side in order[r % 2] for _ in range(3)]
    broken = [f"{side} {100 + r}" for r in range(6)
              for side in (("baseline", "crashes"), ("crashes", "baseline"))[r % 2]
              for _ in range(2 if side == "baseline" else 1)]
    assert calls == model + broken

    warehouse = Warehouse()
    trials = warehouse.read("suite__trials")
    model_rows = trials[trials["benchmark"] == "model"].set_index(["repeat", "side"])
    assert [model_rows.loc[(r, "baseline"), "position"] for r in range(6)] == [0, 1, 0, 1, 0, 1]
    assert (model_rows["trial_seed"].groupby(level="repeat").nunique() == 1).all()
    # tracemalloc saw each side's array (4 MiB and 1 MiB) and little else.
    assert model_rows.xs("baseline", level="side")["peak_memory"].between(4 * 2**20, 4.1 * 2**20).all()
    assert model_rows.xs("optimised", level="side")["peak_memory"].between(2**20, 1.1 * 2**20).all()
    broken = trials[(trials["benchmark"] == "broken") & (trials["side"] == "optimised")]
    assert (broken["status"] == "failed").all()
    assert broken["error"].str.contains("RuntimeError: optimised side exploded on seed 10").all()
    assert broken["error"].str.contains("acceptance_sides.py").all()  # where in the user's code

    verdicts = warehouse.read("suite__verdicts").set_index("subject")
    assert verdicts.loc["model: score kept", "verdict"] == "met"
    assert verdicts.loc["model: score unchanged", "verdict"] == "not_met"
    assert verdicts.loc["model: score near 0.95", "verdict"] == "inconclusive"
    assert verdicts.loc["model: score near 0.95", "repeats_needed"] > 6
    assert verdicts.loc["model: peak_memory reduction 70-80 %", "verdict"] == "met"
    crashed = verdicts.loc["broken: broken score"]
    assert crashed["verdict"] == "inconclusive" and crashed["p_adjusted"] == 1.0
    assert "only 0 repeats where both sides succeeded" in crashed["reason"]
    assert "RuntimeError: optimised side exploded" in crashed["reason"]

    # The interval is scipy's t-interval on the log of the paired ratios, at its Holm level.
    ok = trials[(trials["benchmark"] == "model") & (trials["status"] == "ok")]
    table = ok.pivot(index="repeat", columns="side", values="score")
    logs = np.log(table["optimised"] / table["baseline"])
    kept = verdicts.loc["model: score kept"]
    tail = (1 - kept["confidence_level"]) / 2
    low, high = stats.t.interval(1 - 2 * tail, len(logs) - 1, loc=logs.mean(), scale=stats.sem(logs))
    assert kept["ci_low"] == pytest.approx(math.exp(low)) and kept["ci_high"] == pytest.approx(math.exp(high))
    # Uncorrected, each boundary is a one-sided test at 5 %: the 90 % interval (as in TOST).
    raw_low, raw_high = stats.t.interval(0.90, len(logs) - 1, loc=logs.mean(), scale=stats.sem(logs))
    assert kept["raw_ci_low"] == pytest.approx(math.exp(raw_low))
    assert kept["raw_ci_high"] == pytest.approx(math.exp(raw_high)) and kept["raw_confidence_level"] == pytest.approx(0.90)

    # Five criteria decided together: Holm across all of them, the broken one included (p = 1),
    # each interval at its rank's level until the step-down stops, worked out here independently.
    assert (verdicts["p_adjusted"] >= verdicts["p_value"]).all()
    tails = holm_tails(verdicts["p_value"])
    assert verdicts["confidence_level"].to_dict() == pytest.approx({s: 1 - 2 * t for s, t in tails.items()})

    report = (latest_dir("suite") / "report.md").read_text()
    assert "**2 of 5 criteria met, 2 inconclusive, 1 not met**" in report
    assert "optimised side exploded" in report and "![model](plots/model.png)" in report
    assert (latest_dir("suite") / "plots" / "model.png").stat().st_size > 10_000

    ledger = warehouse.read(LEDGER_TABLE)
    rows = ledger[ledger["study"] == "suite"].set_index("subject")
    assert len(rows) == 5 and rows.loc["model: score kept", "decision"] == "met"
    assert rows.loc["model: score kept", "adjusted_ci_low"] == pytest.approx(kept["ci_low"])
    assert rows.loc["model: score kept", "ci_low"] == pytest.approx(kept["raw_ci_low"])
    assert rows.loc["model: score kept", "confidence_level"] == pytest.approx(0.90)


def test_cli_gates_on_not_met_and_on_inconclusive(dagster_home, study_dir, tmp_path, cli):
    gated = SUITE.split("  broken:")[0].replace("repeats: 6", "repeats: 4")
    write_study(study_dir, "gated", gated)

    def run(*args):
        return cli("run", "gated", "--quiet", *args, cwd=tmp_path)

    not_met = run("--fail-on", "not_met")
    assert not_met.returncode == 4
    assert "--fail-on not_met: 1 criteria not met: model: score unchanged (not_met)" in not_met.stderr
    assert "# Acceptance suite: gated" in not_met.stdout  # the report is printed either way

    passing = gated.replace("      - {name: score unchanged, measure: score, equivalent_within: 0.01}  # 5 % lower: "
                            "not met\n", "")
    write_study(study_dir, "gated", passing)
    passed = run("--fail-on", "not_met")  # an inconclusive criterion is left: not_met lets it through
    assert passed.returncode == 0, passed.stderr
    assert "1 inconclusive, 0 not met" in passed.stdout and "--fail-on not_met: passed" in passed.stdout
    strict = run("--fail-on", "inconclusive")
    assert strict.returncode == 4 and "model: score near 0.95 (inconclusive)" in strict.stderr


def test_fail_on_is_refused_for_a_kind_without_verdicts(dagster_home, study_dir, tmp_path, cli):
    done = cli("run", "toy", "--fail-on", "not_met", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().endswith("--fail-on: a ratchet study has no verdicts to gate on. Fix: drop --fail-on")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_command_side_reports_its_process_trees_peak_memory(instance, study_dir):
    # The baseline holds 60 MiB while a child it starts holds 80 MiB: the tree's peak is their sum.
    command = '["{python}", "-m", "benchmark_assets_tests.memory_command", "--seconds", "0.5"'
    write_study(study_dir, "cmd", f"""\
kind: acceptance
repeats: 2
benchmarks:
  tree:
    baseline: {{command: {command}, "--hold", "60", "--child", "80"]}}
    optimised: {{command: {command}]}}
    metrics: [items]
    warmup: 0
    criteria:
      - {{measure: peak_memory, reduction: [0.5, 0.99]}}
      - {{measure: items, difference: [-0.5, 0.5]}}
""")
    run_study("cmd", quiet=True, instance=instance)
    trials = Warehouse().read("cmd__trials").set_index("side")
    assert (trials["status"] == "ok").all(), trials["error"].tolist()
    assert (trials.loc["baseline", "peak_memory"] >= 140 * 2**20).all()
    assert (trials.loc["optimised", "peak_memory"] < 60 * 2**20).all()
    assert (trials["items"] == 3).all()
    verdicts = Warehouse().read("cmd__verdicts").set_index("measure")
    assert verdicts.loc["peak_memory", "verdict"] == "met"
