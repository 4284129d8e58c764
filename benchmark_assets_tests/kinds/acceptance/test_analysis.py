"""Measuring and judging a suite without Dagster: failures become reasons, never lost criteria."""
import pytest

from benchmark_assets.kinds.acceptance.analysis import gate, headline, judge_suite
from benchmark_assets.kinds.acceptance.trials import run_acceptance_trials
from benchmark_assets.studies import load_study
from benchmark_assets_tests.conftest import write_study

SIDES = "benchmark_assets_tests.acceptance_sides"


def suite(study_dir, optimised: str, criteria: str, repeats: int = 6):
    return load_study(write_study(study_dir, "s", f"""\
kind: acceptance
repeats: {repeats}
base_seed: 30
benchmarks:
  b:
    baseline: {{call: "{SIDES}:baseline"}}
    optimised: {{call: "{SIDES}:{optimised}"}}
    metrics: [score]
    warmup: 0
    criteria:
{criteria}
"""))


def measured(study):
    return run_acceptance_trials(study, [("b", r) for r in range(study.spec.repeats)])


def test_a_side_that_does_not_return_a_named_metric_fails_and_its_criteria_say_so(study_dir):
    study = suite(study_dir, "forgets_score", "      - {measure: score, max_loss: 0.1}")
    trials = measured(study)
    failed = trials[trials["side"] == "optimised"]
    assert (failed["status"] == "failed").all()
    assert failed["error"].str.contains("the optimised side returned no metric 'score' \\(it returned: checksum\\)")\
        .all()
    verdict = judge_suite(study, trials).iloc[0]
    assert verdict["verdict"] == "inconclusive" and verdict["n_pairs"] == 0
    assert "only 0 repeats where both sides succeeded" in verdict["reason"]
    assert "returned no metric 'score'" in verdict["reason"]


def test_repeats_where_a_side_failed_are_left_out_and_named(study_dir):
    study = suite(study_dir, "flaky", "      - {measure: score, max_loss: 0.1}", repeats=9)
    trials = measured(study)
    assert (trials["status"] == "failed").sum() == 3  # seeds 30, 33, 36
    verdict = judge_suite(study, trials).iloc[0]
    assert verdict["n_pairs"] == 6 and verdict["n_failed"] == 3 and verdict["verdict"] == "met"
    assert "the optimised side failed in 3 of 9 repeats (first error: ValueError: flaky on seed 30" in verdict["reason"]


def test_a_ratio_of_a_measure_that_reaches_zero_cannot_be_judged_and_says_what_to_use(study_dir):
    study = suite(study_dir, "zero_score", "      - {measure: score, max_loss: 0.1}\n"
                                           "      - {measure: score, difference: [-2, -0.5]}")
    verdicts = judge_suite(study, measured(study)).set_index("asked")
    ratio = verdicts.loc["loss < 10 %"]
    assert ratio["verdict"] == "inconclusive"
    assert "a ratio needs positive values, but the optimised side measured 0 for score" in ratio["reason"]
    assert verdicts.loc["difference in [-2, -0.5]", "verdict"] == "met"  # the difference is about -1


def test_nothing_measured_yet_is_inconclusive_not_an_error(study_dir):
    study = suite(study_dir, "optimised", "      - {measure: score, max_loss: 0.1}")
    verdicts = judge_suite(study, measured(study).iloc[0:0])
    assert verdicts["verdict"].tolist() == ["inconclusive"]
    assert headline(verdicts) == "0 of 1 criteria met, 1 inconclusive, 0 not met"


def test_the_gate_fails_on_what_it_is_asked_to(study_dir):
    study = suite(study_dir, "optimised", "      - {name: kept, measure: score, max_loss: 0.1}\n"
                                          "      - {name: same, measure: score, equivalent_within: 0.01}")
    verdicts = judge_suite(study, measured(study))
    assert verdicts["verdict"].tolist() == ["met", "not_met"]
    assert gate(verdicts, "not_met") == "1 criteria not met: b: same (not_met)"
    assert gate(verdicts[verdicts["verdict"] == "met"], "inconclusive") == ""
    with pytest.raises(ValueError, match="--fail-on 'sometimes' unknown"):
        gate(verdicts, "sometimes")


def test_a_side_that_never_ran_fails_every_gate(study_dir):
    """A suite whose optimised side crashes on every repeat must not pass `--fail-on not_met` as
    'nothing not met'."""
    study = suite(study_dir, "crashes", "      - {name: kept, measure: score, max_loss: 0.1}")
    verdicts = judge_suite(study, measured(study))
    assert verdicts["verdict"].tolist() == ["inconclusive"] and not verdicts["sides_ran"].iloc[0]
    why = gate(verdicts, "not_met")
    assert why.startswith("1 criteria have a side that never ran: b: kept (only 0 repeats where both sides succeeded")
    assert "optimised side exploded" in why
    assert gate(verdicts, "inconclusive").startswith("1 criteria have a side that never ran")


def test_a_bootstrap_suite_reports_the_ratio_of_means_and_its_bootstrap_interval(study_dir):
    text = write_study(study_dir, "s", f"""\
kind: acceptance
repeats: 8
interval: bootstrap
bootstrap_resamples: 2000
benchmarks:
  b:
    baseline: {{call: "{SIDES}:baseline"}}
    optimised: {{call: "{SIDES}:optimised"}}
    metrics: [score]
    warmup: 0
    criteria:
      - {{measure: score, max_loss: 0.1}}
""")
    study = load_study(text)
    trials = measured(study)
    verdict = judge_suite(study, trials).iloc[0]
    table = trials.pivot(index="repeat", columns="side", values="score")
    assert verdict["estimate"] == pytest.approx(table["optimised"].mean() / table["baseline"].mean())
    assert verdict["verdict"] == "met" and verdict["ci_low"] < verdict["estimate"] < verdict["ci_high"]
    assert verdict["ci_low"] >= 0.9


def test_a_command_too_short_to_sample_fails_its_memory_measurement_instead_of_reporting_zero(study_dir, monkeypatch):
    # Whether a real `echo` ends before the first sample depends on the machine's load (it did not,
    # once, beside a CI run): every sample here finds the process already gone, as it is for a
    # command that ends first.
    import benchmark_assets.targets.command as command

    monkeypatch.setattr(command, "group_memory_bytes", lambda pid: (0, 0))
    study = load_study(write_study(study_dir, "quick", """\
kind: acceptance
repeats: 2
benchmarks:
  quick:
    baseline: {command: ["echo", '{{"items": 1}}']}
    optimised: {command: ["echo", '{{"items": 1}}']}
    warmup: 0
    criteria:
      - {measure: peak_memory, below: 1000000}
"""))
    trials = run_acceptance_trials(study, [("quick", 0)])
    assert (trials["status"] == "failed").all()
    assert trials["error"].str.contains("before its memory could be sampled \\(every 10 ms\\)").all()
    verdict = judge_suite(study, trials).iloc[0]
    assert verdict["verdict"] == "inconclusive" and "before its memory could be sampled" in verdict["reason"]
