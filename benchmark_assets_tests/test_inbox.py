"""Results from the tools a team already has: files put in a study's inbox become its trials,
through real Dagster runs (the CLI's and the sensor's), once per content; files that cannot be
used are reported with their name and reason and are not read again until they change."""
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, AssetObservation, build_sensor_context, materialize

from benchmark_assets import inbox
from benchmark_assets.artifacts import latest_dir
from benchmark_assets.cli import main
from benchmark_assets.defs.assets import build_assets
from benchmark_assets.defs.resources import study_resources
from benchmark_assets.defs.runner import ingest_study, run_study
from benchmark_assets.graph import StudyGraph
from benchmark_assets.kinds.base import INBOX_BASE
from benchmark_assets.studies import load_study
from benchmark_assets.targets.aiperf_export import ExportFileError, read_export
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.conftest import ROOT, write_study

AIPERF = ROOT / "benchmark_assets_tests" / "data" / "aiperf"

COMPARISON = """\
kind: comparison
target:
  command: ["{python}", "-m", "benchmark_assets_tests.toy_command", "--seed", "{seed}", "--shift", "{shift}",
            "--out", "{output}"]
arms:
  control:   {shift: 0.0}
  candidate: {shift: -0.05}
seeds: [1, 2]
metric: loss
summary: {type: last_n, n: 3}
direction: minimize
decision: {bootstrap_resamples: 500, target_effect: 0.1}
"""

LOAD_SWEEP = """\
kind: load_sweep
target:
  http_load:
    url: http://127.0.0.1:9
    model: mock
    streaming: true
    input_tokens: 128
    output_tokens: 16
    concurrency: [1, 4, 16, 64]
    requests: 10
trials: 2
"""


@pytest.fixture
def inbox_root(dagster_home, tmp_path):
    return Path(inbox.inbox_root())


def curve_csv(path: Path, offset: float, *, header: str = "step,loss", seed_column: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    steps = np.arange(0, 50, 5)
    lines = [header + (",seed" if seed_column is not None else "")]
    for step in steps:
        value = 1.0 / (1 + step) + offset
        lines.append(f"{step},{value}" + (f",{seed_column}" if seed_column is not None else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def records(study) -> pd.DataFrame:
    return inbox.records(Warehouse(), study).set_index("path")


def test_curve_files_become_paired_comparison_trials_once_each(instance, study_dir, inbox_root):
    study = load_study(write_study(study_dir, "cmp", COMPARISON))
    folder = inbox_root / "cmp"
    for seed in (3, 4, 5, 6):
        curve_csv(folder / "control" / f"seed_{seed}.csv", 0.30 + 0.01 * seed)
        curve_csv(folder / "candidate" / f"seed_{seed}.csv", 0.20 + 0.01 * seed)
    curve_csv(folder / "control" / "epochs.csv", 0.3, header="epoch,loss")  # no step column
    (folder / "README.txt").write_text("results from the cluster")  # not a file the kind reads

    found, outcome = ingest_study("cmp", quiet=True, instance=instance)
    assert [o.path for o in found.ingested] == [f"{arm}/seed_{s}.csv" for arm in ("candidate", "control")
                                                for s in (3, 4, 5, 6)]
    (rejected,) = found.rejected
    assert rejected.path == "control/epochs.csv" and "no step column (it has: epoch, loss)" in rejected.reason
    assert found.ignored == 1 and outcome.ingested == 8

    trials = Warehouse().read("cmp__trials")
    assert sorted(trials["seed"].unique()) == [INBOX_BASE + s for s in (3, 4, 5, 6)]
    assert set(trials["status"]) == {"ok"} and set(trials["trial_seed"]) == {3, 4, 5, 6}
    # Every stored trial says where it came from: here the file, in the inbox's own words.
    sources = trials.set_index(["arm", "seed"])["source"]
    assert sources[("control", INBOX_BASE + 3)] == "inbox:control/seed_3.csv"
    assert set(sources) == {f"inbox:{arm}/seed_{s}.csv" for arm in ("candidate", "control") for s in (3, 4, 5, 6)}
    curves = json.loads(trials.set_index(["arm", "seed"]).loc[("control", INBOX_BASE + 3), "curves_json"])
    assert curves["loss"]["steps"] == list(range(0, 50, 5))
    assert curves["loss"]["values"][-1] == pytest.approx(1 / 46 + 0.33)
    # Trials are Dagster partitions like measured ones: registered, materialised, checked.
    materialised = instance.get_materialized_partitions(AssetKey(["cmp", "trials"]))
    assert {f"candidate|{INBOX_BASE + 3}", f"control|{INBOX_BASE + 6}"} <= materialised
    # Paired by seed: every candidate is 0.10 below its control.
    comparison = Warehouse().read("cmp__comparison").set_index("metric").loc["loss_last3"]
    assert comparison["n_pairs"] == 4 and comparison["effect"] == pytest.approx(-0.10)
    assert comparison["verdict"] == "candidate_better"
    report = (latest_dir("cmp") / "report.md").read_text()
    assert "4 seeds with both arms measured; 0 trials failed; 8 trials ingested from curve files" in report

    again, nothing = ingest_study("cmp", quiet=True, instance=instance)
    assert again.outcomes == [] and again.unchanged == 9 and nothing is None  # the rejected one too

    # A changed file replaces its trial (same key); a fixed rejected file is read again; a copy is reported.
    curve_csv(folder / "candidate" / "seed_3.csv", 0.43)
    curve_csv(folder / "control" / "epochs.csv", 0.3, seed_column=7)
    shutil.copy(folder / "control" / "seed_4.csv", folder / "control" / "copy_of_4.csv")
    third, _ = ingest_study("cmp", quiet=True, instance=instance)
    assert {o.path: o.status for o in third.outcomes} == {
        "candidate/seed_3.csv": "ingested", "control/copy_of_4.csv": "duplicate", "control/epochs.csv": "ingested"}
    assert "the same content as control/seed_4.csv" in third.outcomes[1].reason
    trials = Warehouse().read("cmp__trials").set_index(["arm", "seed"])
    assert len(trials) == 9 and trials.loc[("control", INBOX_BASE + 7), "status"] == "ok"
    assert json.loads(trials.loc[("candidate", INBOX_BASE + 3), "curves_json"])["loss"]["values"][-1] \
        == pytest.approx(1 / 46 + 0.43)
    assert records(study).loc["candidate/seed_3.csv", "status"] == "ingested"


def test_measured_and_ingested_trials_are_analysed_together(instance, study_dir, inbox_root):
    write_study(study_dir, "cmp", COMPARISON)
    run_study("cmp", quiet=True, instance=instance)  # seeds 1 and 2, measured here
    for seed in (8, 9):
        for arm in ("control", "candidate"):
            curve_csv(inbox_root / "cmp" / arm / f"run{seed}.csv", 0.5 + seed / 100 + (arm == "control") / 10)
    ingest_study("cmp", quiet=True, instance=instance)
    summaries = Warehouse().read("cmp__summaries")
    assert sorted(summaries["seed"].unique()) == [1, 2, INBOX_BASE + 8, INBOX_BASE + 9]
    # A later run of the study measures its own seeds only and keeps the ingested trials.
    outcome = run_study("cmp", quiet=True, instance=instance)
    assert outcome.measured == 0
    assert len(Warehouse().read("cmp__trials")) == 8


@pytest.mark.parametrize("name, text, reason", [
    ("control/x.csv", "step,loss\n0,1\n1,0.5\n", "say which seed it ran"),
    ("x_1.csv", "step,loss\n0,1\n1,0.5\n", "say which arm it is: put it in control/ or candidate/"),
    ("control/s1.csv", "step,accuracy\n0,1\n1,0.5\n", "has curves accuracy but not 'loss'"),
    ("control/s1.csv", "step,loss\n0,1\n1,oops\n", "column 'loss' holds 'oops' on data row 2, not a number"),
    ("control/s1.csv", "step,loss\n0,1\n0,0.5\n", "loss has two values at step 0"),
    ("control/s1.csv", "", "is not a CSV table"),
])
def test_curve_files_that_cannot_be_used_say_why(study_dir, inbox_root, dagster_home, name, text, reason):
    study = load_study(write_study(study_dir, "cmp", COMPARISON))
    path = inbox_root / "cmp" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    found = inbox.scan(StudyGraph.of(study), Warehouse())
    (outcome,) = found.rejected
    assert outcome.path == name and reason in outcome.reason, outcome.reason
    assert inbox.pending_keys(Warehouse(), study) == []


def test_tensorboard_and_long_csv_shapes(tmp_path):
    from benchmark_assets.targets.curves_csv import read_curves

    board = tmp_path / "run-train-tag-loss.csv"
    board.write_text("Wall time,Step,Value\n100.0,0,2.0\n160.5,10,1.0\n220.0,20,0.5\n")
    (trial,) = read_curves(board, single_metric="loss")
    assert list(trial.curves) == ["loss"] and trial.duration_seconds == pytest.approx(120.0)
    assert trial.curves["loss"][1].tolist() == [2.0, 1.0, 0.5]
    long = tmp_path / "long.csv"
    long.write_text("seed,metric,step,value\n1,loss,0,2\n1,loss,1,1\n1,acc,0,0.1\n2,loss,0,3\n2,loss,1,2.5\n")
    first, second = read_curves(long, single_metric="ignored")
    assert (first.seed, second.seed) == (1, 2) and set(first.curves) == {"loss", "acc"}
    assert second.curves["loss"][1].tolist() == [3.0, 2.5]


def copy_export(inbox_root: Path, source: str, run: str) -> Path:
    target = inbox_root / "sweep" / run / "profile_export_aiperf.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(AIPERF / source, target)
    return target


def test_aiperf_exports_become_load_sweep_trials_of_their_sweep_point(instance, study_dir, inbox_root):
    write_study(study_dir, "sweep", LOAD_SWEEP)
    for source in ("records_concurrency1.json", "flat_concurrency4.json", "phases_concurrency16.json",
                   "all_failed_concurrency64.json"):
        copy_export(inbox_root, source, source.removesuffix(".json"))
    (inbox_root / "sweep" / "flat_concurrency4" / "profile_export_aiperf.csv").write_text("aiperf's csv,\n")

    found, _outcome = ingest_study("sweep", quiet=True, instance=instance)
    assert len(found.ingested) == 4 and found.rejected == [] and found.ignored == 1
    trials = Warehouse().read("sweep__trials").set_index("sweep_point")
    flat = json.loads((AIPERF / "flat_concurrency4.json").read_text())
    four = trials.loc["concurrency=4"]
    assert four["trial"] >= INBOX_BASE and four["status"] == "ok"
    assert four["request_throughput_avg"] == flat["request_throughput"]["avg"]
    assert four["time_to_first_token_p99"] == flat["time_to_first_token"]["p99"]
    assert four["inter_token_latency_p50"] == flat["inter_token_latency"]["p50"]
    assert four["duration_seconds"] == 3.0 and four["output_token_count"] == 1984
    old = trials.loc["concurrency=1"]  # aiperf 0.1: records, "ttft", errors counted
    assert old["time_to_first_token_avg"] == 19.0 and old["successful_request_count"] == 61
    assert old["error_rate"] == pytest.approx(2 / 63)
    assert trials.loc["concurrency=16", "request_throughput_avg"] == 150.0  # aiperf 0.9+: phases
    failed = trials.loc["concurrency=64"]
    assert failed["status"] == "failed" and "ConnectionRefusedError" in failed["error"]
    assert math.isnan(failed["request_throughput_avg"])
    # What follows the trials ran on them: aggregates per point and the summary's choices.
    aggregates = Warehouse().read("sweep__aggregates")
    assert set(aggregates["sweep_point"]) >= {"concurrency=1", "concurrency=4", "concurrency=16"}
    assert "concurrency=16" in Warehouse().read("sweep__sweep_summary").to_string()
    report = (latest_dir("sweep") / "report.md").read_text()
    assert "; 4 trials ingested from aiperf exports" in report
    # Each ingested trial with its file and the server it measured (the file's, not the study's URL).
    assert trials.loc["concurrency=16", "endpoint"] == "127.0.0.1:8765"
    section = report.split("## Ingested trials")[1]
    assert f"| concurrency=16 | {int(trials.loc['concurrency=16', 'trial'])} | phases_concurrency16/" \
           "profile_export_aiperf.json | 127.0.0.1:8765 |" in section, section


@pytest.mark.parametrize("edit, reason", [
    (lambda d: d["input_config"]["loadgen"].update(concurrency=12),
     "it ran concurrency=12, which is no sweep point of sweep (points: concurrency=1; concurrency=4;"),
    (lambda d: d["input_config"]["endpoint"].update(model_names=["llama"]),
     "it ran model 'llama', and sweep measures 'mock'"),
    (lambda d: d["input_config"]["endpoint"].update(streaming=False), "it ran without --streaming"),
    (lambda d: d["input_config"].pop("loadgen"), "it does not say which concurrency it ran"),
    (lambda d: d["input_config"]["loadgen"].update(concurrency=[1, 4]), "the export of a whole sweep"),
    (lambda d: d.update(was_cancelled=True), "the run did not finish"),
    (lambda d: d["time_to_first_token"].update(unit="fortnights"), "time_to_first_token is in 'fortnights'"),
    (lambda d: [d.pop("request_throughput"), d.pop("request_count")], "not an aiperf profile export"),
])
def test_aiperf_exports_that_cannot_be_used_say_why(study_dir, inbox_root, dagster_home, edit, reason):
    study = load_study(write_study(study_dir, "sweep", LOAD_SWEEP))
    document = json.loads((AIPERF / "flat_concurrency4.json").read_text())
    edit(document)
    target = inbox_root / "sweep" / "run" / "profile_export_aiperf.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(document))
    (outcome,) = inbox.scan(StudyGraph.of(study), Warehouse()).rejected
    assert reason in outcome.reason, outcome.reason


def test_aiperf_times_in_seconds_are_read_as_milliseconds(tmp_path):
    document = json.loads((AIPERF / "flat_concurrency4.json").read_text())
    document["request_latency"] = {"unit": "sec", "avg": 0.25, "p99": 0.5}
    path = tmp_path / "profile_export_aiperf.json"
    path.write_text(json.dumps(document))
    run = read_export(path)
    assert run.metrics["request_latency_avg"] == 250.0 and run.metrics["request_latency_p99"] == 500.0
    assert run.settings == {"concurrency": 4.0, "input_tokens": 128.0, "output_tokens": 16.0}
    path.write_text("[1, 2]")
    with pytest.raises(ExportFileError, match="not an aiperf export"):
        read_export(path)


def test_the_sensor_ingests_new_files_and_reports_rejected_ones_once(instance, study_dir, inbox_root, capfd,
                                                                    monkeypatch):
    from benchmark_assets.definitions import build_definitions
    from benchmark_assets.defs import inbox_watch

    study = load_study(write_study(study_dir, "sweep", LOAD_SWEEP))
    definitions = build_definitions([study])
    repository = definitions.get_repository_def()
    sensor = repository.get_sensor_def("sweep__inbox_watch")

    def tick(cursor=None):
        with build_sensor_context(instance=instance, repository_def=repository, cursor=cursor,
                                  resources=study_resources()) as context:
            return sensor.evaluate_tick(context)

    nothing = tick()
    assert not nothing.run_requests and "0 files ingested" in nothing.skip_message
    copy_export(inbox_root, "flat_concurrency4.json", "a")
    copy_export(inbox_root, "phases_concurrency16.json", "b")
    bad = inbox_root / "sweep" / "c" / "profile_export_aiperf.json"
    bad.parent.mkdir()
    bad.write_text("{not json")

    first = tick(nothing.cursor)
    (request,) = first.run_requests
    assert request.job_name == "sweep__run_study"  # the study's job: then what follows, as the CLI runs it
    only = request.run_config["ops"]["sweep__stages"]["config"]["only"]
    assert only["trials"] == {"concurrency=4": [str(INBOX_BASE)], "concurrency=16": [str(INBOX_BASE + 1)]}
    assert not only["points"] and not only["replicates"] and not only["steps"]
    assert "a/profile_export_aiperf.json" in request.tags["benchmark_assets/ingested_files"]
    (added,) = [r for r in first.dynamic_partitions_requests if r.partitions_def_name == "sweep__load_trials"]
    assert list(added.partition_keys) == [str(INBOX_BASE), str(INBOX_BASE + 1)]
    (observation,) = first.asset_events
    assert isinstance(observation, AssetObservation) and observation.asset_key == AssetKey(["sweep", "trials"])
    assert "c/profile_export_aiperf.json" in observation.metadata["inbox_rejected"].value
    assert "is not JSON" in observation.metadata["inbox_rejected"].value
    logged = capfd.readouterr().err  # the sensor's log (what the UI shows on the tick)
    assert "WARNING - " in logged and "c/profile_export_aiperf.json: rejected: it is not JSON" \
        in logged, logged

    # What the requested run does: the trials partitions are the files' rows, not measurements
    # (the sweep's URL is a closed port: a measured trial would fail).
    for r in first.dynamic_partitions_requests:
        instance.add_dynamic_partitions(r.partitions_def_name, list(r.partition_keys))
    assets = build_assets(StudyGraph.of(study), trial_chunks=0)
    result = materialize(assets, instance=instance, resources=study_resources(),
                         selection=[AssetKey(["sweep", "trials"])], partition_key=f"concurrency=4|{INBOX_BASE}")
    assert result.success
    stored = Warehouse().read("sweep__trials")
    assert stored["status"].tolist() == ["ok"] and stored["request_throughput_avg"].tolist() == [41.5]

    second = tick(first.cursor)  # concurrency=16's run is still "in flight": not asked for again yet
    assert not second.run_requests and not second.asset_events and "3 seen before" in second.skip_message
    bad.write_text(json.dumps(json.loads((AIPERF / "records_concurrency1.json").read_text())))
    monkeypatch.setattr(inbox_watch, "RETRY_AFTER_SECONDS", -1)  # as if its run had failed long ago
    third = tick(second.cursor)
    (request,) = third.run_requests
    only = request.run_config["ops"]["sweep__stages"]["config"]["only"]
    assert only["trials"] == {"concurrency=1": [str(INBOX_BASE + 2)], "concurrency=16": [str(INBOX_BASE + 1)]}
    assert not third.asset_events and "never stored as partitions" in capfd.readouterr().err


def test_the_ingest_command_prints_each_file_and_exits_6_on_a_rejected_one(study_dir, inbox_root, dagster_home,
                                                                           capsys, monkeypatch):
    write_study(study_dir, "sweep", LOAD_SWEEP)
    copy_export(inbox_root, "flat_concurrency4.json", "a")
    rejected = copy_export(inbox_root, "flat_concurrency4.json", "b")
    rejected.write_text(rejected.read_text().replace('"concurrency": 4', '"concurrency": 5'))
    assert main(["ingest", "sweep", "--quiet"]) == 6
    out, err = capsys.readouterr()
    assert "a/profile_export_aiperf.json: ingested as 1 trials (1 rows)" in out
    assert "b/profile_export_aiperf.json: rejected: it ran concurrency=5, which is no sweep point" in err
    assert "Stored 1 ingested trials" in out
    # Nothing new: the rejected file is not read again, but while it is there a CI script hears of it.
    assert main(["ingest", "sweep", "--quiet"]) == 6
    out, err = capsys.readouterr()
    assert "0 files ingested (0 trials), 2 seen before" in out
    assert "b/profile_export_aiperf.json: still rejected: it ran concurrency=5" in err
    rejected.unlink()
    assert main(["ingest", "sweep", "--quiet"]) == 0
    assert main(["ingest", "toy"]) == 2  # a ratchet ingests nothing: one line


def stored_trials(name: str) -> pd.DataFrame:
    return Warehouse().read(f"{name}__trials")


def test_a_file_whose_trials_move_gives_up_the_old_ones(instance, study_dir, inbox_root):
    write_study(study_dir, "cmp", COMPARISON)
    folder = inbox_root / "cmp"
    curve_csv(folder / "control" / "run.csv", 0.3, seed_column=4)
    curve_csv(folder / "candidate" / "run.csv", 0.2, seed_column=4)
    ingest_study("cmp", quiet=True, instance=instance)
    assert sorted(stored_trials("cmp")["seed"]) == [INBOX_BASE + 4] * 2
    curve_csv(folder / "control" / "run.csv", 0.3, seed_column=5)  # the file now says seed 5
    found, _ = ingest_study("cmp", quiet=True, instance=instance)
    assert found.released == [("control", str(INBOX_BASE + 4))]
    trials = stored_trials("cmp")
    assert sorted(zip(trials["arm"], trials["seed"])) == [("candidate", INBOX_BASE + 4), ("control", INBOX_BASE + 5)]
    assert Warehouse().read("cmp__comparison").set_index("metric").loc["loss_last3", "n_pairs"] == 0

    # Moved to the other arm's folder: the trial moves with it (not "a copy"), the old one goes.
    (folder / "candidate" / "other.csv").write_bytes((folder / "control" / "run.csv").read_bytes())
    (folder / "control" / "run.csv").unlink()
    moved, _ = ingest_study("cmp", quiet=True, instance=instance)
    assert [(o.path, o.status) for o in moved.outcomes] == [("candidate/other.csv", "ingested")]
    trials = stored_trials("cmp")
    assert sorted(zip(trials["arm"], trials["seed"])) == [("candidate", INBOX_BASE + 4), ("candidate", INBOX_BASE + 5)]
    assert set(records(load_study("cmp")).index) == {"candidate/run.csv", "candidate/other.csv"}

    # A deleted file keeps its trial until another file brings the same seed, which replaces it.
    (folder / "candidate" / "run.csv").unlink()
    assert ingest_study("cmp", quiet=True, instance=instance)[1] is None
    assert len(stored_trials("cmp")) == 2
    curve_csv(folder / "candidate" / "again.csv", 0.25, seed_column=4)
    replaced, _ = ingest_study("cmp", quiet=True, instance=instance)
    assert [(o.path, o.status) for o in replaced.outcomes] == [("candidate/again.csv", "ingested")]
    trials = stored_trials("cmp").set_index(["arm", "seed"])
    assert json.loads(trials.loc[("candidate", INBOX_BASE + 4), "command"]) == ["inbox", "candidate/again.csv"]


def test_a_load_sweep_export_rerun_at_another_point_leaves_the_first(instance, study_dir, inbox_root):
    write_study(study_dir, "sweep", LOAD_SWEEP)
    export = copy_export(inbox_root, "flat_concurrency4.json", "a")
    ingest_study("sweep", quiet=True, instance=instance)
    export.write_text(export.read_text().replace('"concurrency": 4', '"concurrency": 16'))
    ingest_study("sweep", quiet=True, instance=instance)
    trials = stored_trials("sweep")
    assert list(zip(trials["sweep_point"], trials["trial"])) == [("concurrency=16", INBOX_BASE)]  # same key, one point


def test_an_ingested_file_whose_new_version_is_rejected_keeps_its_trials_until_fixed(
        instance, study_dir, inbox_root):
    study_path = write_study(study_dir, "sweep", LOAD_SWEEP)
    export = copy_export(inbox_root, "flat_concurrency4.json", "a")
    ingest_study("sweep", quiet=True, instance=instance)
    export.write_text(export.read_text().replace('"concurrency": 4', '"concurrency": 12'))
    found, outcome = ingest_study("sweep", quiet=True, instance=instance)
    assert found.rejected[0].reason.startswith("it ran concurrency=12, which is no sweep point") and outcome is None
    assert stored_trials("sweep")["sweep_point"].tolist() == ["concurrency=4"]  # nothing lost
    assert ingest_study("sweep", quiet=True, instance=instance)[0].unchanged == 1  # not read again...
    study_path.write_text(study_path.read_text().replace("[1, 4, 16, 64]", "[1, 4, 12, 16, 64]"))
    fixed, _ = ingest_study("sweep", quiet=True, instance=instance)  # ...until the study changed
    assert [o.status for o in fixed.outcomes] == ["ingested"]
    trials = stored_trials("sweep")
    assert list(zip(trials["sweep_point"], trials["trial"])) == [("concurrency=12", INBOX_BASE)]


def test_a_study_seed_in_the_inbox_range_is_never_taken_for_an_ingested_one(study_dir, inbox_root, dagster_home):
    study = load_study(write_study(study_dir, "cmp", COMPARISON.replace("seeds: [1, 2]", "seeds: [1, 1000003]")))
    curve_csv(inbox_root / "cmp" / "control" / "seed_3.csv", 0.3)
    (outcome,) = inbox.scan(StudyGraph.of(study), Warehouse()).rejected
    assert outcome.reason == ("its seed key 1000003 is one of cmp's own seed keys (from 1,000,000 up, apart from the "
                              "study's own); give it another seed")
    assert inbox.inbox_range(StudyGraph.of(study), [("control", "1000003"), ("control", "1000004")]) == [("control", "1000004")]


def test_two_readers_of_one_inbox_at_once_never_hand_out_a_key_twice(study_dir, inbox_root, dagster_home):
    import threading

    study = load_study(write_study(study_dir, "sweep", LOAD_SWEEP))
    for i in range(12):
        export = copy_export(inbox_root, "flat_concurrency4.json", f"run{i:02d}")
        export.write_text(export.read_text().replace('"avg": 41.5', f'"avg": {41.5 + i}'))
    scans = []
    readers = [threading.Thread(target=lambda: scans.append(inbox.scan(StudyGraph.of(study), Warehouse()))) for _ in range(2)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    assert sorted(len(s.ingested) for s in scans) == [0, 12]  # the second waited, then found them seen
    keys = inbox.pending_keys(Warehouse(), study)
    assert len(keys) == len(set(keys)) == 12
    rows = Warehouse().read("sweep__inbox")
    assert sorted(rows["request_throughput_avg"]) == [41.5 + i for i in range(12)]


def test_scaled_out_trials_store_inbox_partitions_without_rows_empty(instance, study_dir, inbox_root):
    from dagster import MultiPartitionKey

    from benchmark_assets.defs.partitions import register
    from benchmark_assets.graph import StudyGraph

    study = load_study(write_study(study_dir, "sweep", LOAD_SWEEP))
    copy_export(inbox_root, "flat_concurrency4.json", "a")
    inbox.scan(StudyGraph.of(study), Warehouse())
    register(instance, StudyGraph.of(study))
    instance.add_dynamic_partitions("sweep__load_trials", [str(INBOX_BASE)])
    assets = build_assets(StudyGraph.of(study), trial_chunks=2)  # the celery graph, run here by the in-process executor
    for point, rows in (("concurrency=4", 1), ("concurrency=16", 0)):  # a point no file ran: stored empty
        result = materialize(assets, instance=instance, resources=study_resources(),
                             selection=[AssetKey(["sweep", "trials"])],
                             partition_key=str(MultiPartitionKey({"sweep_point": point, "trial": str(INBOX_BASE)})))
        assert result.success
        stored = stored_trials("sweep")
        assert (stored["sweep_point"] == point).sum() == rows


def test_a_file_failing_the_schema_is_rejected_alone_and_a_look_reads_at_most_its_limit(
        study_dir, inbox_root, dagster_home):
    study = load_study(write_study(study_dir, "sweep", LOAD_SWEEP))
    for run in ("a", "b", "c"):
        copy_export(inbox_root, "flat_concurrency4.json", run)
    bad = inbox_root / "sweep" / "b" / "profile_export_aiperf.json"
    bad.write_text(bad.read_text().replace('"benchmark_duration": {\n  "unit": "sec",\n  "avg": 3.0',
                                           '"benchmark_duration": {\n  "unit": "sec",\n  "avg": -3.0'))
    assert '"avg": -3.0' in bad.read_text()
    (inbox_root / "sweep" / "c" / "profile_export_aiperf.json").write_text(
        (inbox_root / "sweep" / "c" / "profile_export_aiperf.json").read_text().replace('"avg": 41.5', '"avg": 43.5'))
    first = inbox.scan(StudyGraph.of(study), Warehouse(), limit=2)
    assert [(o.path.split("/")[0], o.status) for o in first.outcomes] == [("a", "ingested"), ("b", "rejected")]
    assert "do not pass the trials schema" in first.outcomes[1].reason and "wall_seconds" in first.outcomes[1].reason
    assert first.waiting == 1 and "1 left for the next look" in first.summary()
    second = inbox.scan(StudyGraph.of(study), Warehouse(), limit=2)
    assert [(o.path.split("/")[0], o.status) for o in second.outcomes] == [("c", "ingested")]
    rows = Warehouse().read("sweep__inbox")
    assert sorted(rows["request_throughput_avg"]) == [41.5, 43.5] and sorted(rows["trial"]) == [INBOX_BASE,
                                                                                               INBOX_BASE + 1]


def test_a_copy_of_a_file_whose_new_version_was_rejected_is_still_a_copy(study_dir, inbox_root, dagster_home):
    study = load_study(write_study(study_dir, "sweep", LOAD_SWEEP))
    original = copy_export(inbox_root, "flat_concurrency4.json", "z_a")
    inbox.scan(StudyGraph.of(study), Warehouse())
    backup = copy_export(inbox_root, "flat_concurrency4.json", "b_backup")
    assert [o.status for o in inbox.scan(StudyGraph.of(study), Warehouse()).outcomes] == ["duplicate"]
    original.write_text(original.read_text().replace('"concurrency": 4', '"concurrency": 12'))
    assert [o.status for o in inbox.scan(StudyGraph.of(study), Warehouse()).outcomes] == ["rejected"]
    # z_a still holds the old content's trial, so the backup is still a copy of it: not a second trial.
    again = inbox.scan(StudyGraph.of(study), Warehouse())
    assert again.outcomes == [] and again.unchanged == 2 and backup.exists()
    assert inbox.pending_keys(Warehouse(), study) == [("concurrency=4", str(INBOX_BASE))]


def test_a_file_taking_one_trial_of_a_deleted_file_leaves_it_the_others(instance, study_dir, inbox_root):
    study = load_study(write_study(study_dir, "cmp", COMPARISON))
    multi = inbox_root / "cmp" / "control" / "multi.csv"
    multi.parent.mkdir(parents=True)
    multi.write_text("seed,step,loss\n" + "".join(f"{seed},{step},{1 / (1 + step) + seed / 100}\n"
                                                    for seed in (4, 5) for step in range(0, 50, 5)))
    ingest_study("cmp", quiet=True, instance=instance)
    multi.unlink()
    curve_csv(inbox_root / "cmp" / "control" / "seed_4.csv", 0.9)
    found, _ = ingest_study("cmp", quiet=True, instance=instance)
    assert [o.status for o in found.outcomes] == ["ingested"] and found.released == []
    trials = stored_trials("cmp").set_index("seed")
    assert sorted(trials.index) == [INBOX_BASE + 4, INBOX_BASE + 5]  # seed 5 stays, from the deleted file
    assert json.loads(trials.loc[INBOX_BASE + 4, "command"]) == ["inbox", "control/seed_4.csv"]
    kept = records(study).loc["control/multi.csv"]
    assert json.loads(kept["trial_keys"]) == [["control", str(INBOX_BASE + 5)]]


def test_a_changed_file_whose_run_never_came_is_stored_by_the_next_ingest(instance, study_dir, inbox_root):
    from benchmark_assets.defs.inbox_watch import event_mark

    study = load_study(write_study(study_dir, "cmp", COMPARISON))
    path = curve_csv(inbox_root / "cmp" / "control" / "seed_4.csv", 0.3)
    ingest_study("cmp", quiet=True, instance=instance)
    curve_csv(path, 0.7)  # changed in place: same key, new rows
    inbox.scan(StudyGraph.of(study), Warehouse(), mark=event_mark(instance))  # a sensor's look whose run then failed
    found, outcome = ingest_study("cmp", quiet=True, instance=instance)
    assert found.outcomes == [] and outcome is not None and outcome.ingested == 1
    values = json.loads(stored_trials("cmp")["curves_json"].iloc[0])["loss"]["values"]
    assert values[-1] == pytest.approx(1 / 46 + 0.7)
    assert ingest_study("cmp", quiet=True, instance=instance)[1] is None  # stored now: nothing waits


def test_ingested_curves_stand_for_the_arms_parameters_not_the_command(instance, study_dir, inbox_root):
    path = write_study(study_dir, "cmp", COMPARISON)
    for arm, offset in (("control", 0.3), ("candidate", 0.2)):
        curve_csv(inbox_root / "cmp" / arm / "seed_4.csv", offset)
    ingest_study("cmp", quiet=True, instance=instance)
    path.write_text(path.read_text().replace('"--out", "{output}"]', '"--out", "{output}"]\n  timeout_seconds: 99'))
    run_study("cmp", quiet=True, instance=instance)
    assert len(Warehouse().read("cmp__summaries")) == 6  # seeds 1, 2 and the files' seed 4, both arms
    path.write_text(path.read_text().replace("candidate: {shift: -0.05}", "candidate: {shift: -0.10}"))
    run_study("cmp", quiet=True, instance=instance)
    summaries = Warehouse().read("cmp__summaries")
    assert sorted(zip(summaries["arm"], summaries["seed"])) == [
        ("candidate", 1), ("candidate", 2), ("control", 1), ("control", 2), ("control", INBOX_BASE + 4)]


def test_aiperf_0_13_token_settings_are_read_and_a_mismatch_is_refused(study_dir, inbox_root, dagster_home, tmp_path):
    """aiperf 0.13 keeps its token settings in input_config.datasets[].prompts.{isl,osl}.mean: a
    run at osl 64 is refused by a study holding output_tokens 16, not ingested without a word."""
    document = json.loads((AIPERF / "phases_concurrency16.json").read_text())
    document["input_config"]["datasets"] = [{"name": "profiling", "prompts": {"isl": {"mean": 128, "stddev": 0},
                                                                               "osl": {"mean": 64, "stddev": 0}}}]
    path = tmp_path / "profile_export_aiperf.json"
    path.write_text(json.dumps(document))
    assert read_export(path).settings == {"concurrency": 16.0, "input_tokens": 128.0, "output_tokens": 64.0}

    study = load_study(write_study(study_dir, "sweep", LOAD_SWEEP))
    target = inbox_root / "sweep" / "osl64" / "profile_export_aiperf.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(document))
    (outcome,) = inbox.scan(StudyGraph.of(study), Warehouse()).rejected
    assert "it ran output_tokens=64, and sweep holds output_tokens at 16" in outcome.reason, outcome.reason

    document["input_config"]["datasets"].append({"name": "other", "prompts": {"osl": {"mean": 32}}})
    path.write_text(json.dumps(document))
    with pytest.raises(ExportFileError, match=r"its datasets ran different output_tokens \(\[32, 64\]\)"):
        read_export(path)
