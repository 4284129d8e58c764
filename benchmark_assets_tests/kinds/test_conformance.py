"""Every registered study kind keeps the StudyKind contract and gets the same machinery from defs/."""
import pandera.pandas as pa
import pytest
from dagster import AssetKey, Definitions

from benchmark_assets.definitions import build_definitions
from benchmark_assets.defs.metadata import check_name
from benchmark_assets.graph import StudyGraph
from benchmark_assets.kinds import KINDS, get_kind, kind_names, register_kind
from benchmark_assets.kinds.base import POINT, REPLICATE, TRIAL, StudyKind
from benchmark_assets.outcomes import RunOutcome, StageRun, TrialResults
from benchmark_assets.studies import load_study
from benchmark_assets_tests import toy_kind
from benchmark_assets_tests.conftest import ROOT, write_study

# One study per kind. A kind registered without an example here fails the first test below.
EXAMPLES = {
    "ratchet": (ROOT / "studies" / "memory_ratchet.yaml").read_text(),
    "comparison": (ROOT / "studies" / "sgd_comparison.yaml").read_text(),
    "load_sweep": (ROOT / "studies" / "llm_load_sweep.yaml").read_text(),
    "acceptance": (ROOT / "studies" / "embedding_acceptance.yaml").read_text(),
    "estimator_benchmark": (ROOT / "studies" / "uplift_estimators.yaml").read_text(),
    "toy_kind": toy_kind.EXAMPLE,
}

# What each kind does beyond the core (kinds.capabilities); toy_kind shows a kind needs none.
CAPABILITIES = {
    "ratchet": ["SelectsSubjects", "FollowsUp"],
    "comparison": ["KeepsTrials", "Ingests"],
    "load_sweep": ["ResumesTrials", "FollowsUp", "Ingests", "TracksLevels"],
    "acceptance": ["ResumesTrials", "Gates", "Ingests", "TracksLevels"],
    "estimator_benchmark": ["KeepsTrials"],
    "toy_kind": [],
}
# The core every kind implements: the toy kind implements these and nothing else.
CORE = {"name", "spec_model", "point", "replicate", "load", "nodes", "point_fingerprints"}


@pytest.fixture
def registered():
    register_kind(toy_kind.KIND)
    yield
    KINDS.pop("toy_kind", None)


def test_every_registered_kind_has_an_example_to_check(registered):
    assert set(kind_names()) == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_kind_keeps_the_contract_and_gets_the_whole_machinery(name, registered, study_dir, dagster_home):
    kind = get_kind(name)
    assert isinstance(kind, StudyKind) and kind.name == name
    study = load_study(write_study(study_dir, "example", EXAMPLES[name]))
    assert study.kind == name and study.name == "example" and len(study.spec_hash) == 16

    nodes = kind.nodes()
    names = [n.name for n in nodes]
    assert len(set(names)) == len(names) and [n.partitioned_by for n in nodes].count(TRIAL) == 1
    for position, node in enumerate(nodes):
        assert node.partitioned_by in (None, POINT, REPLICATE, TRIAL)
        assert set(node.inputs) | set(node.deps) <= set(names[:position]), f"{node.name} reads a later node"
        if node.schema is not None:
            assert isinstance(node.schema(study), pa.DataFrameSchema)
    assert kind.point.name != kind.replicate.name
    study_graph = StudyGraph.of(study)
    assert list(kind.point_fingerprints(study)) == kind.point.keys(study) == study_graph.points()
    assert kind.replicate.keys(study) and all(isinstance(k, str) for k in kind.replicate.keys(study))
    assert study_graph.subjects() == [] and kind.rows_per_trial(study) >= 1
    assert study_graph.capabilities == CAPABILITIES[name]
    assert study_graph.versions() == StudyGraph.of(load_study(study.path)).versions()  # stable across loads
    summary = kind.run_summary(RunOutcome(study=study, seconds=12.25, stages=(StageRun("s", 1.0, "r"),) * 4, measured=37,
                                          kept=0, up_to_date=0, points=5, results=TrialResults()))
    assert "37" in summary and "12.2" in summary and "4 Dagster runs" in summary and "\n" not in summary

    defs = build_definitions([study])
    Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    graph = repository.asset_graph
    # The kind's nodes, and every study's regressions across commits (defs.regression_watch).
    assert graph.get_all_asset_keys() == {AssetKey(["example", n]) for n in [*names, "regressions"]}
    assert {c.name for c in graph.asset_check_keys} == {check_name(n) for n in nodes if n.schema is not None} | {
        "no_new_regression", "unattended_health"}
    last = [n.name for n in nodes if n.partitioned_by is None][-1]  # the health check sits on the last asset
    assert {c.asset_key for c in graph.asset_check_keys if c.name == "unattended_health"} == {AssetKey(["example", last])}
    assert repository.has_sensor_def("regression_watch")
    assert repository.has_sensor_def("example__study_changes")
    assert repository.has_schedule_def("example__nightly") == hasattr(study.spec, "schedule")
    for node in nodes:
        asset = graph.get(AssetKey(["example", node.name]))
        assert asset.is_partitioned == (node.partitioned_by is not None)
        assert asset.code_version == StudyGraph.of(study).versions()[node.name]


def test_a_kind_needs_only_the_core():
    abstract = set(StudyKind.__abstractmethods__)
    declared = set(StudyKind.__annotations__)
    assert abstract | (declared - {"artifact_files"}) == CORE
    own = {name for name in vars(toy_kind.ToyKind) if not name.startswith("_")}
    assert own - {"artifact_files"} == CORE  # and it runs end to end (test_toy_kind.py)
