"""The definitions leave a broken study file out alone: every other study is defined, and the
broken one is a sensor whose description and skip reason are its one-line error."""
from dagster import SkipReason, build_sensor_context

from benchmark_assets.definitions import build_definitions
from benchmark_assets.studies import discover
from benchmark_assets_tests.conftest import TOY_STUDY, write_study


def test_a_broken_study_file_is_left_out_alone_and_says_why(study_dir, dagster_home):
    write_study(study_dir, "typo", TOY_STUDY.replace("metric: score", "metrc: score"))
    write_study(study_dir, "bad-yaml", "kind: ratchet\nmetric: [\n")
    found = discover(study_dir)
    assert [s.name for s in found.studies] == ["toy"]
    assert sorted(e.path.rsplit("/", 1)[-1] for e in found.broken) == ["bad-yaml.yaml", "typo.yaml"]
    defs = build_definitions(found)
    repository = defs.get_repository_def()
    assert {key.path[0] for key in repository.asset_graph.get_all_asset_keys()} == {"toy"}
    sensor = repository.get_sensor_def("typo__invalid_study_file")
    assert "typo.yaml: metrc" in sensor.description and "Fix:" in sensor.description
    assert repository.has_sensor_def("bad_yaml__invalid_study_file")  # a name Dagster accepts
    with build_sensor_context() as context:
        skipped = sensor(context)
    assert isinstance(skipped, SkipReason) and skipped.skip_message.startswith("left out of the definitions: ")
    assert "typo.yaml: metrc" in skipped.skip_message

    # Fixed: the next tick says so (and, with a webserver, asks for the reload that brings it in).
    write_study(study_dir, "typo", TOY_STUDY)
    with build_sensor_context() as context:
        assert sensor(context).skip_message == "typo.yaml changed and loads now; reload the code location to bring it in"


def test_a_study_whose_definitions_cannot_be_built_is_left_out_alone(study_dir, dagster_home, monkeypatch):
    import benchmark_assets.definitions as definitions

    write_study(study_dir, "other", TOY_STUDY)
    real = definitions.study_definitions

    def failing(graph):
        if graph.name == "other":
            raise ValueError("a kind's bug")
        return real(graph)

    monkeypatch.setattr(definitions, "study_definitions", failing)
    repository = build_definitions(discover(study_dir)).get_repository_def()
    assert {key.path[0] for key in repository.asset_graph.get_all_asset_keys()} == {"toy"}
    sensor = repository.get_sensor_def("other__invalid_study_file")
    assert "ValueError: a kind's bug" in sensor.description
    # The file loads, but it is the one the definitions failed on: no reload (it would fail again).
    with build_sensor_context() as context:
        skipped = sensor(context).skip_message
    assert skipped.startswith("left out of the definitions: ") and "ValueError: a kind's bug" in skipped
