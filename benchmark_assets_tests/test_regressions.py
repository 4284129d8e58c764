"""Regressions across commits: ledger levels ordered by a real git repository, the regressions in
force and their commit ranges, the UI's regressions asset with its check, the sensor and the CLI."""
import json
import subprocess

import numpy as np
import pandas as pd
from dagster import AssetKey, DagsterEventType, SensorResult, build_sensor_context, materialize

from benchmark_assets.defs.regression_watch import build_regression_sensor, build_regressions_asset, describe
from benchmark_assets.defs.resources import study_resources
from benchmark_assets.graph import StudyGraph
from benchmark_assets.ledger import LedgerEntry, Provenance
from benchmark_assets.regressions import find_regressions, git_order, regressions_markdown
from benchmark_assets.studies import load_study
from benchmark_assets_tests.conftest import free_port, write_study
from benchmark_assets_tests.kinds.load_sweep.test_assets import sweep_text
from benchmark_assets_tests.test_cli import run_cli

UP = lambda subject, metric: True  # noqa: E731 - a level where higher is better


def _git(folder, *args) -> str:
    return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}).stdout.strip()


def _commits(folder, count: int) -> list[str]:
    if not (folder / ".git").exists():
        _git(folder, "init", "-q")
    made = []
    for index in range(count):
        _git(folder, "commit", "-q", "--allow-empty", "-m", f"change {index}")
        made.append(_git(folder, "rev-parse", "HEAD"))
    return made


def _ledger(commits: list[str], values: list[float], *, subject="best_throughput", metric="rps",
            study_hash="h1") -> pd.DataFrame:
    return pd.DataFrame([{"study": "s", "subject": subject, "metric": metric, "effect": value, "ci_low": value - 0.5,
                          "ci_high": value + 0.5, "git_commit": commit, "study_hash": study_hash,
                          "decided_at": f"2026-11-{index // 24 + 1:02d}T{index % 24:02d}:00:00+00:00"}
                         for index, (commit, value) in enumerate(zip(commits, values))])


def test_a_drop_is_found_between_the_right_commits_with_the_unmeasured_ones_counted(tmp_path):
    commits = _commits(tmp_path, 14)
    measured = commits[:7] + commits[9:]  # two commits between were never benchmarked
    rng = np.random.default_rng(5)
    values = list(100 + rng.normal(0, 0.5, 7)) + list(60 + rng.normal(0, 0.5, 5))
    found, changes, series = find_regressions(_ledger(measured, values), UP, git_order(tmp_path))
    (row,) = found.to_dict("records")
    assert (row["from_commit"], row["to_commit"], row["commits_between"]) == (commits[6], commits[9], 2)
    assert row["confirmed"] and row["relative"] < -0.35 and row["order"].startswith("git history")
    assert list(changes["worse"]) == [True]
    report = regressions_markdown("s", found, changes, series)
    assert f"`{commits[6][:10]}` | `{commits[9][:10]}` | 2 |" in report and "**confirmed**" in report
    # Lower is better: the same drop is an improvement; a kind that tracks nothing reports nothing.
    assert find_regressions(_ledger(measured, values), lambda s, m: False, git_order(tmp_path))[0].empty
    nothing, _, none_tracked = find_regressions(_ledger(measured, values), lambda s, m: None, git_order(tmp_path))
    assert nothing.empty and none_tracked == {}
    assert "Nothing tracked" in regressions_markdown("s", nothing, changes.iloc[0:0], none_tracked)


def test_git_order_wins_over_the_order_runs_happened_in_and_side_branches_are_not_between(tmp_path):
    """A team benchmarks an old commit last (bisecting): it still sits where git puts it."""
    commits = _commits(tmp_path, 8)
    _git(tmp_path, "checkout", "-q", "-b", "side", commits[2])
    _commits(tmp_path, 5)  # unmerged work: not on the line, not counted between
    _git(tmp_path, "checkout", "-q", "-")
    order = [0, 1, 2, 3, 5, 6, 7, 4]  # commit 4 measured last
    values = [100.0 if i < 5 else 50.0 for i in order]
    found, _, series = find_regressions(_ledger([commits[i] for i in order], values), UP, git_order(tmp_path))
    (history,) = series.values()
    assert list(history["git_commit"]) == commits
    (row,) = found.to_dict("records")
    assert (row["from_commit"], row["to_commit"], row["commits_between"]) == (commits[4], commits[5], 0)


def test_unknown_commits_are_ordered_by_decision_dirty_runs_are_left_out_and_edits_start_anew():
    commits = [f"{i:040x}" for i in range(6)]
    ledger = _ledger(commits, [200.0, 200.0, 201.0, 100.0, 100.0, 99.0])
    found, changes, series = find_regressions(ledger, UP, {})
    (row,) = found.to_dict("records")
    assert row["order"].startswith("first decision") and row["commits_between"] == -1
    report = regressions_markdown("s", found, changes, series)
    assert "| ? |" in report and "ordered by first decision (git does not know every commit)" in report
    dirty = ledger.assign(git_commit=[c if i < 3 else c + "+dirty" for i, c in enumerate(commits)])
    assert find_regressions(dirty, UP, {})[0].empty  # uncommitted experiments are no history
    edited = ledger.assign(study_hash=["h1"] * 3 + ["h2"] * 3)  # the study file changed at the drop
    found_edited, _, series = find_regressions(edited, UP, {})
    assert found_edited.empty and len(series) == 2


def test_several_runs_at_one_commit_are_one_point_and_a_short_history_says_so(tmp_path):
    commits = _commits(tmp_path, 2)
    ledger = _ledger([commits[0]] * 3 + [commits[1]], [100.0, 120.0, 110.0, 110.0])
    found, changes, series = find_regressions(ledger, UP, git_order(tmp_path))
    (history,) = series.values()
    assert list(history["runs"]) == [3, 1] and list(history["weight"]) == [3.0, 1.0] and found.empty
    assert "Not enough history yet" in regressions_markdown("s", found, changes, series)


def _sweep(study_dir):
    return load_study(write_study(study_dir, "sweep", sweep_text(free_port())))


def _record(ledger, study, commits, values, *, start: int = 0):
    for index, (commit, value) in enumerate(zip(commits, values), start=start):
        entry = LedgerEntry(subject="best_throughput", decision="best", reason="r", metric="request_throughput_avg",
                            effect=value, ci_low=value - 1, ci_high=value + 1, confidence_level=0.95)
        ledger.append([entry], Provenance(study="sweep", kind="load_sweep", git_commit=commit,
                                          study_hash=study.spec_hash, run_id=f"run{index}",
                                          decided_at=f"2026-11-20T{index:02d}:00:00+00:00"))


def test_the_ui_asset_reports_regressions_and_its_check_warns_while_one_is_in_force(instance, study_dir):
    study = _sweep(study_dir)
    commits = _commits(study.path.parent, 9)
    ledger = study_resources()["ledger"].open()
    _record(ledger, study, commits, [160, 161, 159, 160, 162, 160, 50, 51, 49])
    result = materialize([build_regressions_asset(StudyGraph.of(study))], instance=instance, resources=study_resources())
    assert result.success
    evaluation = next(e.dagster_event.event_specific_data for e in
                      instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION))
    assert evaluation.check_name == "no_new_regression" and not evaluation.passed
    assert evaluation.severity.value == "WARN"
    warnings = [e.message for e in instance.all_logs(result.run_id) if e.level >= 30 and "new regression" in e.message]
    assert len(warnings) == 1 and "best_throughput (request_throughput_avg) went from 160 to 50" in warnings[0]
    materialization = result.asset_materializations_for_node("sweep__regressions")[0]
    assert f"`{commits[5][:10]}` | `{commits[6][:10]}` | 0 |" in materialization.metadata["report"].value
    assert materialization.metadata["confirmed"].value == 1
    assert "data:image/png;base64," in materialization.metadata["plot"].value
    again = materialize([build_regressions_asset(StudyGraph.of(study))], instance=instance, resources=study_resources())
    assert not [e for e in instance.all_logs(again.run_id) if "new regression" in e.message]  # flagged once


def test_the_sensor_flags_each_new_regression_once_and_refreshes_the_report(instance, study_dir):
    study = _sweep(study_dir)
    commits = _commits(study.path.parent, 10)
    ledger = study_resources()["ledger"].open()
    _record(ledger, study, commits[:6], [160, 161, 159, 160, 162, 160])
    sensor = build_regression_sensor([StudyGraph.of(study)])
    resources = {"ledger": study_resources()["ledger"]}

    def tick(cursor=None):
        with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
            return sensor(context)

    first = tick()
    assert isinstance(first, SensorResult) and json.loads(first.cursor)["flagged"] == []
    assert [r.asset_selection for r in first.run_requests] == [[AssetKey(["sweep", "regressions"])]]
    quiet = tick(first.cursor)
    assert not quiet.run_requests and quiet.skip_reason is not None  # nothing new in the ledger
    _record(ledger, study, commits[6:7], [50], start=6)  # one run at the new level: pending, not flagged
    assert json.loads(tick(first.cursor).cursor)["flagged"] == []
    _record(ledger, study, commits[7:9], [51, 49], start=7)
    second = tick(first.cursor)
    flagged = json.loads(second.cursor)["flagged"]
    assert flagged == [f"sweep|best_throughput|request_throughput_avg|{commits[5]}|{commits[6]}"]
    _record(ledger, study, commits[9:], [50], start=9)  # the same regression, one more run: not flagged again
    third = tick(second.cursor)
    assert json.loads(third.cursor)["flagged"] == flagged and len(third.run_requests) == 1
    row = {"subject": "s", "metric": "m", "level_before": 160.0, "level_now": 50.0, "relative": float("nan"),
           "from_commit": commits[5], "to_commit": commits[6]}
    assert describe("sweep", row) == (f"new regression in sweep: s (m) went from 160 to 50; it began between "
                                      f"commits {commits[5][:10]} and {commits[6][:10]}")


def test_the_cli_prints_the_report_and_exits_5_while_a_confirmed_regression_is_in_force(tmp_path, study_dir,
                                                                                        monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    study = _sweep(study_dir)
    commits = _commits(study_dir, 9)
    _record(study_resources()["ledger"].open(), study, commits[:6], [200.0] * 5 + [100.0])
    env = {"DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    pending = run_cli("regressions", "sweep", env_extra=env)
    assert pending.returncode == 0 and "pending (newest level: one commit)" in pending.stdout
    _record(study_resources()["ledger"].open(), study, commits[6:8], [100.0, 100.0], start=6)
    result = run_cli("regressions", "sweep", env_extra=env)
    assert result.returncode == 5, result.stderr
    assert "# Regressions across commits: sweep" in result.stdout and "**confirmed**" in result.stdout
    assert run_cli("regressions", "sweep", "--threshold", "0.9", env_extra=env).returncode == 0  # 50 % < 90 %
    _record(study_resources()["ledger"].open(), study, commits[8:], [200.0], start=8)
    _record(study_resources()["ledger"].open(), study, commits[8:], [200.0], start=9)
    recovered = run_cli("regressions", "sweep", env_extra=env)
    assert recovered.returncode == 0 and "None: every tracked history is at its best level" in recovered.stdout
