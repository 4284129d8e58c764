"""``<study>__run_study``: the whole study from one click in the UI, run as the CLI runs it: the
stages are runs of their own, tagged with the job's run, and what they decide joins the ledger."""
from dagster import AssetKey, DagsterRunStatus, RunsFilter

from benchmark_assets.defs.run_job import build_run_job
from benchmark_assets.defs.runner import run_study
from benchmark_assets.defs.tags import LAUNCHED_BY_TAG, PARENT_RUN_TAG, REASON_TAG, STAGE_TAG
from benchmark_assets.graph import StudyGraph
from benchmark_assets.kinds.ratchet.analysis import headline
from benchmark_assets.ledger import Ledger
from benchmark_assets.studies import load_study
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.test_cli import FAILING


def _stage_runs(instance, run_id):
    records = instance.get_run_records(RunsFilter(tags={PARENT_RUN_TAG: run_id}), ascending=True)
    return [record.dagster_run for record in records]


def test_the_job_runs_every_stage_as_its_own_run_and_the_decisions_join_the_ledger(instance, toy_study):
    job = build_run_job(StudyGraph.of(toy_study))
    assert job.name == "toy__run_study"
    result = job.execute_in_process(instance=instance, tags={"dagster/schedule_name": "toy__nightly"})
    assert result.success
    stages = _stage_runs(instance, result.run_id)
    # catalog, trials (one rectangle), aggregates, verdicts + summary: what the CLI plans
    assert [run.tags[STAGE_TAG] for run in stages] == ["scenario catalog", "trials", "aggregates",
                                                       "search, verdicts, interactions, cumulative, ratchet summary"]
    assert all(run.status == DagsterRunStatus.SUCCESS and run.tags[LAUNCHED_BY_TAG] == "job" for run in stages)
    assert stages[0].tags[REASON_TAG] == "schedule toy__nightly (as `benchmark-assets run toy`)"
    trials = instance.get_latest_materialization_event(AssetKey(["toy", "trials"]))
    assert trials.run_id == stages[1].run_id
    summary = instance.get_latest_materialization_event(AssetKey(["toy", "ratchet_summary"]))
    reason = summary.asset_materialization.metadata["run_reason"].value
    assert reason == f"job run {result.run_id}: schedule toy__nightly (as `benchmark-assets run toy`)"
    ledger = Ledger(Warehouse()).read()
    assert len(ledger) == 3 and set(ledger["run_id"]) == {stages[-1].run_id}  # settled, not pending
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]  # the run's log in the UI
    assert "stage 2 of 4: trials 0|current ... 9|gamma=99" in logged
    assert any(text.startswith("stage 4 of 4: search, verdicts, interactions, cumulative, ratchet summary succeeded in ") for text in logged)
    # The trials stage's progress, in the job's own log too (what a person watching the job sees).
    engine = [e.dagster_event.message for e in instance.all_logs(result.run_id) if e.dagster_event]
    trials = len(Warehouse().read("toy__trials"))
    assert [text for text in engine if text.startswith("toy trials: ")] == [
        f"toy trials: {done}/{trials} trials" for done in range(trials // 10, trials + 1, trials // 10)]
    # What was decided, said in the log and on the job's output with a link to each stage's run.
    decided = headline(Warehouse().read("toy__verdicts"))
    assert decided.startswith(f"{int((ledger['decision'] == 'accept').sum())} of 3 constants accepted")
    assert f"decided: {decided}" in logged
    metadata = next(e for e in instance.all_logs(result.run_id)
                    if e.dagster_event and e.dagster_event.is_successful_output).dagster_event.step_output_data.metadata
    assert metadata["decided"].value == decided
    assert [(name, value.value) for name, value in metadata.items() if name.startswith("stage ")] == [
        (f"stage {i}: {run.tags[STAGE_TAG]}", f"/runs/{run.run_id}") for i, run in enumerate(stages, start=1)]
    verdicts = instance.get_latest_materialization_event(AssetKey(["toy", "verdicts"])).asset_materialization.metadata
    assert next(iter(verdicts)) == "headline" and verdicts["headline"].value == decided
    table = verdicts["decisions"].value
    assert [r.data["constant"] for r in table.records] == ["alpha", "beta", "gamma"]


def test_the_job_takes_the_cli_options_as_config_and_runs_only_what_they_select(instance, toy_study):
    run_study("toy", quiet=True, instance=instance)
    job = build_run_job(StudyGraph.of(toy_study))
    result = job.execute_in_process(instance=instance, run_config={
        "ops": {"toy__stages": {"config": {"subjects": ["alpha"]}}}})
    assert result.success
    stages = _stage_runs(instance, result.run_id)
    # As `--constants alpha`: alpha's sweep points (and today's values) only, and a decision on alpha;
    # the scenario catalog, stored at its current code version by the first run, is not rebuilt.
    assert [run.tags[STAGE_TAG] for run in stages] == ["trials", "aggregates",
                                                       "search, verdicts, interactions, cumulative, ratchet summary"]
    trials = stages[0].tags
    assert (trials["dagster/asset_partition_range_start"], trials["dagster/asset_partition_range_end"]) == (
        "0|current", "9|alpha=1")
    assert stages[0].tags[REASON_TAG].endswith("(as `benchmark-assets run toy --constants alpha`)")
    rows = Ledger(Warehouse()).read()
    assert list(rows[rows["run_id"] == stages[-1].run_id]["subject"]) == ["alpha"]


def test_a_rerun_in_the_config_runs_those_trials_and_steps_then_what_follows(instance, toy_study):
    """What the study and inbox sensors launch: ``only`` a point's trials, new replicates on every
    point, or steps whose every partition reruns; then the unpartitioned steps, and the ledger."""
    run_study("toy", quiet=True, instance=instance)
    job = build_run_job(StudyGraph.of(toy_study))

    def launch(only: dict):
        result = job.execute_in_process(instance=instance, run_config={
            "ops": {"toy__stages": {"config": {"only": only}}}}, tags={"dagster/sensor_name": "toy__study_changes"})
        assert result.success
        return result, _stage_runs(instance, result.run_id)

    result, stages = launch({"points": ["beta=2"]})
    assert [run.tags[STAGE_TAG] for run in stages] == ["trials", "aggregates",
                                                       "search, verdicts, interactions, cumulative, ratchet summary"]
    assert (stages[0].tags["dagster/asset_partition_range_start"], stages[0].tags["dagster/asset_partition_range_end"]
            ) == ("0|beta=2", "9|beta=2")
    assert stages[1].tags["dagster/asset_partition_range_start"] == "beta=2"
    assert stages[0].tags[REASON_TAG] == "sensor toy__study_changes"
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert "running 1 points of toy, then what follows them" in logged
    assert set(Ledger(Warehouse()).read()["run_id"]) >= {stages[-1].run_id}  # settled by the job

    _, stages = launch({"steps": ["aggregates", "verdicts"]})
    points = instance.get_dynamic_partitions("toy__sweep_points")
    assert [run.tags[STAGE_TAG] for run in stages] == ["aggregates", "search, verdicts, interactions, cumulative, "
                                                       "ratchet summary"]
    assert (stages[0].tags["dagster/asset_partition_range_start"], stages[0].tags["dagster/asset_partition_range_end"]
            ) == (points[0], points[-1])

    # A point the file no longer has (edited again before the run started): left out, said so.
    result, stages = launch({"points": ["beta=1000", "beta=2"]})
    assert stages[0].tags["dagster/asset_partition_range_start"] == "0|beta=2"
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(line.startswith("left out, toy.yaml no longer has them") and "beta=1000" in line for line in logged)


def test_a_job_whose_every_trial_fails_fails_with_the_trials_own_error(instance, study_dir):
    (study_dir / "broken_setup.yaml").write_text(FAILING)
    job = build_run_job(StudyGraph.of(load_study("broken_setup")))
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure).step_failure_data
    assert "every trial failed, so broken_setup decided nothing" in failure.error.message
    errors = failure.user_failure_data.metadata["trial_errors"].value
    assert "18 of 18 trials failed" in errors
    assert "18 x `FileNotFoundError: model weights not found at /models/ranker.bin (at failing_target.py:8)`" in errors


def test_a_job_terminated_from_the_ui_starts_no_further_stage(instance, toy_study):
    """Terminate marks the run CANCELING (then interrupts it): the job checks before each stage, so
    a termination that lands between two stages is not lost."""
    import threading
    import time

    job, outcome = build_run_job(StudyGraph.of(toy_study)), {}

    def launch():
        outcome["result"] = job.execute_in_process(instance=instance, raise_on_error=False, run_id=run_id)

    run_id = "5f0c3b8e-0000-4000-8000-000000000001"
    worker = threading.Thread(target=launch)
    worker.start()
    deadline = time.monotonic() + 120
    while not _stage_runs(instance, run_id):  # the first stage has started
        assert worker.is_alive() and time.monotonic() < deadline, "no stage ever started"
        time.sleep(0.02)
    instance.report_run_canceling(instance.get_run_by_id(run_id))
    worker.join(timeout=300)
    result = outcome["result"]
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure).step_failure_data
    assert "interrupted" in failure.error.message
    assert len(_stage_runs(instance, run_id)) < 4  # what had not started when it was terminated never ran
