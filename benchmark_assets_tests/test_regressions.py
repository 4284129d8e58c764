"""Regressions across commits: ledger histories ordered by a real git repository, the steps and
their commit ranges, the UI's regressions asset with its check, the sensor and the CLI."""
import json
import subprocess

import numpy as np
import pandas as pd
from dagster import AssetKey, DagsterEventType, SensorResult, SkipReason, build_sensor_context, materialize

from benchmark_assets.defs.regression_watch import build_regression_sensor, build_regressions_asset, describe
from benchmark_assets.defs.resources import study_resources
from benchmark_assets.ledger import LedgerEntry, Provenance
from benchmark_assets.regressions import find_regressions, git_order, regressions_markdown
from benchmark_assets_tests.test_cli import run_cli


def _git(folder, *args) -> str:
    return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}).stdout.strip()


def _commits(folder, count: int) -> list[str]:
    _git(folder, "init", "-q")
    made = []
    for index in range(count):
        _git(folder, "commit", "-q", "--allow-empty", "-m", f"change {index}")
        made.append(_git(folder, "rev-parse", "HEAD"))
    return made


def _ledger(commits: list[str], values: list[float], *, study="toy", subject="alpha", metric="score") -> pd.DataFrame:
    rows = []
    for index, (commit, value) in enumerate(zip(commits, values)):
        rows.append({"study": study, "subject": subject, "metric": metric, "effect": value, "ci_low": value - 0.05,
                     "ci_high": value + 0.05, "git_commit": commit,
                     "decided_at": f"2026-11-{index // 24 + 1:02d}T{index % 24:02d}:00:00+00:00"})
    return pd.DataFrame(rows)


def test_a_drop_is_found_between_the_right_commits_with_the_unmeasured_ones_counted(tmp_path):
    commits = _commits(tmp_path, 14)
    measured = commits[:7] + commits[9:]  # two commits between were never benchmarked
    rng = np.random.default_rng(5)
    values = list(1.0 + rng.normal(0, 0.01, 7)) + list(0.6 + rng.normal(0, 0.01, 5))
    steps, series = find_regressions(_ledger(measured, values), lambda s, m: True, git_order(tmp_path))
    (step,) = steps.to_dict("records")
    assert (step["from_commit"], step["to_commit"]) == (commits[6], commits[9])
    assert step["commits_between"] == 2 and step["regression"] and step["newest"]
    assert step["size"] == np.float64(step["level_after"] - step["level_before"]) and step["relative"] < -0.35
    assert step["order"] == "git history"
    report = regressions_markdown("toy", steps, series)
    assert f"`{commits[6][:10]}` | `{commits[9][:10]}` | 2 |" in report and "**yes, newest**" in report
    # The same drop in a metric where lower is better is an improvement, not a regression.
    better, _ = find_regressions(_ledger(measured, values), lambda s, m: False, git_order(tmp_path))
    assert not better["regression"].any()
    # No direction known: the step is reported, not called a regression.
    unknown, _ = find_regressions(_ledger(measured, values), lambda s, m: None, git_order(tmp_path))
    assert len(unknown) == 1 and not unknown["regression"].any()


def test_git_order_wins_over_the_order_runs_happened_in(tmp_path):
    """A team benchmarks an old commit last (bisecting): it still sits where git puts it."""
    commits = _commits(tmp_path, 8)
    order = [0, 1, 2, 3, 5, 6, 7, 4]  # commit 4 measured last
    values = [1.0 if i < 5 else 0.5 for i in order]
    steps, series = find_regressions(_ledger([commits[i] for i in order], values), lambda s, m: True,
                                     git_order(tmp_path))
    assert list(series[("alpha", "score")]["git_commit"]) == commits
    (step,) = steps.to_dict("records")
    assert (step["from_commit"], step["to_commit"], step["commits_between"]) == (commits[4], commits[5], 0)


def test_commits_git_does_not_know_are_ordered_by_their_first_decision():
    commits = [f"{i:040x}" for i in range(6)]
    steps, _ = find_regressions(_ledger(commits, [2.0, 2.0, 2.01, 1.0, 1.0, 0.99]), lambda s, m: True, {})
    (step,) = steps.to_dict("records")
    assert step["order"].startswith("first decision") and step["commits_between"] == -1
    assert "| ? |" in regressions_markdown("toy", steps, {})


def test_several_runs_at_one_commit_are_one_point_and_a_short_history_says_so(tmp_path):
    commits = _commits(tmp_path, 2)
    ledger = _ledger([commits[0]] * 3 + [commits[1]], [1.0, 1.2, 1.1, 1.1])
    steps, series = find_regressions(ledger, lambda s, m: True, git_order(tmp_path))
    assert list(series[("alpha", "score")]["runs"]) == [3, 1] and steps.empty
    assert "Not enough history yet" in regressions_markdown("toy", steps, series)


def _record(ledger, commits, values, *, start: int = 0):
    for index, (commit, value) in enumerate(zip(commits, values), start=start):
        entry = LedgerEntry(subject="alpha", decision="accept", reason="r", metric="score", baseline=0.3,
                            proposal=0.7, effect=value, ci_low=value - 0.02, ci_high=value + 0.02,
                            confidence_level=0.95)
        ledger.append([entry], Provenance(study="toy", kind="ratchet", git_commit=commit, study_hash="h",
                                          run_id=f"run{index}", decided_at=f"2026-11-20T{index:02d}:00:00+00:00"))


def test_the_ui_asset_reports_the_steps_and_its_check_warns_on_a_new_regression(instance, toy_study):
    commits = _commits(toy_study.path.parent, 9)
    ledger = study_resources()["ledger"].open()
    _record(ledger, commits, [0.16, 0.161, 0.159, 0.16, 0.162, 0.16, 0.05, 0.051, 0.049])
    result = materialize([build_regressions_asset(toy_study)], instance=instance, resources=study_resources())
    assert result.success
    evaluation = next(e.dagster_event.event_specific_data for e in
                      instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION))
    assert evaluation.check_name == "no_new_regression" and not evaluation.passed
    assert evaluation.severity.value == "WARN"
    materialization = result.asset_materializations_for_node("toy__regressions")[0]
    report = materialization.metadata["report"].value
    assert f"`{commits[5][:10]}` | `{commits[6][:10]}` | 0 |" in report
    assert materialization.metadata["newest_regressions"].value == 1
    assert "data:image/png;base64," in materialization.metadata["plot"].value
    stored = study_resources()["results"].open().read("toy__regressions")
    assert list(stored[["from_commit", "to_commit"]].iloc[0]) == [commits[5], commits[6]]


def test_the_sensor_flags_each_new_regression_once_and_refreshes_the_report(instance, toy_study):
    commits = _commits(toy_study.path.parent, 10)
    ledger = study_resources()["ledger"].open()
    _record(ledger, commits[:6], [0.16, 0.161, 0.159, 0.16, 0.162, 0.16])
    sensor = build_regression_sensor([toy_study])
    resources = {"ledger": study_resources()["ledger"]}

    def tick(cursor=None):
        with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
            return sensor(context)

    first = tick()
    assert isinstance(first, SensorResult) and json.loads(first.cursor)["flagged"] == []
    assert [r.asset_selection for r in first.run_requests] == [[AssetKey(["toy", "regressions"])]]
    assert isinstance(tick(first.cursor), SkipReason)  # nothing new in the ledger
    _record(ledger, commits[6:9], [0.05, 0.051, 0.049], start=6)
    second = tick(first.cursor)
    flagged = json.loads(second.cursor)["flagged"]
    assert flagged == [f"toy|alpha|score|{commits[5]}|{commits[6]}"]
    _record(ledger, commits[9:], [0.05], start=9)  # the same regression, one more run: not flagged again
    third = tick(second.cursor)
    assert json.loads(third.cursor)["flagged"] == flagged and len(third.run_requests) == 1
    row = {"subject": "alpha", "metric": "score", "level_before": 0.16, "level_after": 0.05, "relative": -0.6875,
           "from_commit": commits[5], "to_commit": commits[6]}
    assert describe("toy", row) == (f"new regression in toy: alpha (score) went from 0.16 to 0.05 (-68.8 %) between "
                                    f"commits {commits[5][:10]} and {commits[6][:10]}")


def test_the_cli_prints_the_report_and_exits_5_on_a_new_regression(tmp_path, study_dir, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    commits = _commits(study_dir, 8)
    _record(study_resources()["ledger"].open(), commits, [0.2] * 5 + [0.1] * 3)
    env = {"DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    result = run_cli("regressions", "toy", env_extra=env)
    assert result.returncode == 5, result.stderr
    assert "# Regressions across commits: toy" in result.stdout and "**yes, newest**" in result.stdout
    _record(study_resources()["ledger"].open(), commits[-1:], [0.1], start=8)
    assert run_cli("regressions", "toy", "--threshold", "0.9", env_extra=env).returncode == 0  # a 50 % drop < 90 %
