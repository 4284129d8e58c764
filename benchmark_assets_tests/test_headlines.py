"""What each kind says it decided, in one line, and numbers as a person reads them in the UI."""
import math

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from benchmark_assets.defs.metadata import table_metadata
from benchmark_assets.display import display_number
from benchmark_assets.kinds.comparison.report import comparison_headline
from benchmark_assets.kinds.comparison.rules import BETTER, INCONCLUSIVE
from benchmark_assets.kinds.load_sweep.analysis import summary_headline
from benchmark_assets.kinds.ratchet.analysis import headline


def _verdicts(decisions, final=True):
    return pd.DataFrame({"constant": [f"c{i}" for i in range(len(decisions))], "decision": decisions,
                         "current": [0.5] * len(decisions), "proposed": [0.7] * len(decisions),
                         "cliff_warning": [""] * len(decisions), "final": final})


def test_the_ratchet_says_which_constants_change_and_how_the_others_ended():
    frame = _verdicts(["accept", "reject", "reject", "no_sensitivity", "accept"])
    assert headline(frame) == "2 of 5 constants accepted (c0 0.5 -> 0.7, c4 0.5 -> 0.7); 2 rejected, 1 insensitive"
    # no change proposed (today's value won on train, or was the only candidate) is not "insensitive"
    frame = _verdicts(["no_sensitivity", "no_sensitivity", "reject"]).assign(proposed=[0.5, 0.7, 0.7])
    assert headline(frame) == "0 of 3 constants accepted; 1 rejected, 1 today's best, 1 insensitive"
    assert headline(_verdicts(["reject"])) == "0 of 1 constants accepted; 1 rejected"
    interim = headline(_verdicts(["inconclusive", "reject"], final=False))
    assert interim == "0 of 2 constants accepted; 1 rejected, 1 not decided yet (interim: a validation round is due)"
    assert headline(_verdicts([])) == "no constant decided yet"


def test_the_load_sweep_names_its_best_points_and_its_frontier():
    summary = {"best_configurations": {
        "best_throughput": {"parameters": {"concurrency": 16}, "value": 123.456, "unit": "requests/s"},
        "best_latency_p99": {"parameters": {"concurrency": 1}, "value": 45.61, "unit": "ms"}},
        "pareto_sweep_points": ["a", "b"], "per_combination_metrics": [{}] * 5}
    assert summary_headline(summary) == ("best throughput: concurrency=16 (123.5 requests/s); best latency p99: "
                                         "concurrency=1 (45.61 ms); Pareto frontier: 2 of 5 points")


def test_the_comparison_says_its_verdict_on_the_decision_metric():
    decided = {"verdict": BETTER, "effect": 0.02, "relative_effect": 0.125, "confidence_level": 0.95,
               "ci_low": 0.01, "ci_high": 0.03, "reason": "a long reason the headline leaves to its own entry"}
    assert comparison_headline(decided, "final_loss") == (
        "Candidate is better on final_loss: candidate - control = +0.02 (+12.5%), 95% interval [+0.01, +0.03]")
    assert "nan" not in comparison_headline({**decided, "relative_effect": float("nan")}, "final_loss")
    nothing = {**decided, "verdict": INCONCLUSIVE, "effect": float("nan"), "reason": "no trial reported final_loss"}
    assert comparison_headline(nothing, "final_loss") == "Inconclusive on final_loss: no trial reported final_loss"


@given(st.floats(min_value=-1e300, max_value=1e300))
def test_a_displayed_number_keeps_four_significant_digits_and_drops_float_noise(value):
    shown = display_number(value)
    if abs(value) < 1e-9:
        assert shown == "0"
    else:
        assert math.isclose(float(shown), value, rel_tol=5e-4)
        assert len(shown.lstrip("-").split("e")[0].replace(".", "").lstrip("0")) <= 4


def test_a_table_shows_every_cell_as_text_with_noise_as_zero():
    table = table_metadata(pd.DataFrame({"constant": ["a"], "low": [-3.75e-12], "gain": [0.0123456], "n": [7],
                                         "missing": [float("nan")]}))
    assert table.records[0].data == {"constant": "a", "low": "0", "gain": "0.01235", "n": "7", "missing": ""}
    assert [c.name for c in table.schema.columns] == ["constant", "low", "gain", "n", "missing"]


def test_a_schema_check_lists_its_rules_in_words():
    import pandera.pandas as pa

    from benchmark_assets.schemas import describe_schema, error_exactly_when_failed

    schema = pa.DataFrameSchema({
        "seed": pa.Column(int, pa.Check.ge(0)), "share": pa.Column(float, pa.Check.in_range(0, 1), nullable=True),
        "status": pa.Column(str, pa.Check.isin(["ok", "failed"])), "error": pa.Column(str),
        "note": pa.Column(str, pa.Check.str_length(min_value=1), required=False)},
        unique=["seed"], checks=[error_exactly_when_failed()], strict=True)
    assert describe_schema(schema) == (
        "columns: seed (integer, >= 0), share (number, 0 <= x <= 1, may be empty), status (text, one of ok, failed), "
        "error (text), note (text, not empty, optional); each (seed) once; rows: a failed trial must record its "
        "error, a successful one none; no other columns")


def test_each_assets_check_says_its_rules(toy_study):
    from benchmark_assets.defs.assets import build_assets
    from benchmark_assets.graph import StudyGraph

    specs = {spec.name: spec.description for a in build_assets(StudyGraph.of(toy_study), trial_chunks=0)
             for spec in a.check_specs}
    assert "split (text, one of train, validation)" in specs["check_trials_schema"]
    assert "each (constant) once" in specs["check_verdicts_schema"]


def test_a_history_interval_shows_noise_as_zero():
    from benchmark_assets.history import _interval

    assert _interval(-3.75e-12, 3.75e-12) == "[0, 0]"
    assert _interval(-0.01234567, 0.5) == "[-0.01235, +0.5]"


def test_an_acceptance_bound_on_a_mean_names_its_measure_and_unit():
    from benchmark_assets.kinds.acceptance.spec import CriterionSpec

    latency = CriterionSpec(measure="wall_time_p95", below=0.25)
    assert latency.asked() == "wall_time_p95 mean <= 250 ms"
    assert latency.shown(0.022371) == "22.37 ms"  # as the report's table shows it
    memory = CriterionSpec(measure="peak_memory", above=2**20, below=3 * 2**20)
    assert memory.asked() == "peak_memory mean >= 1 MiB and peak_memory mean <= 3 MiB"
    assert CriterionSpec(measure="score", difference=(-2, -0.5)).asked() == "difference in [-2, -0.5]"


def test_the_suites_decision_table_says_verdicts_in_words():
    from benchmark_assets.kinds.acceptance.report import decision_table

    verdicts = pd.DataFrame({"benchmark": ["search"] * 2, "criterion": ["fast", "small"],
                             "asked": ["speed-up >= 2x", "reduction 70-80 %"], "scale": ["speed-up", "reduction"],
                             "shown_estimate": ["2.4x", "74.00 %"], "shown_interval": ["[2.1x, 2.8x]", "[68.0 %, 79.0 %]"],
                             "verdict": ["met", "not_met"], "repeats_needed": [-1, 12]})
    table = decision_table(verdicts)
    assert list(table["verdict"]) == ["met", "not met"]
    assert list(table["estimate"]) == ["speed-up 2.4x", "reduction 74.00 %"]
    assert list(table["to settle"]) == ["", "12 more repeats"]
