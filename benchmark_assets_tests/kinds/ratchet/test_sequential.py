"""Sequential validation: inconclusive verdicts get further rounds of validation scenarios, each
look at its share of the error budget; the rounds are new partitions and show in the report."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark_assets.kinds.ratchet.analysis import decide_ratchet, metric_table, paired_deltas
from benchmark_assets.kinds.ratchet.rules import DecisionRules
from benchmark_assets.kinds.ratchet.trials import run_trials
from benchmark_assets.stats.permutation import SignFlip
from benchmark_assets.stats.sequential import look_levels
from benchmark_assets.studies import load_study
from benchmark_assets_tests.conftest import write_study

# k = 1 gains 0.05 under noise of 0.05 per paired difference: 7 validation scenarios do not decide
# it; 17 do. ``idle`` changes nothing.
SEQUENTIAL_STUDY = """\
kind: ratchet
target: benchmark_assets_tests.sequential_target:evaluate
metric: score
scenarios: {count: 10, train_fraction: 0.3}
constants:
  k: {tier: 1, current: 0, candidates: [0, 1]}
  idle: {tier: 1, current: 0, candidates: [0, 1]}
sequential: {rounds: 2, scenarios_per_round: 10}
decision: {bootstrap_resamples: 200, confidence_level: 0.99}
"""


@pytest.fixture
def sequential_study(study_dir):
    return load_study(write_study(study_dir, "rounds", SEQUENTIAL_STUDY))


def decide(study, trials, rounds=None):
    return decide_ratchet(trials, study.constant_sweeps(), study.rules, metric="score", maximize=True,
                          train_ids=study.split[0], validation_ids=study.split[1],
                          rounds=study.validation_rounds if rounds is None else rounds).set_index("constant")


def test_rounds_continue_the_seed_ids_and_keep_the_split(sequential_study):
    study = sequential_study
    assert study.split == ([0, 1, 2], [3, 4, 5, 6, 7, 8, 9])
    assert study.validation_rounds == [list(range(10, 20)), list(range(20, 30))]
    assert study.seed_keys == [str(i) for i in range(10)]  # a run covers the study's own scenarios
    assert [study.round_of(s) for s in (0, 9, 10, 19, 20, 29)] == [0, 0, 1, 1, 2, 2]
    assert study.split_of(15) == "validation"


def test_an_inconclusive_verdict_waits_for_its_round_then_decides_at_that_looks_level(sequential_study):
    study = sequential_study
    first = run_trials(study, study.sweep_points(), study.scenario_seeds)
    waiting = decide(study, first)
    assert waiting.loc["k", "decision"] == "inconclusive" and waiting.loc["k", "next_round"] == 1
    assert "round 1 adds 10 more" in waiting.loc["k", "reason"]
    assert waiting.loc["idle", "decision"] == "no_sensitivity" and waiting.loc["idle", "next_round"] == 0
    levels = look_levels([7, 17, 27], 27, 0.01, "obrien_fleming")  # the default spending
    assert waiting.loc["k", "look_alpha"] == pytest.approx(levels[0])
    # Without rounds the same data is judged once at the full level: rejected, not waiting.
    once = decide(study, first, rounds=[])
    assert once.loc["k", "decision"] == "reject" and once.loc["k", "next_round"] == 0

    round_one = [s for s in study.all_scenario_seeds if s.seed_id in study.validation_rounds[0]]
    more = run_trials(study, [study.point_for("current"), study.point_for("k=1")], round_one)
    decided = decide(study, pd.concat([first, more], ignore_index=True))
    k = decided.loc["k"]
    assert k["decision"] == "accept" and k["look"] == 1 and k["n_validation"] == 17 and k["next_round"] == 0
    assert k["look_alpha"] == pytest.approx(levels[1])
    table = metric_table(pd.concat([first, more]), "score")
    deltas = paired_deltas(table, "k=1", "current", study.split[1] + study.validation_rounds[0], 1.0)
    assert k["p_value"] == pytest.approx(SignFlip(deltas, rng=[0, 1]).p_value(0.0, alternative="greater"))
    # Holm over the family at look 1: only k cleared the screen on train (idle proposes no
    # change), so k's adjusted p is its own.
    assert decided["tested"].to_dict() == {"k": True, "idle": False}
    assert k["p_adjusted"] == pytest.approx(k["p_value"])
    assert k["corrected_ci_low"] > 0


def test_the_budget_spent_leaves_a_reject_that_says_so():
    from benchmark_assets.kinds.ratchet.simulate import simulate_study

    rules = DecisionRules(improvement_threshold=0.0, sensitivity_threshold=0.0)
    for seed in range(40):  # a small effect: some study stays inconclusive through both rounds
        verdicts = simulate_study(np.random.default_rng(seed), {0: {0.4: 0.4}}, rules=rules, constants=3, rounds=2)
        found = verdicts.set_index("constant").loc["c00"]
        if found["decision"] == "reject" and found["look"] == 2:
            assert "budget spent" in found["reason"] and found["n_validation"] == 45
            return
    pytest.fail("no study used its whole budget")


@pytest.mark.calibration
def test_repeated_looks_keep_the_family_wise_error_rate_in_simulated_null_studies():
    """The cheap CI version of benchmarks/ratchet_error_rates.py row 5's null case."""
    from benchmark_assets.kinds.ratchet.simulate import simulate_study

    rules = DecisionRules(improvement_threshold=0.0, sensitivity_threshold=0.0)
    rng = np.random.default_rng(17)
    studies = 60  # about 0.3 s each; the benchmark runs 300 studies of 20 constants
    verdicts = [simulate_study(rng, rules=rules, constants=5, rounds=2) for _ in range(studies)]
    any_accept = sum(bool((v["decision"] == "accept").any()) for v in verdicts)
    assert stats.binomtest(any_accept, studies, 0.05, alternative="greater").pvalue > 0.01, any_accept
    assert any((v["look"] > 0).any() for v in verdicts)  # rounds were taken, not skipped


def test_rounds_are_new_partitions_run_as_follow_ups_and_the_report_shows_the_looks(instance, sequential_study):
    from benchmark_assets.artifacts import latest_dir
    from benchmark_assets.defs.runner import run_study
    from benchmark_assets.ledger import LEDGER_TABLE
    from benchmark_assets.warehouse import Warehouse

    outcome = run_study("rounds", quiet=True, instance=instance)
    study = sequential_study
    assert [str(k) for k in instance.get_dynamic_partitions("rounds__seed_ids")] == [str(i) for i in range(20)]
    warehouse = Warehouse()
    catalog = warehouse.read("rounds__scenario_catalog").set_index("seed_id")
    assert catalog.loc[15, "round"] == 1 and catalog.loc[15, "split"] == "validation" and catalog.loc[5, "round"] == 0
    trials = warehouse.read("rounds__trials")
    extra = trials[trials["seed_id"] >= 10]
    assert set(extra["sweep_point"]) == {"current", "k=1"} and set(extra["seed_id"]) == set(range(10, 20))
    assert outcome.measured == len(study.sweep_points()) * 10 + 2 * 10
    verdicts = warehouse.read("rounds__verdicts").set_index("constant")
    assert verdicts.loc["k", "decision"] == "accept" and verdicts.loc["k", "look"] == 1
    ledger = warehouse.read(LEDGER_TABLE)
    # Settled verdicts go to the ledger once; the look on the way is in the report and the details.
    assert ledger.loc[ledger["subject"] == "k", "decision"].tolist() == ["accept"]
    assert ledger.loc[ledger["subject"] == "idle", "decision"].tolist() == ["no_sensitivity"]
    assert '"look": 1' in ledger.loc[ledger["subject"] == "k", "details"].iloc[0]
    report = (latest_dir("rounds") / "report.md").read_text()
    assert "## Sequential validation" in report and "| 1 | 17 | 0.0012 | k (accept) |" in report  # O'Brien-Fleming
    assert "| 2 | 27 | 0.0088 (not taken) | - |" in report


def test_round_trials_of_an_older_scenario_set_are_measured_again(instance, sequential_study, study_dir):
    """Round trials are not re-measured by every run like the study's own points; stored ones of
    another target version or scenario set must not be reused for a look."""
    from benchmark_assets.defs.runner import run_study
    from benchmark_assets.warehouse import Warehouse

    run_study("rounds", quiet=True, instance=instance)
    path = study_dir / "rounds.yaml"
    path.write_text(path.read_text().replace("train_fraction: 0.3}", "train_fraction: 0.3, base_seed: 7}"))
    run_study("rounds", quiet=True, instance=instance)
    study = load_study(path)
    trials = Warehouse().read("rounds__trials")
    rounds = trials[trials["seed_id"] >= 10]
    expected = {key: study.point_fingerprint(study.point_for(key)) for key in rounds["sweep_point"].unique()}
    assert len(rounds) and (rounds["fingerprint"] == rounds["sweep_point"].map(expected)).all()


def test_a_look_is_tested_at_its_share_of_the_budget_not_at_the_full_level():
    """Find simulated studies whose constant reaches a later look with a p-value between that
    look's level and the full 5 %: spending must keep them from being accepted."""
    from benchmark_assets.kinds.ratchet.simulate import simulate_study

    rules = DecisionRules(improvement_threshold=0.0, sensitivity_threshold=0.0)
    levels = look_levels([15, 30, 45], 45, 0.05, "pocock")
    found = 0
    for seed in range(200):
        verdicts = simulate_study(np.random.default_rng(seed), {0: {0.4: 0.5}}, rules=rules, constants=1, rounds=2,
                                  spending="pocock")
        row = verdicts.iloc[0]
        if row["look"] > 0:
            assert row["look_alpha"] == pytest.approx(levels[int(row["look"])])
            assert (row["decision"] == "accept") == (row["p_adjusted"] <= row["look_alpha"] and
                                                       row["corrected_ci_low"] > 0)
            if levels[int(row["look"])] < row["p_adjusted"] <= 0.05:
                assert row["decision"] != "accept"
                found += 1
        if found >= 3:
            return
    pytest.fail(f"only {found} studies had a later look's p between its level and 5 %")


def test_a_gain_below_the_threshold_whose_interval_reaches_above_it_gets_a_round():
    """Only a futile change (its interval wholly at or below the improvement threshold) is rejected
    before the last look; one whose point estimate falls short but whose interval reaches above it
    is looked at again, which is what lets rounds find small real gains."""
    from benchmark_assets.kinds.ratchet.simulate import TRAIN, VALIDATION, simulate_trials

    rules = DecisionRules()
    found = 0
    for seed in range(60):
        trials, sweeps = simulate_trials(np.random.default_rng(seed), {0: {0.4: 0.5}}, constants=3,
                                         scenarios=TRAIN + 3 * VALIDATION)
        common = {"metric": "m", "maximize": True, "train_ids": list(range(TRAIN)),
                      "validation_ids": list(range(TRAIN, TRAIN + VALIDATION))}
        once = decide_ratchet(trials, sweeps, rules, **common).set_index("constant").loc["c00"]
        if not (once["tested"] and once["validation_delta"] <= rules.improvement_threshold < once["ci_high"]):
            continue
        found += 1
        assert once["decision"] == "reject" and "does not exceed the improvement threshold" in once["reason"]
        rounds = [list(range(TRAIN + VALIDATION * r, TRAIN + VALIDATION * (r + 1))) for r in (1, 2)]
        again = decide_ratchet(trials, sweeps, rules, rounds=rounds, **common).set_index("constant").loc["c00"]
        assert again["look"] >= 1, again["reason"]
    assert found >= 3, found
