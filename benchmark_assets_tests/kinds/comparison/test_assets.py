"""The comparison study materialised on a real Dagster instance, with real subprocess trials."""
import json

import pandas as pd
import pytest
from dagster import AssetKey, DagsterEventType

from benchmark_assets.artifacts import latest_dir
from benchmark_assets.defs.runner import run_study, trials_to_run
from benchmark_assets.graph import StudyGraph
from benchmark_assets.ledger import LEDGER_TABLE
from benchmark_assets.studies import StudyError, load_study
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.conftest import planned_rerun, write_study

STUDY = """\
kind: comparison
description: toy comparison for tests
target:
  command: ["{python}", "-m", "benchmark_assets_tests.toy_command", "--seed", "{seed}", "--shift", "{shift}",
            "--crash-seed", "{crash_seed}", "--out", "{output}"]
  timeout_seconds: 60
  parallel: 2
arms:
  control:   {shift: 0.0, crash_seed: -1}
  candidate: {shift: -0.05, crash_seed: 13}
seeds: [11, 12, 13, 14, 15, 16]
metric: loss
summary: {type: auc, window: 0.25}
direction: minimize
decision: {bootstrap_resamples: 2000, target_effect: 0.02, method: bca}
"""


@pytest.fixture
def comparison_study(study_dir):
    return load_study(write_study(study_dir, "cmp", STUDY))


def materialisations_by_partition(instance, key: AssetKey) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in instance.fetch_materializations(key, limit=10_000).records:
        counts[record.partition_key] = counts.get(record.partition_key, 0) + 1
    return counts


def test_comparison_runs_end_to_end_with_a_failed_trial_kept_as_data(instance, comparison_study):
    outcome = run_study("cmp", quiet=True, instance=instance)
    assert outcome.measured == 12
    key = lambda name: AssetKey(["cmp", name])  # noqa: E731
    assert len(instance.get_materialized_partitions(key("trials"))) == 12
    for run_id in (stage.run_id for stage in outcome.stages):
        checks = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        assert all(e.dagster_event.event_specific_data.passed for e in checks)

    warehouse = Warehouse()
    trials = warehouse.read("cmp__trials").set_index(["arm", "seed"])
    crashed = trials.loc[("candidate", 13)]
    assert crashed["status"] == "failed" and crashed["exit_code"] == 3 and "boom" in crashed["stderr_tail"]
    assert "exit" in crashed["error"] and "3" in crashed["error"]
    assert (trials.drop(index=("candidate", 13))["status"] == "ok").all()
    command = json.loads(trials.loc[("control", 11), "command"])
    assert command[-6:-4] == ["--shift", "0"] and command[3:5] == ["--seed", "11"]

    comparison = warehouse.read("cmp__comparison").set_index("metric")
    decided = comparison.loc["loss_auc_last25pct"]
    assert decided["verdict"] == "candidate_better" and decided["n_pairs"] == 5  # seed 13 has no pair
    assert decided["effect"] == pytest.approx(-0.05, abs=0.005)
    assert decided["ci_low"] < -0.05 < decided["ci_high"] < 0
    assert comparison.loc["final_loss", "verdict"] == "lower"

    variance = warehouse.read("cmp__variance_analysis")
    assert set(variance["arm"]) == {"control", "candidate"} and variance["n"].max() == 6

    folder = latest_dir("cmp")
    report = (folder / "report.md").read_text()
    assert "**Candidate is better**" in report and "## Failed trials" in report and "| candidate | 13 |" in report
    for name in ("comparison.png", "variance.png"):
        assert (folder / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.read_csv(folder / "comparison.csv")["metric"].iloc[0] == "loss_auc_last25pct"

    ledger = warehouse.read(LEDGER_TABLE)
    row = ledger[ledger["study"] == "cmp"].iloc[-1]
    assert row["decision"] == "candidate_better" and row["subject"] == "crash_seed,shift"
    assert json.loads(row["proposal"]) == {"crash_seed": 13, "shift": -0.05}
    assert json.loads(row["baseline"]) == {"crash_seed": -1, "shift": 0.0} and row["kind"] == "comparison"
    assert row["ci_low"] == pytest.approx(decided["ci_low"]) and row["effect"] == pytest.approx(decided["effect"])


def test_adding_seeds_runs_only_the_new_trials_and_the_failed_one(instance, study_dir, comparison_study):
    run_study("cmp", quiet=True, instance=instance)
    path = study_dir / "cmp.yaml"
    path.write_text(path.read_text().replace("seeds: [11, 12, 13, 14, 15, 16]", "seeds: [11, 12, 13, 14, 15, 16, 17, 18]"))
    study = load_study(path)
    assert trials_to_run(StudyGraph.of(study)) == {"control": ["17", "18"], "candidate": ["13", "17", "18"]}
    outcome = run_study("cmp", quiet=True, instance=instance)
    assert outcome.measured == 5
    counts = materialisations_by_partition(instance, AssetKey(["cmp", "trials"]))
    assert counts["control|11"] == 1 and counts["candidate|13"] == 2 and counts["candidate|17"] == 1
    assert len(counts) == 16
    assert Warehouse().read("cmp__comparison").set_index("metric").loc["loss_auc_last25pct", "n_pairs"] == 7

    # A changed candidate reruns the candidate's trials only; a rerun with nothing changed runs none.
    path.write_text(path.read_text().replace("shift: -0.05", "shift: -0.04"))
    assert run_study("cmp", quiet=True, instance=instance).measured == 8
    assert run_study("cmp", quiet=True, instance=instance).measured == 1  # the crashing seed is retried
    assert materialisations_by_partition(instance, AssetKey(["cmp", "trials"]))["control|11"] == 1


def test_unpaired_design_gives_the_candidate_independent_seeds(instance, study_dir):
    study = load_study(write_study(study_dir, "unpaired", STUDY.replace("metric: loss", "design: unpaired\nmetric: loss")))
    assert study.trial_seed("control", 11) == 11 and study.trial_seed("candidate", 11) != 11
    run_study("unpaired", quiet=True, instance=instance)
    comparison = Warehouse().read("unpaired__comparison").set_index("metric")
    decided = comparison.loc["loss_auc_last25pct"]
    assert decided["design"] == "unpaired" and decided["test"] == "Welch t-test"
    # The candidate ran derived seeds, so the seed that crashes the control-seeded run never came up.
    assert decided["n_control"] == 6 and decided["n_candidate"] == 6


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (("seeds: [11, 12, 13, 14, 15, 16]", "seeds: [11, 12, 11]"), "seeds", "duplicate seeds [11]"),
        (("seeds: [11, 12, 13, 14, 15, 16]", "seeds: [11]"), "seeds", "at least two seeds"),
        (('"{shift}"', '"{shfit}"'), "target.command", "unknown placeholder {shfit}"),
        (("candidate: {shift: -0.05, crash_seed: 13}", "candidate: {shift: -0.05}"), "arms",
         "arms set different parameters"),
        (("candidate: {shift: -0.05, crash_seed: 13}", "treatment: {shift: -0.05, crash_seed: 13}"), "arms",
         "expected exactly control and candidate"),
        (("method: bca", "method: bcaa"), "decision.method", "Input should be"),
        (("timeout_seconds: 60", "timeout_seconds: 0"), "target.timeout_seconds", "greater than 0"),
        (("direction: minimize", "direction: down"), "direction", "Input should be"),
        (("seeds: [11, 12, 13, 14, 15, 16]", "seeds: {count: 3, base_seed: -5}"), "seeds.base_seed",
         "greater than or equal to 0"),
        (("seeds: [11, 12, 13, 14, 15, 16]", "seeds: [11, 9223372036854775808]"), "seeds", "between 0 and 2147483647"),
        (("control:   {shift: 0.0, crash_seed: -1}", "control:   {shift: [0.0], crash_seed: -1}"), "arms.control.shift",
         "expected true/false or a whole number or a number or text, got [0.0]"),
    ],
)
def test_bad_comparison_study_is_one_line_naming_the_field(study_dir, change, field, message):
    path = write_study(study_dir, "bad", STUDY.replace(*change))
    with pytest.raises(StudyError) as raised:
        load_study(path)
    text = str(raised.value)
    assert f": {field}: " in text and message in text and "Fix:" in text and "\n" not in text


def test_comparison_sensor_registers_seeds_and_reruns_only_what_an_edit_affects(instance, study_dir, comparison_study):
    from dagster import build_sensor_context

    from benchmark_assets.definitions import build_definitions

    repository = build_definitions([comparison_study]).get_repository_def()
    sensor = repository.get_sensor_def("cmp__study_changes")
    tick = lambda cursor=None: sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=repository,  # noqa: E731
                                                           cursor=cursor))

    def requested(result) -> tuple[set[str], set[str]]:
        planned = planned_rerun(instance, result.run_requests[0], study_dir / "cmp.yaml")
        return planned.pop("trials", set()), {name for name, keys in planned.items() if not keys}

    first = tick()
    assert not first.run_requests and list(first.dynamic_partitions_requests[0].partition_keys) == comparison_study.seed_keys
    instance.add_dynamic_partitions("cmp__seeds", comparison_study.seed_keys)
    path = study_dir / "cmp.yaml"

    path.write_text(path.read_text().replace("seeds: [11, 12, 13, 14, 15, 16]", "seeds: [11, 12, 13, 14, 15, 16, 17]"))
    second = tick(first.cursor)
    assert list(second.dynamic_partitions_requests[0].partition_keys) == ["17"]
    trials, analysis = requested(second)
    assert trials == {"control|17", "candidate|17"}
    assert analysis == {"summaries", "aggregates", "comparison", "variance_analysis", "comparison_report"}
    instance.add_dynamic_partitions("cmp__seeds", ["17"])

    path.write_text(path.read_text().replace("shift: -0.05", "shift: -0.03"))
    third = tick(second.cursor)
    assert requested(third)[0] == {f"candidate|{s}" for s in range(11, 18)}

    path.write_text(path.read_text().replace("target_effect: 0.02", "target_effect: 0.03"))
    fourth = tick(third.cursor)
    assert requested(fourth) == (set(), requested(second)[1])

    assert not tick(fourth.cursor).run_requests  # nothing changed, nothing runs
    path.write_text(path.read_text().replace("seeds: [11, 12, 13, 14, 15, 16, 17]", "seeds: [11, 11]"))
    assert "duplicate seeds [11]" in tick(fourth.cursor).skip_message


def test_a_metric_the_command_never_reports_is_named_in_the_report(instance, study_dir):
    write_study(study_dir, "typo", STUDY.replace("metric: loss", "metric: los"))
    run_study("typo", quiet=True, instance=instance)
    decided = Warehouse().read("typo__comparison").set_index("metric").loc["los_auc_last25pct"]
    assert decided["verdict"] == "inconclusive" and "no trial reported the decision metric" in decided["reason"]
    report = (latest_dir("typo") / "report.md").read_text()
    assert "the command reported no curve los to summarise (curves: ['loss'])" in report


def test_a_decision_metric_no_trial_reports_exits_3_and_says_so_first(cli, study_dir, tmp_path):
    """Every trial succeeded but none reported the decision metric: the report's headline says so,
    the CLI exits 3 as when every trial fails, and a metric whose paired differences have no spread
    gets "no spread", not an effect size of 1e15."""
    study = INLINE.replace("NAME", "'loss'").replace("METRIC", "los")
    write_study(study_dir, "typo", study)
    env = {"DAGSTER_HOME": str(tmp_path / "home"), "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    first = cli("run", "typo", "--quiet", env=env)
    assert first.returncode == 3, first.stderr
    assert "error: typo decided nothing: no trial reported the decision metric 'los' (12 trials ran; they " \
           "reported loss)" in first.stderr
    headline = next(line for line in first.stdout.splitlines() if line.startswith("**"))
    assert headline.startswith("**Inconclusive** on `los`") and "no trial reported the decision metric" in headline
    loss = next(line for line in first.stdout.splitlines() if line.startswith("| loss |"))
    assert "| no spread |" in loss and "d_z" not in loss  # every seed differs by exactly -0.1
    assert "- : " not in first.stdout and "No test ran on the decision metric" in first.stdout
    assert "Ran 12 new trials in" in first.stdout and "others" not in first.stdout
    again = cli("run", "typo", "--quiet", env=env)
    assert again.returncode == 3 and "Ran no trial (all 12 were already up to date)" in again.stdout


INLINE = """\
kind: comparison
target:
  command: ["{python}", "-c", "import json, sys; s, x = int(sys.argv[1]), float(sys.argv[2]); print(json.dumps({{NAME: x + (s % 7) / 100}}))", "{seed}", "{x}"]
arms:
  control:   {x: 0.5}
  candidate: {x: 0.4}
seeds: [1, 2, 3, 4, 5, 6]
metric: METRIC
direction: minimize
decision: {bootstrap_resamples: 1000}
"""


def test_metric_names_that_are_not_identifiers_work_and_clashing_names_fail_clearly(instance, study_dir):
    write_study(study_dir, "dashed", INLINE.replace("NAME", "'val-loss'").replace("METRIC", "val-loss"))
    run_study("dashed", quiet=True, instance=instance)
    decided = Warehouse().read("dashed__comparison").set_index("metric").loc["val-loss"]
    assert decided["verdict"] == "candidate_better" and decided["effect"] == pytest.approx(-0.1)

    with pytest.raises(StudyError, match="metric: 'seed' names a column of the trials table"):
        load_study(write_study(study_dir, "clash", INLINE.replace("NAME", "'seed'").replace("METRIC", "seed")))
    write_study(study_dir, "clash", INLINE.replace("NAME", "'seed': 1, 'score'").replace("METRIC", "score"))
    run_study("clash", quiet=True, instance=instance)
    trials = Warehouse().read("clash__trials")
    assert (trials["status"] == "failed").all() and sorted(trials["seed"].unique()) == [1, 2, 3, 4, 5, 6]
    assert trials["error"].str.contains("metrics named ['seed'], which are this table's own columns", regex=False).all()


def test_trials_of_an_older_arm_setting_are_never_analysed_under_the_new_one(comparison_study, study_dir):
    from benchmark_assets.kinds.comparison.nodes import current_trials

    rows = pd.DataFrame({"arm": ["control", "candidate", "candidate", "control"], "seed": [11, 11, 12, 99],
                         "fingerprint": [comparison_study.arm_fingerprint("control"), "0" * 16,
                                             comparison_study.arm_fingerprint("candidate"),
                                             comparison_study.arm_fingerprint("control")]})
    kept = current_trials(comparison_study, rows)
    assert kept[["arm", "seed"]].values.tolist() == [["control", 11], ["candidate", 12]]  # stale row and removed seed out
    parallel = load_study(write_study(study_dir, "cmp", STUDY.replace("parallel: 2", "parallel: 1")))
    assert parallel.arm_fingerprint("candidate") == comparison_study.arm_fingerprint("candidate")


def test_trials_an_older_version_stored_are_still_current_and_never_a_metric(instance, study_dir, comparison_study):
    # The table as the version before one notion of a current trial wrote it: the arm's
    # fingerprint under its own name, no source column.
    import sqlalchemy as sa

    run_study("cmp", quiet=True, instance=instance)
    warehouse = Warehouse()
    old = warehouse.read("cmp__trials").rename(columns={"fingerprint": "arm_fingerprint"}).drop(columns="source")
    with warehouse.writing() as conn:
        conn.execute(sa.text('DROP TABLE "cmp__trials"'))
    warehouse.append("cmp__trials", old)
    path = study_dir / "cmp.yaml"
    path.write_text(path.read_text().replace("seeds: [11, 12, 13, 14, 15, 16]", "seeds: [11, 12, 13, 14, 15, 16, 17]"))
    outcome = run_study("cmp", quiet=True, instance=instance)
    assert outcome.measured == 2 + 1  # the new seed on both arms, and the crashing seed again: the rest are current
    assert "arm_fingerprint" not in set(warehouse.read("cmp__aggregates")["metric"])
    assert warehouse.read("cmp__comparison").set_index("metric").loc["loss_auc_last25pct", "n_pairs"] == 6


def test_a_measured_trial_of_a_large_seed_is_not_taken_for_an_ingested_one(study_dir):
    # Seeds may be as large as the inbox's keys; rows without a source (an older version's, or
    # a checkpoint's) are told ingested by their command, as that version did, not by the key.
    from benchmark_assets.kinds.comparison.nodes import up_to_date

    study = load_study(write_study(study_dir, "big", STUDY.replace("seeds: [11, 12, 13, 14, 15, 16]",
                                                                  "seeds: [11, 20240101]")))
    rows = pd.DataFrame([{"arm": arm, "seed": 20240101, "status": "ok", "error": "", "command": '["python", "train.py"]',
                          "fingerprint": study.arm_fingerprint(arm)} for arm in ("control", "candidate")])
    assert len(up_to_date(study, rows)) == 2
    assert len(up_to_date(study, rows.assign(source="measured"))) == 2
