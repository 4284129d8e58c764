"""Retention: `benchmark-assets prune` keeps the newest runs of each study, every run whose decision
changed something and every run holding a latest materialisation; a dry run lists and removes
nothing; what it removes leaves every asset partition materialised as before."""
import json
import os
from pathlib import Path

import pytest
from dagster import AssetKey

from benchmark_assets.cli import main
from benchmark_assets.defs import retention
from benchmark_assets.defs.runner import run_study
from benchmark_assets.graph import StudyGraph
from benchmark_assets.ledger import Ledger
from benchmark_assets.warehouse import Warehouse


def _state(instance) -> dict:
    """What the UI shows as materialised, per asset of the toy study."""
    graph = StudyGraph.load("toy")
    out = {}
    for node in graph.nodes.values():
        key = AssetKey(graph.asset_path(node.name))
        if node.partitioned_by:
            out[node.name] = instance.get_materialized_partitions(key)
        else:
            event = instance.get_latest_materialization_event(key)
            out[node.name] = event.run_id if event else None
    return out


def test_prune_keeps_the_newest_the_cited_and_the_current_and_a_dry_run_removes_nothing(instance, toy_study, capsys):
    for _ in range(3):  # --force: every trial measured again, so older trial runs are superseded
        run_study("toy", quiet=True, instance=instance, force=True)
    folders = sorted(p.name for p in _artifacts().iterdir() if not p.is_symlink())
    assert len(folders) == 3
    runs_before = {r.run_id for r in instance.get_runs()}
    ledger = Ledger(Warehouse()).read()
    first_decisions = set(ledger.sort_values("decided_at").groupby("subject")["run_id"].first())
    shown = _state(instance)

    assert main(["prune", "--keep", "1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove 2 artifact folders" not in out  # the first run's decisions are cited: its folder stays
    assert {r.run_id for r in instance.get_runs()} == runs_before and len(list(_artifacts().iterdir())) == 4

    removals = retention.plan(instance, [StudyGraph.of(toy_study)], ledger, keep=1)
    removed_runs = {r.name for r in removals if r.what == "run"}
    assert all(r.size > 0 for r in removals if r.what == "run")  # each run's event-log file, counted
    removed_folders = {os.path.basename(r.name) for r in removals if r.what == "artifacts"}
    assert removed_runs and not removed_runs & first_decisions  # the runs that first decided stay
    assert not removed_runs & {v for v in shown.values() if isinstance(v, str)}  # and runs holding a latest value
    newest = instance.get_runs(limit=1)[0]
    assert newest.run_id not in removed_runs
    assert removed_folders == set(folders) - first_decisions - {os.readlink(_artifacts() / "latest")}
    assert f"would remove {len(removed_folders)} artifact folders" in out

    assert main(["prune", "--keep", "1"]) == 0
    out = capsys.readouterr().out
    assert f"removed {len(removed_folders)} artifact folders" in out and "MB before" in out
    assert all(instance.get_run_by_id(run_id) is None for run_id in removed_runs)
    shards = [Path(instance.event_log_storage.path_for_shard(run_id)) for run_id in removed_runs]
    assert not any(path.exists() for path in shards)  # their event logs' files are gone, not just emptied
    kept = Path(instance.event_log_storage.path_for_shard(newest.run_id))
    assert kept.exists()
    assert _state(instance) == shown  # every partition still materialised, by the same runs
    assert not any((_artifacts() / name).exists() for name in removed_folders)
    assert (_artifacts() / "latest" / "report.md").exists()
    run_study("toy", quiet=True, instance=instance)  # and the study runs on as before


def test_a_run_holding_the_latest_trials_of_some_points_stays_though_old_and_cited_by_nothing(instance, toy_study):
    run_study("toy", quiet=True, instance=instance)  # A: the first decisions (cited), the catalog
    run_study("toy", quiet=True, instance=instance, force=True)  # B: every trial again, the same decisions
    run_study("toy", quiet=True, instance=instance, force=True, subjects=["alpha"])  # C: alpha's points again
    runs = instance.get_runs()  # newest first
    group = lambda run: run.tags["benchmark_assets/study_run"]  # noqa: E731
    groups = list(dict.fromkeys(group(r) for r in runs))
    assert len(groups) == 3
    middle = [r for r in runs if group(r) == groups[1]]
    trials_b = next(r.run_id for r in middle if r.tags["benchmark_assets/stage"] == "trials")
    latest = {}  # per trial partition, the run of its newest materialisation
    for record in instance.fetch_materializations(AssetKey(["toy", "trials"]), limit=10_000, ascending=True).records:
        latest[record.partition_key] = record.run_id
    assert trials_b in set(latest.values())  # B's trials of the points C did not rerun are still the latest
    assert not any(r.run_id in set(latest.values()) for r in runs if group(r) == groups[2])  # A's are not
    cited = set(retention._cited(Ledger(Warehouse()).read()).get("toy", {}))
    assert not cited & {r.run_id for r in middle}  # B repeated A's decisions: nothing cites it
    removals = retention.plan(instance, [StudyGraph.of(toy_study)], Ledger(Warehouse()).read(), keep=1)
    assert not [r for r in removals if r.what == "run"]  # A is cited, B holds, C is the newest


def test_sensor_states_of_an_earlier_version_are_pruned(instance, toy_study):
    instance.run_storage.set_cursor_values({"benchmark_assets/study_state/toy/abc123": json.dumps({"points": {}}),
                                            "benchmark_assets/study_state/toy": "{}"})
    removals = retention.plan(instance, [StudyGraph.of(toy_study)], None, keep=5)
    assert [r.name for r in removals if r.what == "state"] == ["benchmark_assets/study_state/toy/abc123"]
    retention.apply(instance, removals)
    left = instance.run_storage.get_cursor_values({"benchmark_assets/study_state/toy/abc123",
                                                   "benchmark_assets/study_state/toy"})
    assert list(left) == ["benchmark_assets/study_state/toy"]  # today's state stays


def test_the_retention_schedule_runs_only_when_the_team_sets_a_policy(monkeypatch):
    monkeypatch.delenv(retention.KEEP_RUNS_ENV, raising=False)
    assert retention.build_retention_schedule().default_status.value == "STOPPED"
    monkeypatch.setenv(retention.KEEP_RUNS_ENV, "30")
    assert retention.build_retention_schedule().default_status.value == "RUNNING"
    monkeypatch.setenv(retention.KEEP_RUNS_ENV, "thirty")  # a typo stops it, and says so; the definitions load
    schedule = retention.build_retention_schedule()
    assert schedule.default_status.value == "STOPPED" and "expected a whole number" in schedule.description
    with pytest.raises(ValueError, match="BENCHMARK_ASSETS_KEEP_RUNS='thirty': expected a whole number"):
        retention.keep_runs_setting()


def test_prune_refuses_a_policy_that_keeps_nothing(dagster_home, capsys):
    assert main(["prune", "--keep", "0"]) == 2
    assert "--keep: keep at least 1 run per study" in capsys.readouterr().err


def _artifacts():
    from benchmark_assets.artifacts import artifacts_dir

    return artifacts_dir("toy")
