"""Bad suites get one line naming the file, the field and the fix; good ones load whole."""
import math

import pytest

from benchmark_assets.kinds.acceptance.spec import SIDES, AcceptanceStudy
from benchmark_assets.studies import StudyError, load_study
from benchmark_assets_tests.conftest import ROOT, write_study

GOOD = """\
kind: acceptance
repeats: 4
benchmarks:
  b:
    baseline: {call: "benchmark_assets_tests.acceptance_sides:baseline"}
    optimised: {call: "benchmark_assets_tests.acceptance_sides:optimised"}
    metrics: [score]
    number: 1
    criteria:
      - {measure: score, max_loss: 0.1}
"""


def test_the_shipped_example_loads_with_its_criteria_in_a_specs_words():
    study = load_study(ROOT / "studies" / "embedding_acceptance.yaml")
    assert isinstance(study, AcceptanceStudy) and study.benchmarks == ["search", "index_memory", "quality"]
    regions = {c.subject: c.criterion() for c in study.criteria}
    assert regions["search: faster search"].high == pytest.approx(0.5) and regions["search: faster search"].low == 0
    memory = regions["index_memory: smaller index"]
    assert (memory.effect, memory.low, memory.high) == ("ratio", pytest.approx(0.2), pytest.approx(0.3))
    kept = regions["quality: top-10 agreement kept"]
    assert kept.low == pytest.approx(0.98) and math.isinf(kept.high)
    assert regions["quality: similarity error"].effect == "mean"
    assert [study.order(r) for r in range(4)] == [SIDES, SIDES[::-1], SIDES, SIDES[::-1]]
    assert study.seed(3) == study.spec.base_seed + 3


def test_a_criteria_edit_keeps_the_measurements_a_side_edit_does_not(study_dir):
    study = load_study(write_study(study_dir, "s", GOOD))
    edited = load_study(write_study(study_dir, "s", GOOD.replace("max_loss: 0.1", "max_loss: 0.2")))
    assert study.benchmark_fingerprint("b") == edited.benchmark_fingerprint("b")
    moved = load_study(write_study(study_dir, "s", GOOD.replace("number: 1", "number: 3")))
    assert study.benchmark_fingerprint("b") != moved.benchmark_fingerprint("b")


BAD = [
    ("max_loss: 0.1}", "reduction: [0.55, 0.45]}", "criteria[0].reduction",
     "band low 0.55 is above high 0.45", "write the band as [low, high]"),
    ("measure: score,", "measure: scroe,", "criteria[0].measure", "unknown measure 'scroe'", "did you mean 'score'?"),
    ("measure: score,", "measure: wall_tme,", "criteria[0].measure", "unknown measure 'wall_tme'",
     "did you mean 'wall_time'?"),
    ("    optimised: {call: \"benchmark_assets_tests.acceptance_sides:optimised\"}\n", "", "benchmarks.b.optimised",
     "benchmark 'b' has only one side (no optimised)", "add optimised:"),
    ("repeats: 4", "repeats: 1", "repeats", "an interval needs at least 2 paired repeats", "set repeats: 2 or more"),
    ("measure: score,", "measure: wall_time_p95,", "criteria[0].measure",
     "wall_time_p95 is a quantile over the calls of one measurement", "set benchmarks.b.number to 20 or more"),
    ("max_loss: 0.1}", "max_loss: 0.1, below: 3}", "criteria[0]", "gives max_loss and below",
     "give exactly one region"),
    ("max_loss: 0.1}", "}", "criteria[0]", "gives no region", "add one of reduction"),
    ("optimised: {call: \"benchmark_assets_tests.acceptance_sides:optimised\"}",
     "optimised: {call: \"acceptance_sides.optimised\"}", "optimised.call",
     "'acceptance_sides.optimised' is not module:function", "write it like mypackage.bench:run_search"),
    ("max_loss: 0.1}", "speedup_at_least: -2}", "criteria[0].speedup_at_least", "greater than 0", ""),
    ("metrics: [score]", "metrics: [score, status]", "metrics[1]", "'status' names a column of the trials table",
     "another name"),
    ("max_loss: 0.1}", "above: 2, below: 1}", "criteria[0]", "above 2 is higher than below 1", "swap them"),
    ("max_loss: 0.1}", "difference: [-.inf, .inf]}", "criteria[0].difference", "both ends are open",
     "give a finite low or high end"),
    ("max_loss: 0.1}", "reduction: [.nan, 0.5]}", "criteria[0].reduction", "[nan, 0.5] holds .nan or .inf",
     "give finite numbers"),
    ("max_loss: 0.1}", "max_increase: .inf}", "criteria[0].max_increase", "inf holds .nan or .inf",
     "only difference takes .inf"),
    ("max_loss: 0.1}", "speedup_at_least: .inf}", "criteria[0].speedup_at_least", "holds .nan or .inf", ""),
    ("    optimised: {call: \"benchmark_assets_tests.acceptance_sides:optimised\"}\n",
     "    optimised: {command: [\"{python}\", \"bench.py\"]}\n", "benchmarks.b.optimised",
     "one side is a Python call and the other a command", "give both sides as call, or both as command"),
]


@pytest.mark.parametrize("old, new, field, problem, fix", BAD, ids=[b[3][:40] for b in BAD])
def test_bad_input_is_one_line_naming_the_field_and_the_fix(study_dir, old, new, field, problem, fix):
    assert old in GOOD
    path = write_study(study_dir, "bad", GOOD.replace(old, new))
    with pytest.raises(StudyError) as caught:
        load_study(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))
    assert field in caught.value.field_path, message
    assert problem in message and fix in message.split("Fix:")[1], message


def test_two_criteria_with_one_name_are_refused(study_dir):
    text = GOOD.replace("      - {measure: score, max_loss: 0.1}\n",
                        "      - {name: same, measure: score, max_loss: 0.1}\n"
                        "      - {name: same, measure: score, max_loss: 0.2}\n")
    with pytest.raises(StudyError, match=r"criteria\[1\]\.name: two criteria of 'b' are named 'same'"):
        load_study(write_study(study_dir, "dup", text))
