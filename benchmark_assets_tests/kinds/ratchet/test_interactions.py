"""Pairwise interaction sweeps: grid cells as sweep points, the best pair judged against each
constant's best alone, and the whole thing materialised through Dagster with its heat maps."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark_assets.kinds.ratchet.analysis import metric_table, paired_deltas
from benchmark_assets.kinds.ratchet.interactions import judge_interactions
from benchmark_assets.kinds.ratchet.trials import run_trials
from benchmark_assets.studies import load_study
from benchmark_assets_tests.conftest import write_study

INTERACTION_STUDY = """\
kind: ratchet
target: benchmark_assets_tests.interaction_target:evaluate
metric: score
scenarios: {count: 24, train_fraction: 0.5}
constants:
  x: {tier: 1, current: 0, candidates: [0, 1, 2]}
  y: {tier: 1, current: 0, candidates: [0, 1, 2]}
  u: {tier: 1, current: 0, candidates: [0, 1]}
  v: {tier: 1, current: 0, candidates: [0, 1]}
  w: {tier: 1, current: 0, candidates: [0, 1]}
interactions: [[x, y], [u, v]]
decision: {bootstrap_resamples: 200}
"""


@pytest.fixture
def pairs_study(study_dir):
    return load_study(write_study(study_dir, "pairs", INTERACTION_STUDY))


def judged(study, trials):
    train, validation = study.split
    return judge_interactions(trials, study.interaction_sweeps(), study.change_key, study.rules,
                              metric="score", maximize=True, train_ids=train, validation_ids=validation)


def test_synergy_is_accepted_and_a_clash_adds_nothing(pairs_study):
    study = pairs_study
    trials = run_trials(study, study.sweep_points(), study.scenario_seeds)
    verdicts, grid = judged(study, trials)
    verdicts = verdicts.set_index("pair")

    synergy = verdicts.loc["x x y"]
    # Alone neither moves the score, so each one's best alone is today's value.
    assert (synergy["first_alone"], synergy["second_alone"]) == (0.0, 0.0)
    assert (synergy["first_value"], synergy["second_value"]) == (2.0, 2.0)
    assert synergy["validation_vs_first"] == pytest.approx(0.4, abs=0.01)
    assert synergy["decision"] == "accept" and synergy["first_ci_low"] > 0.35
    assert synergy["n_validation"] == 12 and synergy["cells_measured"] == 9

    clash = verdicts.loc["u x v"]
    # Each helps by 0.1 alone; together they score 0.05 below today: the best cell moves one.
    assert clash["decision"] == "no_interaction" and "moves only" in clash["reason"]
    assert {clash["first_value"], clash["second_value"]} == {0.0, 1.0}
    assert grid.loc[grid["sweep_point"] == "u=1,v=1", "train_mean"].iloc[0] < \
        grid.loc[grid["sweep_point"] == "current", "train_mean"].iloc[0]


def shift(trials, point, split, amount, rng=None, sd=0.0):
    rows = (trials["sweep_point"] == point) & (trials["split"] == split)
    noise = rng.normal(0.0, sd, rows.sum()) if rng is not None else 0.0
    trials.loc[rows, "score"] = trials.loc[rows, "score"] + amount + noise


def test_pair_p_value_is_the_largest_of_three_sign_flip_tests_checked_against_scipy(pairs_study):
    study = pairs_study
    trials = run_trials(study, study.sweep_points(), study.scenario_seeds)
    rng = np.random.default_rng(3)
    # On train, x is best alone at 1 and y at 2; on validation the three comparisons differ.
    shift(trials, "x=1", "train", 0.05)
    shift(trials, "y=2", "train", 0.06)
    shift(trials, "x=1", "validation", 0.07, rng, 0.05)
    shift(trials, "y=2", "validation", 0.05, rng, 0.05)
    shift(trials, "x=2,y=2", "validation", -0.30, rng, 0.03)
    verdicts, _ = judged(study, trials)
    synergy = verdicts.set_index("pair").loc["x x y"]
    assert (synergy["first_alone"], synergy["second_alone"]) == (1.0, 2.0)
    table = metric_table(trials, "score")
    p_values = []
    for alone in ("x=1", "y=2", "current"):
        d = paired_deltas(table, "x=2,y=2", alone, study.split[1], 1.0)
        p_values.append(stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf,
                                               alternative="greater").pvalue)
    assert len(set(np.round(p_values, 12))) == 3  # three different tests
    assert synergy["p_value"] == pytest.approx(max(p_values), rel=1e-9)


def test_a_pair_better_than_each_best_alone_but_worse_than_today_is_rejected(pairs_study):
    study = pairs_study
    trials = run_trials(study, study.sweep_points(), study.scenario_seeds)
    shift(trials, "x=1", "train", 0.05)
    shift(trials, "y=1", "train", 0.05)
    # On validation the single changes lose 0.8 and the pair 0.6 (it starts 0.4 up): beats both, not today.
    shift(trials, "x=1", "validation", -0.85)
    shift(trials, "y=1", "validation", -0.85)
    shift(trials, "x=2,y=2", "validation", -1.0)
    verdicts, _ = judged(study, trials)
    pair = verdicts.set_index("pair").loc["x x y"]
    assert pair["validation_vs_first"] > 0.1 and pair["validation_vs_second"] > 0.1
    assert pair["validation_vs_current"] < 0 and pair["current_ci_high"] < 0
    assert pair["decision"] == "reject" and "today's values" in pair["reason"]


def test_accepted_pairs_always_have_both_corrected_intervals_above_zero(pairs_study):
    study = pairs_study
    base = run_trials(study, study.sweep_points(), study.scenario_seeds)
    rng = np.random.default_rng(0)
    decided = 0
    for _ in range(30):  # random validation noise on the pair cells: decisions and intervals must agree
        trials = base.copy()
        cells = trials["sweep_point"].str.contains(",") & trials["split"].eq("validation")
        trials.loc[cells, "score"] += rng.normal(rng.uniform(-0.45, 0.0), 0.05, cells.sum())
        verdicts, _ = judged(study, trials)
        for row in verdicts.itertuples():
            level_alpha = 1 - row.corrected_level
            accepted = row.decision == "accept"
            decided += accepted
            assert accepted == (row.first_ci_low > 0 and row.second_ci_low > 0 and row.current_ci_low > 0
                                and row.p_adjusted <= 0.05
                                and min(row.validation_vs_first, row.validation_vs_second,
                                        row.validation_vs_current) > 0.01
                                and row.p_value <= level_alpha + 1e-12) or row.decision == "no_interaction"
    assert decided > 0


def test_interactions_and_cumulative_validation_materialise_with_ledger_entries_heat_maps_and_patch(
        instance, pairs_study):
    from benchmark_assets.artifacts import latest_dir
    from benchmark_assets.defs.runner import run_study
    from benchmark_assets.ledger import LEDGER_TABLE
    from benchmark_assets.warehouse import Warehouse

    outcome = run_study("pairs", quiet=True, instance=instance)
    warehouse = Warehouse()
    trials = warehouse.read("pairs__trials")
    assert {"x=2,y=2", "u=1,v=1"} <= set(trials["sweep_point"])
    # Every declared point on all 24 scenarios, then two combinations on the 12 validation ones.
    combined = trials[~trials["sweep_point"].isin([p.key for p in pairs_study.sweep_points()])]
    assert set(combined["sweep_point"]) == {"x=2,y=2,u=1", "x=2,y=2,u=1,v=1"}
    assert set(combined["seed_id"]) == set(pairs_study.split[1]) and len(combined) == 2 * 12
    assert len(trials) == len(pairs_study.sweep_points()) * 24 + 2 * 12
    assert outcome.measured == len(trials)
    assert {str(k) for k in instance.get_dynamic_partitions("pairs__sweep_points")} >= {"x=2,y=2,u=1,v=1"}

    # The pair (+0.4) first, then u (+0.1 alone, still +0.1 on top); v helps alone (+0.1) but with
    # u it loses 0.15: dropped, and the patch holds x, y and u only.
    steps = warehouse.read("pairs__cumulative").set_index("change")
    assert steps["decision"].to_dict() == {"x x y": "keep", "u": "keep", "v": "drop"}
    assert steps.loc["u", "marginal_delta"] == pytest.approx(0.1, abs=0.005)
    assert steps.loc["v", "marginal_delta"] == pytest.approx(-0.15, abs=0.005)
    assert steps.loc["v", "ci_high"] < 0 and steps.loc["v", "own_delta"] == pytest.approx(0.1, abs=0.005)
    verdicts = warehouse.read("pairs__verdicts").set_index("constant")
    assert verdicts.loc["u", "decision"] == verdicts.loc["v", "decision"] == "accept"
    interactions = warehouse.read("pairs__interactions").set_index("pair")
    assert interactions.loc["x x y", "decision"] == "accept"
    assert interactions.loc["u x v", "decision"] == "no_interaction"
    ledger = warehouse.read(LEDGER_TABLE)
    pair_rows = ledger[ledger["subject"] == "x x y"]
    assert pair_rows["decision"].tolist() == ["accept", "keep"]  # judged, then kept in the patch
    assert '"x": 2.0' in pair_rows["proposal"].iloc[0]
    folder = latest_dir("pairs")
    report = (folder / "report.md").read_text()
    assert "## Interactions" in report and "x=2, y=2" in report
    assert (folder / "plots" / "interaction_x__y.png").stat().st_size > 5000
    assert (folder / "plots" / "interaction_u__v.png").exists()
    assert "## Cumulative validation" in report and "clashes with the changes kept before it" in report
    patch = (folder / "proposed.patch").read_text()
    assert "+  x: {tier: 1, current: 2," in patch and "+  u: {tier: 1, current: 1," in patch
    assert "v: {tier" not in "".join(line for line in patch.splitlines(True) if line.startswith("+"))
    assert ledger.loc[ledger["subject"] == "v", "decision"].tolist() == ["accept", "drop"]
    assert pd.read_csv(folder / "interactions.csv")["pair"].tolist() == ["x x y", "u x v"]


def test_build_up_supersedes_conflicts_keeps_what_is_included_and_asks_for_what_is_missing(pairs_study):
    from benchmark_assets.kinds.ratchet.cumulative import Change, build_up

    study = pairs_study
    trials = run_trials(study, study.sweep_points(), study.scenario_seeds)
    candidates = [Change("x x y", {"x": 2, "y": 2}, 0.4), Change("x", {"x": 1}, 0.3), Change("y", {"y": 2}, 0.2),
                  Change("u", {"u": 1}, 0.1), Change("w", {"w": 1}, 0.05)]
    built = build_up(trials, candidates, study.change_key, study.rules, metric="score", maximize=True,
                     validation_ids=study.split[1])
    assert built.steps["decision"].tolist() == ["keep", "superseded", "keep", "pending"]
    assert built.missing == "x=2,y=2,u=1" and built.kept == {"x": 2, "y": 2}
    assert "sets x differently" in built.steps["reason"].iloc[1]

    extra = run_trials(study, [study.point_for("x=2,y=2,u=1"), study.point_for("x=2,y=2,u=1,w=1")],
                       [s for s in study.scenario_seeds if s.seed_id in study.split[1]])
    built = build_up(pd.concat([trials, extra]), candidates, study.change_key, study.rules, metric="score",
                     maximize=True, validation_ids=study.split[1])
    assert built.missing is None
    assert built.steps["decision"].tolist() == ["keep", "superseded", "keep", "keep", "drop"]  # w adds nothing
    assert built.kept == {"x": 2, "y": 2, "u": 1}


def test_a_combination_whose_trials_fail_is_dropped_not_asked_for_again(instance, study_dir):
    from benchmark_assets.defs.runner import run_study
    from benchmark_assets.warehouse import Warehouse

    write_study(study_dir, "crashy", INTERACTION_STUDY.replace("interaction_target:evaluate",
                                                                "interaction_target:evaluate_clash_fails"))
    said = []
    run_study("crashy", quiet=True, instance=instance, log=said.append)
    steps = Warehouse().read("crashy__cumulative").set_index("change")
    assert steps.loc["v", "decision"] == "drop" and "its trials failed" in steps.loc["v", "reason"]
    assert sum("follow-up: cumulative validation" in line for line in said) == 2  # x=2,y=2,u=1 and the crash
    trials = Warehouse().read("crashy__trials")
    crashed = trials[trials["sweep_point"] == "x=2,y=2,u=1,v=1"]
    assert len(crashed) == 12 and (crashed["status"] == "failed").all()


def test_a_follow_up_that_its_own_trials_do_not_settle_is_not_repeated(instance, toy_study, monkeypatch):
    from benchmark_assets.defs.runner import run_study
    from benchmark_assets.kinds.base import Followup
    from benchmark_assets.kinds.ratchet.kind import RatchetKind

    asked = []

    def stubborn(self, study, read):
        asked.append(1)
        return Followup("always the same", {"current": ["3"]}, ("verdicts",))

    monkeypatch.setattr(RatchetKind, "followup", stubborn)
    said = []
    run_study("toy", quiet=True, instance=instance, log=said.append)
    assert len(asked) == 2 and any("not settled by its own trials, not repeated" in line for line in said)


def test_pairs_and_constants_are_one_family_in_both_verdict_tables(pairs_study):
    """The screened constants and pairs are corrected together, and the verdicts and the
    interactions compute the same family: a pair's adjusted p is the family's max-T over every
    column of every tested change, as ``family.judge_family`` gives it."""
    from benchmark_assets.kinds.ratchet.analysis import decide_ratchet
    from benchmark_assets.kinds.ratchet.family import Claim, aligned_deltas, judge_family
    from benchmark_assets.kinds.ratchet.interactions import pair_claims

    study = pairs_study
    trials = run_trials(study, study.sweep_points(), study.scenario_seeds)
    shift(trials, "u=1", "train", 0.05)  # u alone now clears the screen on train (v already gains 0.1)
    train, validation = study.split
    kwargs = {"metric": "score", "maximize": True, "train_ids": train, "validation_ids": validation}
    pairs, _ = judge_interactions(trials, study.interaction_sweeps(), study.change_key, study.rules,
                                  constants=study.constant_sweeps(), **kwargs)
    claims = pair_claims(trials, study.interaction_sweeps(), study.change_key, study.rules, **kwargs)
    verdicts = decide_ratchet(trials, study.constant_sweeps(), study.rules, other_claims=claims, **kwargs)
    verdicts, pairs = verdicts.set_index("constant"), pairs.set_index("pair")
    tested = sorted(verdicts.index[verdicts["tested"]])
    assert tested == ["u", "v"] and [c.name for c in claims] == ["x x y"]  # the clash moves one constant
    assert (verdicts["family_size"] == 3).all() and pairs.loc["x x y", "tested"]
    assert "3 changes tested" in pairs.loc["x x y", "reason"]

    table = metric_table(trials, "score")
    family = [Claim(name, (aligned_deltas(table, verdicts.loc[name, "proposed_point"], "current", validation, 1.0),))
              for name in tested] + claims
    expected = judge_family(family, "max_t", 0.05, rng=[study.rules.rng_seed])
    assert pairs.loc["x x y", "p_adjusted"] == pytest.approx(expected["x x y"].p_adjusted)
    for name in tested:
        assert verdicts.loc[name, "p_adjusted"] == pytest.approx(expected[name].p_adjusted)
    # Alone, the pair's correction would be milder: the family is what makes it count.
    alone = judge_family(claims, "max_t", 0.05, rng=[study.rules.rng_seed])
    assert alone["x x y"].p_adjusted <= expected["x x y"].p_adjusted
