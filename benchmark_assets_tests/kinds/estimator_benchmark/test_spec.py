"""The estimator benchmark's study: its catalog's star points, data set keys, estimators."""
import numpy as np

from benchmark_assets.kinds.estimator_benchmark.spec import split_dataset_key
from benchmark_assets.kinds.estimator_benchmark.trials import dataset
from benchmark_assets.studies import load_study
from benchmark_assets_tests.conftest import write_study

STUDY = """\
kind: estimator_benchmark
catalog:
  templates: [constant, reversal]
  metric_ids: [conversion_rate]
  effect_scale_grid: [0.5, 2.0]
  knob_grids: {n_visitors: [1000, 2000], baseline_rate: [0.2]}
  categorical_driver: is_returning
seeds: [3, 7]
estimators: [zero_effect, {name: deep, function: t_learner, options: {max_leaf_nodes: 31}}]
"""


def test_the_centre_of_the_star_is_on_every_knobs_curve_once(study_dir):
    study = load_study(write_study(study_dir, "bench", STUDY))
    points = study.star_points
    # effect_scale 1.0 (the default) is not in the core grid, so the centre is the n_visitors sweep's
    # entry at its default (2,000): it stands for every knob's default point, n_visitors once.
    centre = [e for e in study.entries if e.centre]
    assert [e.entry_id for e in centre] == ["constant.cr.n_visitors_2000", "reversal.cr.n_visitors_2000"]
    assert points["constant.cr.n_visitors_2000"] == [("n_visitors", 2000), ("baseline_rate", 0.05)]
    assert points["constant.cr.effect_scale_0.5"] == [("effect_scale", 0.5)]
    assert all(len({knob for knob, _ in p}) == len(p) for p in points.values())


def test_data_sets_are_entries_by_seeds_and_never_share_draws(study_dir):
    study = load_study(write_study(study_dir, "bench", STUDY))
    assert len(study.dataset_keys) == 2 * len(study.entries)
    assert split_dataset_key(study.dataset_keys[1]) == (study.entries[0].entry_id, 7)
    one, _ = dataset(study, "constant.cr.effect_scale_0.5~s3")
    other, _ = dataset(study, "reversal.cr.effect_scale_0.5~s3")  # same seed, same size, another entry
    again, _ = dataset(study, "constant.cr.effect_scale_0.5~s3")
    assert np.array_equal(one.outcome, again.outcome) and np.array_equal(one.features, again.features)
    assert abs(np.corrcoef(one.features[:, 0], other.features[:, 0])[0, 1]) < 0.1
    assert study.estimator("deep").reference == "t_learner" and study.estimator("deep").options == {
        "max_leaf_nodes": 31}
    assert study.estimator_fingerprints["deep"] != study.estimator_fingerprints["zero_effect"]


def test_a_data_set_size_past_the_sane_limit_needs_allow_large(tmp_path):
    import pytest

    from benchmark_assets.studies import StudyError

    huge = STUDY.replace("n_visitors: [1000, 2000]", "n_visitors: [1000, 20000000000000]")
    with pytest.raises(StudyError) as caught:
        load_study(write_study(tmp_path, "huge", huge))
    assert caught.value.field_path == "catalog.knob_grids.n_visitors[1]"
    assert "allow_large: true" in caught.value.fix
    study = load_study(write_study(tmp_path, "huge", huge + "allow_large: true\n"))  # meant: loads, nothing runs
    assert max(e.kwargs["n_visitors"] for e in study.entries) == 20_000_000_000_000
