"""The study graph in Dagster: every shipped study defines, the study sensor and the nightly schedule
launch the study's job over exactly the reruns an edit affects, and a failed schema check lists its rows by their keys."""
import json

from dagster import AssetKey, DagsterInstance, Definitions, build_schedule_context, build_sensor_context

from benchmark_assets.definitions import build_definitions
from benchmark_assets.studies import discover_studies, load_study
from benchmark_assets_tests.conftest import ROOT, planned_rerun


def test_definitions_load_every_shipped_study():
    from benchmark_assets import definitions

    studies = discover_studies(ROOT / "studies")
    defs = build_definitions(studies)
    Definitions.validate_loadable(defs)  # what `dagster dev` and the code server do: resolves every job
    repository = defs.get_repository_def()
    keys = set(repository.asset_graph.get_all_asset_keys())
    assert {s.kind for s in studies} == {"ratchet", "comparison", "load_sweep", "acceptance", "estimator_benchmark"}
    for study in studies:
        if study.kind == "estimator_benchmark":
            names = ("scenario_catalog", "trials", "aggregates", "leaderboard", "verdicts", "benchmark_report")
        elif study.kind == "acceptance":
            names = ("trials", "verdicts", "suite_report")
        elif study.kind == "load_sweep":
            names = ("trials", "aggregates", "sweep_summary")
        elif study.kind == "comparison":
            names = ("trials", "summaries", "aggregates", "comparison", "variance_analysis", "comparison_report")
        else:
            names = ("scenario_catalog", "trials", "aggregates", "verdicts", "ratchet_summary")
            assert repository.has_schedule_def(f"{study.name}__nightly")
        assert repository.has_sensor_def(f"{study.name}__study_changes")
        for name in names:
            assert AssetKey([study.name, name]) in keys
    assert definitions.defs.get_repository_def().asset_graph.get_all_asset_keys()


def _only(request) -> dict:
    """The rerun a request of the study's job asks for (its ``only`` config; None: the whole study)."""
    (op_config,) = request.run_config["ops"].values()
    return op_config["config"].get("only")


def test_sensor_registers_points_then_launches_the_job_over_only_what_changed(dagster_home, study_dir):
    study = load_study(study_dir / "toy.yaml")
    defs = build_definitions([study])
    sensor = defs.get_repository_def().get_sensor_def("toy__study_changes")
    assert sensor.job_name == "toy__run_study"
    with DagsterInstance.get() as instance:
        first = sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=defs.get_repository_def()))
        assert not first.run_requests
        added, seeds = first.dynamic_partitions_requests  # sweep points, then seed ids
        assert set(added.partition_keys) == {p.key for p in study.sweep_points()}
        assert list(seeds.partition_keys) == study.seed_keys
        for request in first.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))

        # A new candidate: the job runs its trials (and what depends on them), nothing else.
        path = study_dir / "toy.yaml"
        path.write_text(path.read_text().replace("candidates: [0.5, 1.0, 2.0]", "candidates: [0.5, 1.0, 2.0, 4.0]"))
        second = sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=defs.get_repository_def(), cursor=first.cursor))
        assert [list(r.partition_keys) for r in second.dynamic_partitions_requests] == [["beta=4"]]
        (request,) = second.run_requests
        assert request.job_name == "toy__run_study" and not request.run_config["ops"]["toy__stages"]["config"]["force"]
        assert _only(request) == {"points": ["beta=4"], "replicates": [], "trials": {}, "steps": []}
        assert "10 trials to run after a change to toy.yaml" in request.tags["benchmark_assets/reason"]
        planned = planned_rerun(instance, request, path)
        assert planned["trials"] == {f"{s}|beta=4" for s in range(10)} and planned["aggregates"] == {"beta=4"}
        assert "ratchet_summary" in planned
        assert len(planned["scenario_catalog"]) == 10  # never materialised here (after a run: test_run_job)

        # Only a decision rule changed: no trial reruns, just the verdicts and the summary.
        path.write_text(path.read_text().replace("correction: holm", "correction: bh"))
        third = sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=defs.get_repository_def(), cursor=second.cursor))
        (request,) = third.run_requests
        assert not _only(request)["points"] and not _only(request)["replicates"]
        assert set(_only(request)["steps"]) == {"verdicts", "interactions", "cumulative", "ratchet_summary"}
        planned = planned_rerun(instance, request, path)
        assert set(planned) == {"search", "verdicts", "interactions", "cumulative", "ratchet_summary"}

        # The number of bootstrap resamples also shapes every point's aggregates: those rerun too, no trials.
        path.write_text(path.read_text().replace("bootstrap_resamples: 2000", "bootstrap_resamples: 3000"))
        resampled = sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=defs.get_repository_def(),
                                                              cursor=third.cursor))
        (request,) = resampled.run_requests
        assert "aggregates" in _only(request)["steps"] and not _only(request)["points"]
        planned = planned_rerun(instance, request, path)
        assert "trials" not in planned
        assert planned["aggregates"] == {p.key for p in load_study(path).sweep_points()}
        third = resampled

        # A broken edit reruns nothing and says why.
        path.write_text(path.read_text().replace("candidates: [0.5, 1.0, 2.0, 4.0]", "candidates: [0.5, 0.5]"))
        fourth = sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=defs.get_repository_def(), cursor=third.cursor))
        assert "duplicate candidate 0.5" in fourth.skip_message
        assert third.cursor.split("study ")[1] != second.cursor.split("study ")[1]
        assert len(third.cursor) < 120 and "points" in third.cursor  # a short line on the sensor page

        # Many edits later the key-value store still holds one entry per study, of at most two states.
        stored = list(instance.run_storage.get_cursor_values({"benchmark_assets/study_state/toy"}))
        assert stored == ["benchmark_assets/study_state/toy"]
        states = json.loads(instance.run_storage.get_cursor_values(set(stored))[stored[0]])
        assert len(states) == 2 and third.cursor.split(":")[0] in states


def test_nightly_schedule_is_off_by_default_and_runs_the_whole_study_again(dagster_home, study_dir):
    study = load_study(study_dir / "toy.yaml")
    defs = build_definitions([study])
    schedule = defs.get_repository_def().get_schedule_def("toy__nightly")
    assert schedule.default_status.value == "STOPPED" and schedule.job_name == "toy__run_study"
    with DagsterInstance.get() as instance:
        (request,) = schedule.evaluate_tick(build_schedule_context(instance=instance)).run_requests
    assert request.job_name == "toy__run_study"
    assert request.run_config == {"ops": {"toy__stages": {"config": {"force": True}}}}


def test_a_cursor_written_before_the_upgrade_still_reruns_an_edit(dagster_home, study_dir):
    """The ratchet sensor's cursor used to be {points, decision, hash}: an edit made across the
    upgrade must not be swallowed by adopting the new state."""
    path = study_dir / "toy.yaml"
    study = load_study(path)
    old_cursor = json.dumps({"points": study.point_fingerprints(), "decision": study.decision_fingerprint(),
                             "hash": study.spec_hash})
    path.write_text(path.read_text().replace("candidates: [0.5, 1.0, 2.0]", "candidates: [0.5, 1.0, 2.0, 4.0]"))
    repository = build_definitions([load_study(path)]).get_repository_def()
    sensor = repository.get_sensor_def("toy__study_changes")
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("toy__sweep_points", [p.key for p in study.sweep_points()])
        instance.add_dynamic_partitions("toy__seed_ids", study.seed_keys)
        tick = sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=repository, cursor=old_cursor))
        assert _only(tick.run_requests[0])["points"] == ["beta=4"]
        again = sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=repository,
                                                          cursor=tick.cursor))
        assert not again.run_requests  # the new cursor took over


def test_a_state_stored_one_key_per_digest_is_still_read(dagster_home, study_dir):
    """Sensor states used to be one key per digest: a cursor naming one still finds it."""
    from benchmark_assets.defs.reruns import load_sensor_state

    with DagsterInstance.get() as instance:
        instance.run_storage.set_cursor_values({"benchmark_assets/study_state/toy/abc123": '{"points": {}}'})
        assert load_sensor_state(instance, "toy", "abc123: 0 points") == {"points": {}}


def test_a_new_current_value_reruns_only_the_aggregates_of_points_whose_trials_change(dagster_home, study_dir):
    path = study_dir / "toy.yaml"
    repository = build_definitions([load_study(path)]).get_repository_def()
    sensor = repository.get_sensor_def("toy__study_changes")
    with DagsterInstance.get() as instance:
        first = sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=repository))
        for request in first.dynamic_partitions_requests:  # sweep points and seed ids
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        path.write_text(path.read_text().replace("alpha: {tier: 1, current: 0.3", "alpha: {tier: 1, current: 0.5"))
        second = sensor.evaluate_tick(build_sensor_context(instance=instance, repository_def=repository,
                                                           cursor=first.cursor))
        planned = planned_rerun(instance, second.run_requests[0], path)
    trial_points = set(_only(second.run_requests[0])["points"])
    assert planned["aggregates"] == trial_points
    # Points that move alpha itself do not depend on its current value: neither they nor their aggregates rerun.
    assert trial_points == {"current", "alpha=0.3", "beta=0.5", "beta=2", "gamma=2", "gamma=99"}


def test_failing_rows_of_a_missing_column_and_a_duplicate_key_are_both_listed():
    import pandas as pd
    import pandera.pandas as pa

    from benchmark_assets.defs.metadata import validate_frame

    schema = pa.DataFrameSchema({"k": pa.Column(str), "m": pa.Column(float)}, unique=["k"])
    frame = pd.DataFrame({"k": ["a", "a", "b"]})  # no column m (old data), and k=a twice
    result = validate_frame(schema, frame, "check_x_schema", AssetKey(["s", "x"]))
    assert not result.passed
    table = result.metadata["failing_rows"].value
    assert "column_in_dataframe" in table and "| a " in table  # the row-level case keyed by k
