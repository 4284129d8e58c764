"""Optuna as the ratchet's proposer: ranged constants searched together on train, each proposal a
sweep point measured through Dagster, the best judged on validation, state in the warehouse."""
import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from benchmark_assets.kinds.ratchet.search import best_proposal, rounded
from benchmark_assets.studies import StudyError, load_study
from benchmark_assets_tests.conftest import POSTGRES_URL, service_unavailable, write_study

SEARCH_STUDY = """\
kind: ratchet
target: benchmark_assets_tests.search_target:evaluate
metric: score
scenarios: {count: 16, train_fraction: 0.5}
constants:
  a: {tier: 1, current: 0.2, range: [0.0, 1.0]}
  b: {tier: 1, current: 1.0, range: [0.25, 8.0], log: true}
  c: {tier: 2, current: 0, candidates: [0, 1]}
search: {sampler: tpe, trials: 12, batch: 4, seed: 0}
decision: {bootstrap_resamples: 200}
"""


def test_proposals_are_rounded_to_readable_keys():
    assert rounded(0.41234567) == 0.4123 and rounded(1234.5678) == 1235.0 and rounded(0.0) == 0.0


@pytest.mark.parametrize("constant,field,problem", [
    ("a: {tier: 1, current: 0.2, range: [0.0, 1.0], candidates: [0.1]}", "constants.a", "either candidates"),
    ("a: {tier: 1, current: 0.2}", "constants.a", "either candidates"),
    ("a: {tier: 1, current: 0.2, range: [1.0, 0.0]}", "constants.a", "is not low < high"),
    ("a: {tier: 1, current: 2.0, range: [0.0, 1.0]}", "constants.a", "outside range"),
    ("a: {tier: 1, current: 0.2, range: [0.0, 1.0], log: true}", "constants.a", "a log range needs low > 0"),
    ("a: {tier: 1, current: 0.2, candidates: [0.1, 0.2], log: true}", "constants.a", "log applies to a range"),
])
def test_a_bad_range_is_one_line_naming_the_constant(tmp_path, constant, field, problem):
    text = SEARCH_STUDY.replace("a: {tier: 1, current: 0.2, range: [0.0, 1.0]}", constant)
    with pytest.raises(StudyError) as raised:
        load_study(write_study(tmp_path, "bad", text))
    assert f": {field}: " in str(raised.value) and problem in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("replace,field,problem", [
    ("search: {sampler: nsga2, trials: 12}", "search.objectives", "nsga2 trades off several metrics"),
    ("search: {sampler: nsga2, objectives: {score: minimize, cost: minimize}}", "search.objectives.score",
     "differs from the study's direction"),
    ("search: {sampler: nsga2, objectives: {score: maximize, latency: minimize}}", "search.objectives",
     "unknown metrics ['latency']"),
    ("search: {sampler: tpe, objectives: {score: maximize}}", "search.objectives", "only the nsga2 sampler"),
])
def test_bad_search_settings_are_one_line(tmp_path, replace, field, problem):
    text = SEARCH_STUDY.replace("search: {sampler: tpe, trials: 12, batch: 4, seed: 0}", replace)
    with pytest.raises(StudyError) as raised:
        load_study(write_study(tmp_path, "bad", text))
    assert f": {field}: " in str(raised.value) and problem in str(raised.value)


def test_a_search_needs_a_ranged_constant_and_interactions_need_candidates(tmp_path):
    text = SEARCH_STUDY.replace("range: [0.0, 1.0]}", "candidates: [0.1, 0.5]}").replace(
        "range: [0.25, 8.0], log: true}", "candidates: [2.0]}")
    with pytest.raises(StudyError, match="search: no constant has a range to search"):
        load_study(write_study(tmp_path, "bad", text))
    with pytest.raises(StudyError, match=r"interactions\[0\]: 'a' has a range, not candidates"):
        load_study(write_study(tmp_path, "bad", SEARCH_STUDY + "interactions: [[a, c]]\n"))
    study = load_study(write_study(tmp_path, "plain", SEARCH_STUDY.replace(
        "search: {sampler: tpe, trials: 12, batch: 4, seed: 0}\n", "")))
    assert study.searched == ["a", "b"] and study.search.sampler == "tpe" and study.search.trials == 40
    assert [s.name for s in study.constant_sweeps()] == ["c"]  # ranged constants are searched, not swept


def test_nsga2_proposes_the_pareto_point_best_on_the_study_metric(tmp_path):
    text = SEARCH_STUDY.replace("search: {sampler: tpe, trials: 12, batch: 4, seed: 0}",
                                "search: {sampler: nsga2, trials: 8, objectives: {score: maximize, cost: minimize}}")
    study = load_study(write_study(tmp_path, "pareto", text))
    frame = pd.DataFrame({"state": ["complete"] * 4 + ["failed"], "sweep_point": ["p0", "p1", "p2", "p3", "p4"],
                          "train_score": [0.9, 0.8, 0.95, 0.95, 9.0], "train_cost": [2.0, 1.0, 3.0, 2.5, 0.0]})
    # p2 is dominated by p3 (same score, more cost); of the rest, p3 scores best.
    assert best_proposal(study, frame) == "p3"
    assert best_proposal(study, frame.assign(state="failed")) is None


def run_search_study(study_dir, instance, name: str, warehouse_url: str = ""):
    from benchmark_assets.defs.runner import run_study

    write_study(study_dir, name, SEARCH_STUDY)
    outcome = run_study(name, quiet=True, instance=instance, warehouse_url=warehouse_url)
    return load_study(study_dir / f"{name}.yaml"), outcome


def test_the_search_runs_through_dagster_and_its_best_proposal_is_judged_on_validation(instance, study_dir):
    import optuna

    from benchmark_assets.artifacts import latest_dir
    from benchmark_assets.ledger import LEDGER_TABLE
    from benchmark_assets.warehouse import Warehouse, default_url

    study, _outcome = run_search_study(study_dir, instance, "search")
    warehouse = Warehouse()
    proposals = warehouse.read("search__search")
    assert len(proposals) == 12 and (proposals["state"] == "complete").all()
    assert proposals["best"].sum() == 1 and proposals.loc[proposals["best"], "validated"].all()
    best = proposals.loc[proposals["best"]].iloc[0]
    assert best["train_score"] == proposals["train_score"].max()
    assert abs(best["param_a"] - 0.6) < 0.2  # the peak is at a = 0.6
    importance = [proposals[f"importance_{n}"].iloc[0] for n in ("a", "b")]
    assert sum(importance) == pytest.approx(1.0) and min(importance) > 0

    # Each proposal is a sweep point measured on the 8 train scenarios; only the best on validation too.
    trials = warehouse.read("search__trials")
    for row in proposals.itertuples():
        seeds = set(trials.loc[trials["sweep_point"] == row.sweep_point, "seed_id"])
        assert seeds == (set(range(16)) if row.best else set(range(8))) or row.sweep_point == "current"
    registered = set(instance.get_dynamic_partitions("search__sweep_points"))
    assert set(proposals["sweep_point"]) <= registered

    # Optuna's study lives in the warehouse database, with every proposal and its train value.
    stored = optuna.load_study(study_name=f"search__search__{study.search_fingerprint()[:12]}", storage=default_url())
    assert len(stored.trials) == 12
    assert sorted(t.values[0] for t in stored.trials) == pytest.approx(sorted(proposals["train_score"]))

    verdicts = warehouse.read("search__verdicts").set_index("constant")
    assert verdicts.loc["search", "decision"] == "accept" and verdicts["final"].all()
    assert verdicts.loc["search", "proposed_point"] == best["sweep_point"]
    assert verdicts.loc["search", "validation_delta"] > 0.1
    ledger = warehouse.read(LEDGER_TABLE)
    entry = ledger[ledger["subject"] == "search"]
    assert len(entry) == 1 and '"a": 0.2' in entry["baseline"].iloc[0]  # interim verdicts stayed out
    folder = latest_dir("search")
    report = (folder / "report.md").read_text()
    assert "## Search" in report and "| a |" in report and "12 of 12 proposals measured" in report
    patch = (folder / "proposed.patch").read_text()
    assert f"+  a: {{tier: 1, current: {best['param_a']:g}, range: [0.0, 1.0]}}" in patch
    assert (folder / "plots" / "search.png").exists()

    # A rerun continues the same Optuna study: the budget is spent, nothing new is proposed.
    from benchmark_assets.defs.runner import run_study

    run_study("search", quiet=True, instance=instance)
    again = warehouse.read("search__search")
    assert len(again) == 12 and again.loc[again["best"], "sweep_point"].iloc[0] == best["sweep_point"]
    assert len(optuna.load_study(study_name=stored.study_name, storage=default_url()).trials) == 12


def test_the_search_keeps_its_optuna_study_in_a_postgresql_warehouse(instance, study_dir):
    import optuna

    try:
        sa.create_engine(POSTGRES_URL).connect().close()
    except Exception as error:  # noqa: BLE001
        service_unavailable(f"PostgreSQL at {POSTGRES_URL} unreachable: {error.__class__.__name__}")
    name = f"search_pg_{uuid.uuid4().hex[:8]}"
    study, _ = run_search_study(study_dir, instance, name, warehouse_url=POSTGRES_URL)
    optuna_name = f"{name}__search__{study.search_fingerprint()[:12]}"
    try:
        stored = optuna.load_study(study_name=optuna_name, storage=POSTGRES_URL)
        assert len(stored.trials) == 12
        from benchmark_assets.warehouse import Warehouse

        verdicts = Warehouse(POSTGRES_URL).read(f"{name}__verdicts").set_index("constant")
        assert verdicts.loc["search", "decision"] == "accept"
    finally:
        optuna.delete_study(study_name=optuna_name, storage=POSTGRES_URL)
        with sa.create_engine(POSTGRES_URL).begin() as conn:
            for table in sa.inspect(conn).get_table_names():
                if table.startswith(f"{name}__"):
                    conn.execute(sa.text(f'DROP TABLE "{table}"'))


def test_rounding_keeps_a_proposal_inside_its_range():
    assert rounded(0.999985, 0.0, 1.0) == 1.0 and rounded(0.999985, 0.0, 0.99998) == 0.99998
    assert rounded(2.0e-5, 2.0e-5, 1.0) == 2.0e-5


def test_nsga2_prefers_a_pareto_point_no_worse_than_today_on_the_other_objectives(tmp_path):
    text = SEARCH_STUDY.replace("search: {sampler: tpe, trials: 12, batch: 4, seed: 0}",
                                "search: {sampler: nsga2, trials: 8, objectives: {score: maximize, cost: minimize}}")
    study = load_study(write_study(tmp_path, "pareto", text))
    frame = pd.DataFrame({"state": ["complete"] * 2, "sweep_point": ["costly", "cheap"],
                          "train_score": [0.951, 0.950], "train_cost": [8.0, 1.0]})
    assert best_proposal(study, frame) == "costly"  # no constraint known: best on the study's metric
    assert best_proposal(study, frame, today={"score": 0.8, "cost": 1.2}) == "cheap"  # costly costs more than today
    assert best_proposal(study, frame, today={"score": 0.8, "cost": 0.5}) == "costly"  # none keeps today's cost


STEPS_STUDY = """\
kind: ratchet
target: benchmark_assets_tests.search_target:evaluate_steps
metric: score
scenarios: {count: 12, train_fraction: 0.5}
constants:
  k: {tier: 1, current: 1, range: [1, 4]}
  flat: {tier: 2, current: 0.5, range: [0.0, 1.0]}
search: {sampler: tpe, trials: 12, batch: 1, seed: 0}
decision: {bootstrap_resamples: 200}
"""


def test_an_all_ranged_study_with_few_distinct_points_uses_its_whole_budget(instance, study_dir):
    """Every constant searched, one of them whole numbers in 1..4: Optuna asks for measured points
    again; those are told at once, so the run neither stalls nor stops early."""
    from benchmark_assets.defs.runner import run_study
    from benchmark_assets.warehouse import Warehouse

    write_study(study_dir, "steps", STEPS_STUDY)
    run_study("steps", quiet=True, instance=instance)
    proposals = Warehouse().read("steps__search")
    assert len(proposals) == 12 and proposals["state"].isin(["complete"]).all()
    assert proposals["param_k"].isin([1, 2, 3, 4]).all() and proposals["best"].sum() == 1
    assert proposals.loc[proposals["best"], "param_k"].iloc[0] == 3
    verdicts = Warehouse().read("steps__verdicts")
    assert verdicts["constant"].tolist() == ["search"] and verdicts["decision"].iloc[0] == "accept"
    # Selecting a searched constant selects the search.
    run_study("steps", quiet=True, instance=instance, subjects=["k"])
    assert Warehouse().read("steps__verdicts")["constant"].tolist() == ["search"]


def test_a_flat_search_has_no_importance_and_one_where_every_proposal_fails_still_settles(instance, study_dir):
    from benchmark_assets.defs.runner import run_study
    from benchmark_assets.ledger import LEDGER_TABLE
    from benchmark_assets.warehouse import Warehouse

    write_study(study_dir, "flat", SEARCH_STUDY.replace("search_target:evaluate", "search_target:evaluate_flat"))
    run_study("flat", quiet=True, instance=instance)
    proposals = Warehouse().read("flat__search")
    assert len(proposals) == 12 and proposals["importance_a"].isna().all()  # nothing to explain
    write_study(study_dir, "crash", SEARCH_STUDY.replace("search_target:evaluate", "search_target:evaluate_crash"))
    run_study("crash", quiet=True, instance=instance)
    proposals = Warehouse().read("crash__search")
    assert len(proposals) == 12 and (proposals["state"] == "failed").all() and not proposals["best"].any()
    verdicts = Warehouse().read("crash__verdicts")
    assert "search" not in set(verdicts["constant"]) and verdicts["final"].all()
    ledger = Warehouse().read(LEDGER_TABLE)
    assert "c" in set(ledger.loc[ledger["study"] == "crash", "subject"])  # the settled verdicts reached it
    from benchmark_assets.artifacts import latest_dir

    assert "Every proposal failed" in (latest_dir("crash") / "report.md").read_text()


def test_a_proposal_left_unnamed_by_a_dead_run_is_voided(tmp_path, monkeypatch):
    import optuna

    from benchmark_assets.kinds.ratchet.search import advance, optuna_study
    from benchmark_assets.kinds.ratchet.trials import run_trials

    study = load_study(write_study(tmp_path, "orphan", SEARCH_STUDY))
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna_study(study, url).ask()  # asked, never named: what a run killed between the two leaves
    trials = run_trials(study, study.sweep_points(), study.scenario_seeds)
    state = advance(study, trials, url)
    assert state.trials.loc[state.trials["number"] == 0, "state"].iloc[0] == "failed"
    assert (state.trials["state"] == "running").sum() == 4  # the first batch was asked all the same
    assert optuna.load_study(study_name=optuna_study(study, url).study_name, storage=url).trials[0].state.name == "FAIL"


def test_an_objective_the_target_never_returns_fails_its_proposals_with_the_reason(instance, study_dir):
    """NSGA-II on score and cost, where the target reports no cost for any proposal: each
    proposal fails saying so (it crashed the search with a KeyError), and the study settles."""
    from benchmark_assets.artifacts import latest_dir
    from benchmark_assets.defs.runner import run_study
    from benchmark_assets.warehouse import Warehouse

    text = SEARCH_STUDY.replace("search_target:evaluate", "search_target:evaluate_no_cost").replace(
        "search: {sampler: tpe, trials: 12, batch: 4, seed: 0}",
        "search: {sampler: nsga2, trials: 8, batch: 4, seed: 0, objectives: {score: maximize, cost: minimize}}")
    write_study(study_dir, "nocost", text)
    run_study("nocost", quiet=True, instance=instance)
    proposals = Warehouse().read("nocost__search")
    assert len(proposals) == 8 and (proposals["state"] == "failed").all() and not proposals["best"].any()
    assert proposals["reason"].str.startswith("the target returned no 'cost' (a search objective) on 8 of this "
                                              "proposal's 8 train trials; return it from the target").all()
    assert Warehouse().read("nocost__verdicts")["final"].all()
    report = (latest_dir("nocost") / "report.md").read_text()
    assert "- Failed proposals: 8 x the target returned no 'cost' (a search objective)" in report
