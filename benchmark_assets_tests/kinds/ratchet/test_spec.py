import pytest

from benchmark_assets.studies import StudyError, discover_studies, load_study
from benchmark_assets.sweep import CURRENT_POINT
from benchmark_assets_tests.conftest import ROOT, TOY_STUDY, write_study


def test_shipped_studies_load():
    studies = discover_studies(ROOT / "studies")
    assert "memory_ratchet" in [s.name for s in studies]
    memory = next(s for s in studies if s.name == "memory_ratchet")
    assert len(memory.spec.constants) == 20
    assert memory.split == (list(range(35)), list(range(35, 50)))
    points = memory.sweep_points()
    assert points[0].key == CURRENT_POINT
    assert len({p.key for p in points}) == len(points)
    assert "decay_rate=0.1" in [p.key for p in points]
    deep = next(s for s in studies if s.name == "memory_ratchet_deep")
    assert deep.searched == ["decay_rate", "recency_weight", "recency_half_life_days", "confidence_weight"]
    assert deep.search.sampler == "tpe" and len(deep.constant_sweeps()) == 16
    assert deep.spec.interactions and deep.validation_rounds == [list(range(50, 65)), list(range(65, 80))]
    assert "link_decay_per_hop=0.25,link_activation_weight=0.8" in [p.key for p in deep.sweep_points()]


def test_sweep_points_include_current_once_and_override_one_constant(toy_study):
    points = {p.key: p for p in toy_study.sweep_points()}
    assert set(points) == {"current", "alpha=0.1", "alpha=0.5", "alpha=0.7", "alpha=0.8", "alpha=1",
                           "beta=0.5", "beta=2", "gamma=2", "gamma=99"}
    assert points["alpha=0.7"].params == {"alpha": 0.7, "beta": 1.0, "gamma": 1.0}
    assert [p.key for p in toy_study.sweep_points(names=["beta"])] == ["current", "beta=0.5", "beta=2"]


BAD_INPUTS = [
    ("target: memroy", "target", "unknown target 'memroy'"),
    ("target: nowhere.module:run", "target", "cannot import module 'nowhere.module'"),
    ("  delta: {tier: 1, current: 1, candidates: [1, 2]}", "constants.delta", "unknown constant"),
    ("  alpha: {tier: 1, current: 0.3, candidates: [0.1, 0.3, 0.30]}", "constants.alpha.candidates",
     "duplicate candidate 0.3"),
    ("  alpha: {tier: 1, current: '0.3', candidates: [0.1]}", "constants.alpha.current", "expected a number, got '0.3'"),
    ("  alpha: {tier: 1, current: 0.3, candidates: []}", "constants.alpha.candidates", "at least 1 item"),
    ("scenarios: {count: 10, axes: {noise_ratio: [0.0, 0.9]}}", "scenarios.axes", "noise_ratio"),
    ("scenarios: {count: 1}", "scenarios.count", "greater than or equal to 2"),
    ("decision: {correction: bonferoni}", "decision.correction", "'max_t', 'holm', 'bonferroni', 'bh' or 'none'"),
    ("metric_name: score", "metric_name", "unknown field"),
    ("interactions: [[alpha, betta]]", "interactions[0]", "'betta' is not a constant of this study"),
    ("interactions: [[alpha, alpha]]", "interactions[0]", "pairs 'alpha' with itself"),
    ("interactions: [[alpha, beta], [beta, alpha]]", "interactions[1]", "listed twice"),
    ("interactions: [[alpha, beta, gamma]]", "interactions", "expected a list of pairs of constants"),
]


def _variant(replacement: str) -> str:
    key = replacement.strip().split(":", 1)[0]
    lines = TOY_STUDY.splitlines()
    if replacement.startswith("  "):
        name = replacement.strip().split(":")[0]
        replaced = [replacement if line.strip().startswith(f"{name}:") else line for line in lines]
        if replaced == lines:
            index = lines.index("constants:")
            replaced = lines[: index + 1] + [replacement] + lines[index + 1 :]
        return "\n".join(replaced) + "\n"
    kept = [line for line in lines if not line.startswith(f"{key}:")]
    return "\n".join(kept + [replacement]) + "\n"


@pytest.mark.parametrize("replacement,field,problem", BAD_INPUTS)
def test_bad_study_fails_at_load_with_one_line_naming_field_and_fix(tmp_path, replacement, field, problem):
    path = write_study(tmp_path, "bad", _variant(replacement))
    with pytest.raises(StudyError) as caught:
        load_study(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}")
    assert problem in message
    assert "Fix: " in message


def test_interaction_grid_cells_are_sweep_points_named_by_both_changes(tmp_path):
    path = write_study(tmp_path, "pairs", TOY_STUDY + "interactions: [[alpha, beta]]\n")
    study = load_study(path)
    keys = [p.key for p in study.sweep_points()]
    cells = [k for k in keys if "," in k]
    assert len(cells) == 5 * 2  # alpha's 5 other values x beta's 2 other values
    assert "alpha=0.7,beta=2" in cells and len(set(keys)) == len(keys)
    point = study.point_for("alpha=0.7,beta=2")
    assert point.params == {"alpha": 0.7, "beta": 2.0, "gamma": 1.0} and point.constant == "alpha,beta"
    assert study.change_key({"beta": 2.0, "alpha": 0.7}) == "alpha=0.7,beta=2"  # the file's order
    assert study.change_key({"alpha": 0.3}) == "current"  # today's value is no change
    for bad in ("beta=2,alpha=0.7", "delta=1", "alpha=x", "alpha"):
        with pytest.raises(KeyError):
            study.point_for(bad)
    # Selecting one constant drops the pair; selecting both keeps its grid.
    assert not [k for k in (p.key for p in study.sweep_points(names=["alpha"])) if "," in k]
    assert len([k for k in (p.key for p in study.sweep_points(names=["alpha", "beta"])) if "," in k]) == 10


def test_an_interaction_grid_too_large_to_run_is_refused(tmp_path):
    many = ", ".join(str(i) for i in range(2, 23))
    text = TOY_STUDY.replace("candidates: [0.1, 0.3, 0.5, 0.7, 0.8, 1.0]", f"candidates: [{many}]").replace(
        "beta:  {tier: 2, current: 1.0, candidates: [0.5, 1.0, 2.0]}",
        f"beta:  {{tier: 2, current: 1.0, candidates: [{many}]}}")
    path = write_study(tmp_path, "big", text + "interactions: [[alpha, beta]]\n")
    with pytest.raises(StudyError, match=r"interactions\[0\]: the alpha x beta grid has 441 cells"):
        load_study(path)


def test_memory_target_needs_every_constant_and_whole_numbers_where_whole(tmp_path):
    text = (ROOT / "studies" / "memory_ratchet.yaml").read_text()
    missing = "\n".join(line for line in text.splitlines() if not line.strip().startswith("link_delta:"))
    with pytest.raises(StudyError, match=r"constants: target 'memory' also needs \['link_delta'\]"):
        load_study(write_study(tmp_path, "missing", missing))
    fractional = text.replace("current: 3,    candidates: [1, 3, 5, 8]", "current: 3,    candidates: [1, 1.5, 5, 8]")
    with pytest.raises(StudyError, match=r"constants.link_seed_count.candidates\[1\]: .*whole numbers.*silently truncated"):
        load_study(write_study(tmp_path, "fractional", fractional))
    with pytest.raises(StudyError, match="metric: unknown metric 'ndcg_7'"):
        load_study(write_study(tmp_path, "metric", text.replace("metric: ndcg_5", "metric: ndcg_7")))


def test_invalid_yaml_and_unknown_study_names_are_one_line(tmp_path):
    path = write_study(tmp_path, "broken", "kind: ratchet\nconstants: {a: [1, 2}\n")
    with pytest.raises(StudyError, match="line 2: not valid YAML"):
        load_study(path)
    with pytest.raises(StudyError, match="no such study file"):
        load_study("does_not_exist", tmp_path)
    with pytest.raises(StudyError, match="kind: unknown study kind 'sweep'"):
        load_study(write_study(tmp_path, "kind", "kind: sweep\n"))
