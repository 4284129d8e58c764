"""Why a subject has its value: the history of decisions on it, in the UI and from `benchmark-assets why`."""
import pandas as pd
import pytest
from dagster import AssetKey

from benchmark_assets.defs.runner import run_study
from benchmark_assets.history import spec_changes
from benchmark_assets_tests.conftest import TOY_STUDY, study_ran


def test_spec_changes_name_each_setting_that_differs():
    old = "decision: {improvement_threshold: 0.01, correction: holm}\nseeds: [1, 2]\nmetric: score\n"
    new = "# a comment\ndecision: {improvement_threshold: 0.05, correction: holm}\nseeds: [1, 2, 3]\nnote: x\n"
    assert spec_changes(old, new) == ["decision.improvement_threshold: 0.01 -> 0.05", "metric: score -> (absent)",
                                      "note: (absent) -> x", "seeds: [1, 2] -> [1, 2, 3]"]
    assert spec_changes(old, old + "# only a comment\n") == []


@pytest.fixture(scope="module")
def decided_twice(tmp_path_factory, template_dagster_home):
    """alpha decided twice: then the improvement threshold is raised and it is decided again (once
    for the module: its tests only read the history)."""
    def steps(instance, studies):
        run_study("toy", quiet=True, instance=instance)
        path = studies / "toy.yaml"
        path.write_text(path.read_text().replace("decision: {bootstrap_resamples: 2000, correction: holm}",
                                                 "decision: {bootstrap_resamples: 2000, correction: holm, "
                                                 "improvement_threshold: 0.5}"))
        run_study("toy", quiet=True, instance=instance, subjects=["alpha"])

    return study_ran(tmp_path_factory, template_dagster_home, {"toy": TOY_STUDY}, steps)


@pytest.fixture
def two_decisions(decided_twice, monkeypatch):
    with decided_twice.opened(monkeypatch) as instance:
        yield instance


def test_every_decision_on_a_subject_is_in_the_ui_with_what_changed_and_why_the_run_ran(two_decisions):
    events = two_decisions.fetch_materializations(AssetKey(["toy", "verdicts"]), limit=10).records
    newest, oldest = (record.asset_materialization.metadata for record in events)
    history = newest["history"].value
    alpha = history.split("#### alpha", 1)[1]
    assert alpha.count("| 20") == 2  # two decisions, each row starts with its date
    first_row, second_row = [line for line in alpha.splitlines() if line.startswith("| 20")]
    assert "| reject |" in first_row and "decision.improvement_threshold: (absent) -> 0.5" in first_row
    assert "| accept |" in second_row and "(first decision)" in second_row
    assert f"/runs/{events[0].run_id}" in first_row and f"/runs/{events[1].run_id}" in second_row
    # One subject's own history, a click away: only alpha's table, the same rows.
    own = newest["history: alpha"].value
    assert "#### alpha" in own and "#### beta" not in own and own.count("| 20") == 2
    assert [line for line in own.splitlines() if line.startswith("| 20")] == [first_row, second_row]
    assert not any(name.startswith("history: ") and name != "history: alpha" for name in newest)  # this run's subject
    assert {"history: alpha", "history: beta", "history: gamma"} <= set(oldest)
    assert newest["run_reason"].value == "CLI: benchmark-assets run toy --constants alpha"
    assert oldest["run_reason"].value == "CLI: benchmark-assets run toy"
    assert newest["study_changes_since_previous_decision"].value == "decision.improvement_threshold: (absent) -> 0.5"
    assert oldest["study_changes_since_previous_decision"].value == "(first decision)"
    assert len(newest["git_commit"].value) >= 7 and newest["study_hash"].value != oldest["study_hash"].value


def test_why_prints_the_same_history(decided_twice, cli):
    env = decided_twice.env()
    why = cli("why", "toy", "alpha", env=env)
    assert why.returncode == 0, why.stderr
    rows = [line for line in why.stdout.splitlines() if line.startswith("| 20")]
    assert len(rows) == 2 and "| reject |" in rows[0] and "| accept |" in rows[1]
    assert "improvement_threshold: (absent) -> 0.5" in rows[0] and "0.3 -> 0.7" in rows[1]
    unknown = cli("why", "toy", "delta", env=env)
    assert unknown.returncode == 2  # cli.md's exit code for input there is nothing to show for
    assert "No decisions on 'delta' in toy yet; subjects with decisions: alpha, beta, gamma." in unknown.stderr


def test_a_history_shows_settings_as_a_person_reads_them():
    from benchmark_assets.history import history_markdown

    rows = pd.DataFrame({"decided_at": ["2026-12-06T03:05:50+00:00"] * 2, "decision": ["best", "accept"],
                         "baseline": ["", "0.3"], "proposal": ['{"concurrency": 16, "rate": 0.25}', "0.7"],
                         "effect": [150.0, 0.02], "interval": ["", "[+0.01, +0.03]"], "reason": ["r", "r"],
                         "study_changes": ["(first decision)"] * 2, "git_commit": ["a" * 40] * 2,
                         "run_id": ["b" * 36] * 2})
    best, accepted = [line for line in history_markdown("s", rows).splitlines() if line.startswith("| 2026")]
    assert "| concurrency=16, rate=0.25 |" in best and "->" not in best and "{" not in best
    assert "| 0.3 -> 0.7 |" in accepted
