"""The Kubernetes deployment a team applies (deploy/kubernetes): its manifests parse, its Dagster
instance config validates against Dagster's and dagster-k8s's own schemas, and with the
environment it sets, the definitions fan trials out over the k8s job executor. (No cluster runs
here: what can be checked without one is checked.)"""
from pathlib import Path

import yaml
from dagster import AssetKey, Definitions

from benchmark_assets.defs import scale_out
from benchmark_assets.defs.instance_storage import POSTGRES_URL_ENV
from benchmark_assets_tests.conftest import ROOT

DEPLOY = ROOT / "deploy" / "kubernetes"


def _documents(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc]


def test_the_manifests_parse_and_kustomize_finds_every_file_it_names():
    kustomization = _documents("kustomization.yaml")[0]
    named = list(kustomization["resources"]) + [f for gen in kustomization["configMapGenerator"] for f in gen["files"]]
    assert all((DEPLOY / name).exists() for name in named)
    kinds = [doc["kind"] for doc in _documents("deployment.yaml")]
    assert kinds.count("Deployment") == 3 and {"ServiceAccount", "Role", "RoleBinding", "Service"} <= set(kinds)
    secret = _documents("secret.example.yaml")[0]
    assert list(secret["stringData"]) == [POSTGRES_URL_ENV]  # the variable the instance storage reads
    # Every pod gets the database secret and the instance config the run launcher names.
    instance = _documents("dagster.yaml")[0]
    for doc in _documents("deployment.yaml"):
        if doc["kind"] == "Deployment":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
            assert any(v["configMap"]["name"] == instance["run_launcher"]["config"]["instance_config_map"]
                       for v in doc["spec"]["template"]["spec"]["volumes"])


def test_the_instance_config_validates_against_dagsters_and_dagster_k8s_schemas(tmp_path):
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes.config_class import ConfigurableClassData
    from dagster_k8s import K8sRunLauncher

    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    checked = validate_config(K8sRunLauncher.config_type(), launcher["config"])
    assert checked.success, checked.errors
    env = dict(item.split("=", 1) for item in launcher["config"]["env_vars"])
    assert env[scale_out.EXECUTOR_ENV] == "k8s" and int(env[scale_out.CHUNKS_ENV]) > 1
    storage = config["storage"]["custom"]
    assert ConfigurableClassData(storage["module"], storage["class"], "{}").info_dict()["module"] == storage["module"]
    coordinator = config["run_coordinator"]
    assert coordinator["class"] == "QueuedRunCoordinator"


def test_with_the_deployments_environment_trials_fan_out_over_the_k8s_job_executor(monkeypatch, study_dir):
    from benchmark_assets.definitions import build_definitions
    from benchmark_assets.studies import load_study

    monkeypatch.delenv(scale_out.BROKER_ENV, raising=False)
    monkeypatch.setenv(scale_out.EXECUTOR_ENV, "k8s")
    monkeypatch.setenv(scale_out.CHUNKS_ENV, "16")
    study = load_study(study_dir / "toy.yaml")
    definitions = build_definitions([study])
    assert definitions.executor.name == "k8s"
    trials = definitions.resolve_assets_def(AssetKey(["toy", "trials"]))
    ops = sorted(op.name for op in trials.node_def.iterate_op_defs())
    assert ops == sorted([f"toy__trials__measure_{i}" for i in range(16)] + ["toy__trials__gather"])
    Definitions.validate_loadable(definitions)


def test_an_unknown_executor_or_celery_without_a_broker_is_one_clear_error(monkeypatch):
    import pytest

    monkeypatch.delenv(scale_out.BROKER_ENV, raising=False)
    monkeypatch.setenv(scale_out.EXECUTOR_ENV, "dask")
    with pytest.raises(ValueError, match="BENCHMARK_ASSETS_EXECUTOR='dask' is not an executor"):
        scale_out.executor()
    monkeypatch.setenv(scale_out.EXECUTOR_ENV, "celery")
    with pytest.raises(ValueError, match="needs \\$BENCHMARK_ASSETS_CELERY_BROKER"):
        scale_out.executor()
    monkeypatch.delenv(scale_out.EXECUTOR_ENV)
    assert scale_out.executor() == "" and scale_out.trial_chunks() == 0 and scale_out.executor_def() is None


def test_the_image_installs_the_extras_its_deployment_and_studies_need_and_carries_the_studies():
    from benchmark_assets.kinds import kind_of
    from benchmark_assets.studies import discover_studies

    text = (DEPLOY / "Dockerfile").read_text()
    assert "pip install --no-cache-dir '.[k8s,postgres,search,estimators]'" in text and "COPY studies" in text
    installed = {"k8s", "postgres", "search", "estimators"}
    studies = discover_studies(ROOT / "studies")  # all installed here: none is left out
    assert len(studies) == len(list((ROOT / "studies").glob("*.yaml")))
    for study in studies:  # ... nor in the image
        assert set(kind_of(study).extras(study.spec)) <= installed, study.name
    assert Path(ROOT / "studies").is_dir()
