"""The leaderboard and the pairwise verdicts on synthetic trial tables, checked against scipy,
worked out independently, and by simulation under the null."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from benchmark_assets.kinds.estimator_benchmark.analysis import judge_pairs, leaderboard
from benchmark_assets.kinds.estimator_benchmark.schemas import leaderboard_schema, pairs_schema
from benchmark_assets.kinds.estimator_benchmark.simulate import null_claims, trial_table
from benchmark_assets.kinds.estimator_benchmark.spec import DecisionSpec
from benchmark_assets_tests.holm import holm_tails


def seeds_entries(values: np.ndarray) -> tuple[list[int], list[str]]:
    return list(range(values.shape[0])), [f"e{i}" for i in range(values.shape[1])]


def test_leaderboard_takes_the_interquartile_mean_and_ranks_on_the_decision_metric():
    rng = np.random.default_rng(1)
    errors = {"good": rng.uniform(0.1, 0.4, (3, 12)), "bad": rng.uniform(0.6, 1.2, (3, 12)),
              "middling": rng.uniform(0.3, 0.9, (3, 12))}
    errors["middling"][1, 4] = np.nan  # one failed trial: the entry drops out of every estimator's IQM
    seeds, entries = seeds_entries(errors["good"])
    table = leaderboard(trial_table(errors), list(errors), DecisionSpec(bootstrap_resamples=500), seeds, entries)
    leaderboard_schema().validate(table)
    assert list(table["estimator"]) == ["good", "middling", "bad"] and list(table["rank"]) == [1, 2, 3]
    good = table.set_index("estimator").loc["good"]
    # Every estimator is scored on the entries all of them completed: entry 4 is out for all three.
    for name in errors:
        row = table.set_index("estimator").loc[name]
        kept = np.delete(errors[name], 4, axis=1)
        assert row["pehe_normalised_iqm"] == pytest.approx(stats.trim_mean(kept.ravel(), 0.25))
        assert row["pehe_normalised_entries"] == 11
    assert good["pehe_normalised_low"] <= good["pehe_normalised_iqm"] <= good["pehe_normalised_high"]
    assert table.set_index("estimator").loc["middling", "failed"] == 1


def test_an_estimator_without_the_decision_metric_is_listed_unranked_last():
    errors = {"learner": np.full((2, 4), 0.3), "ate_only": np.full((2, 4), np.nan)}
    trials = trial_table(errors)
    trials.loc[trials["estimator"] == "ate_only", ["status", "error"]] = ["ok", ""]  # ok, but no PEHE
    table = leaderboard(trials, list(errors), DecisionSpec(bootstrap_resamples=200), *seeds_entries(errors["learner"]))
    assert list(table["estimator"]) == ["learner", "ate_only"]
    assert table["rank"].iloc[0] == 1 and pd.isna(table["rank"].iloc[1])
    pairs = judge_pairs(trials, list(table["estimator"]), DecisionSpec(), *seeds_entries(errors["learner"]))
    assert pairs["verdict"].tolist() == ["not_judged"]
    assert "no data set has pehe_normalised from both" in pairs["reason"].iloc[0]


def test_pairs_are_an_exact_sign_test_over_data_sets_with_holm_levels_worked_out_here():
    rng = np.random.default_rng(7)
    base = rng.uniform(0.2, 1.0, (2, 15))
    errors = {"a": base - 0.05 + rng.normal(0, 0.02, base.shape),   # better on almost every data set
              "b": base + rng.normal(0, 0.02, base.shape),
              "c": base + rng.normal(0, 0.02, base.shape)}          # b and c alike
    seeds, entries = seeds_entries(base)
    pairs = judge_pairs(trial_table(errors), ["a", "b", "c"], DecisionSpec(), seeds, entries).set_index("subject")
    pairs_schema().validate(pairs.reset_index())
    for subject, (x, y) in {"a vs b": ("a", "b"), "a vs c": ("a", "c"), "b vs c": ("b", "c")}.items():
        wins = int(np.sum(errors[x] < errors[y]))
        row = pairs.loc[subject]
        assert row["wins"] == wins and row["data_sets"] == 30
        assert row["probability_better"] == pytest.approx(wins / 30)
        assert row["p_value"] == pytest.approx(stats.binomtest(wins, 30).pvalue)
        difference = (errors[x] - errors[y]).ravel()
        low, high = stats.ttest_1samp(difference, 0).confidence_interval(0.95)
        assert (row["difference_low"], row["difference_high"]) == pytest.approx((low, high))
    # Holm over three pairs: the smallest p at 0.05/3, the next at 0.05/2 while it goes on; after
    # it stops, every later pair keeps the level it stopped at.
    tails = holm_tails(pairs["p_value"])
    assert pairs["interval_level"].to_dict() == pytest.approx({s: 1 - t for s, t in tails.items()})
    for _subject, row in pairs.iterrows():
        low, high = stats.binomtest(int(row["wins"]), int(row["wins"] + row["losses"])).proportion_ci(
            row["interval_level"], method="exact")
        assert (row["low"], row["high"]) == pytest.approx((low, high))
    assert pairs.loc["a vs b", "verdict"] == "better" and pairs.loc["a vs c", "verdict"] == "better"
    assert pairs.loc["b vs c", "verdict"] == "no_difference_shown"
    assert "a beats b on pehe_normalised over this catalog" in pairs.loc["a vs b", "reason"]


def test_a_pair_ranked_the_wrong_way_round_is_worse_and_qini_counts_higher_as_better():
    rng = np.random.default_rng(3)
    qini = {"ranks_well": rng.uniform(0.6, 0.9, (2, 10)), "ranks_badly": rng.uniform(0.0, 0.3, (2, 10))}
    decision = DecisionSpec(metric="qini")
    pairs = judge_pairs(trial_table(qini, "qini"), ["ranks_badly", "ranks_well"], decision, *seeds_entries(
        qini["ranks_well"]))
    assert pairs["verdict"].tolist() == ["worse"] and pairs["high"].iloc[0] < 0.5
    assert pairs["reason"].iloc[0].startswith("ranks_well beats ranks_badly on qini")


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 4), st.integers(1, 12), st.integers(0, 2**16), st.sampled_from(["holm", "bonferroni", "none"]),
       st.floats(-0.3, 0.3))
def test_every_verdict_agrees_with_the_interval_shown(seeds, entries, seed, correction, shift):
    rng = np.random.default_rng(seed)
    errors = {name: rng.uniform(0, 1, (seeds, entries)) + offset for name, offset in
              (("x", 0.0), ("y", shift), ("z", -shift))}
    errors["y"][rng.uniform(size=(seeds, entries)) < 0.1] = np.nan  # some failed trials
    pairs = judge_pairs(trial_table(errors), ["x", "y", "z"], DecisionSpec(correction=correction),
                        list(range(seeds)), [f"e{i}" for i in range(entries)])
    pairs_schema().validate(pairs)
    judged = pairs[pairs["verdict"] != "not_judged"]
    assert ((judged["verdict"] == "better") == (judged["low"] > 0.5)).all()
    assert ((judged["verdict"] == "worse") == (judged["high"] < 0.5)).all()


NULL_RUNS = 400  # the CI size; benchmarks/calibration.py runs 2,000


@pytest.mark.calibration
def test_with_no_real_difference_anywhere_a_false_verdict_stays_under_five_percent():
    """Benchmarks of four estimators with exchangeable errors (heavy-tailed, entries that differ a
    lot, two seeds): Holm across the six pairs keeps the chance of any verdict at or below 5 %; a
    binomial test must not place the rate above it."""
    claims = null_claims(np.random.default_rng(20261201), NULL_RUNS)
    assert stats.binomtest(claims, NULL_RUNS, 0.05, alternative="greater").pvalue > 0.01, claims / NULL_RUNS


@pytest.mark.calibration
def test_the_null_check_is_large_enough_to_fail_verdicts_without_the_correction():
    """The same check on the same benchmarks, judged pair by pair without Holm: the binomial test
    rejects, so NULL_RUNS would catch a rule that forgot the six pairs are a family."""
    claims = null_claims(np.random.default_rng(20261201), NULL_RUNS, correction="none")
    assert stats.binomtest(claims, NULL_RUNS, 0.05, alternative="greater").pvalue < 0.01, claims / NULL_RUNS


def test_each_estimator_keeps_its_colour_in_every_panel_and_the_legend_names_them_all(tmp_path, monkeypatch):
    """An average-effect-only estimator is missing from the PEHE panel: the others keep their
    colours there, and the one legend still names it."""
    import matplotlib.colors

    from benchmark_assets.kinds.estimator_benchmark import report

    rows = []
    for estimator in ("difference_in_means", "t_learner"):
        for value in (1000, 3000):
            for seed in range(3):
                rows.append({"knob": "n_visitors", "knob_value": value, "estimator": estimator,
                             "pehe_normalised": float("nan") if estimator == "difference_in_means" else 0.5 + seed / 10,
                             "ate_error_normalised": 0.1 + seed / 100, "qini": 0.2})
    figures = []
    monkeypatch.setattr(report, "_save", lambda figure, folder, name: figures.append(figure) or tmp_path / name)
    report.plot_knob(tmp_path, "n_visitors", pd.DataFrame(rows), ["difference_in_means", "t_learner"])
    (figure,) = figures
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["t_learner", "difference_in_means"]
    pehe, ate = figure.axes[0], figure.axes[1]
    colour = {axis: {bars.get_label(): matplotlib.colors.to_hex(bars.lines[0].get_color()) for bars in axis.containers}
              for axis in (pehe, ate)}
    assert set(colour[pehe]) == {"t_learner"} and set(colour[ate]) == {"t_learner", "difference_in_means"}
    assert colour[pehe]["t_learner"] == colour[ate]["t_learner"] != colour[ate]["difference_in_means"]


def test_the_run_line_says_what_was_up_to_date_only_when_something_was():
    from benchmark_assets.kinds import get_kind
    from benchmark_assets.outcomes import RunOutcome, TrialResults

    kind = get_kind("estimator_benchmark")

    def line(measured, up_to_date):
        return kind.run_summary(RunOutcome(study=None, seconds=6.25, stages=(), measured=measured, kept=0,
                                           up_to_date=up_to_date, points=6, results=TrialResults()))

    assert line(144, 0) == "Ran 144 new trials (estimator x data set), over 6 estimators, in 6.2 s (0 Dagster runs)."
    assert "; 120 others were already up to date" in line(24, 120)
    assert line(0, 144).startswith("Ran no trial (all 144 were already up to date)")
