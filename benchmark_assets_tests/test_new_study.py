"""`benchmark-assets new` writes a study of each kind that is valid and runs as written;
`benchmark-assets check` validates a study without running anything."""
import subprocess
import sys

import pytest

from benchmark_assets.defs.runner import run_study
from benchmark_assets.graph import StudyGraph
from benchmark_assets.kinds import SHIPPED
from benchmark_assets.new_study import write_new_study
from benchmark_assets.studies import StudyError, load_study
from benchmark_assets_tests.conftest import ROOT


@pytest.mark.parametrize("kind", sorted(SHIPPED))
def test_a_new_study_of_each_kind_runs_as_written_and_decides(kind, study_dir, instance):
    path = write_new_study(kind, f"first_{kind}", study_dir)
    assert path.read_text().startswith(f"# first_{kind}: ")  # commented for the person who edits it
    outcome = run_study(f"first_{kind}", quiet=True, instance=instance)
    assert outcome.measured > 0 and not outcome.results.all_failed
    graph = StudyGraph.load(f"first_{kind}")
    from benchmark_assets.defs.resources import study_resources

    read = graph.reader(study_resources()["warehouse"].open())
    assert graph.kind.decided_nothing(graph.study, read) == ""


def test_a_new_ratchet_of_your_own_target_names_it_and_is_checked_before_it_runs(study_dir):
    """`new ratchet NAME --target module:function`, as docs/getting-started.md ends with."""
    path = write_new_study("ratchet", "mine", study_dir, target="benchmark_assets_tests.toy_target:evaluate")
    text = path.read_text()
    assert "target: benchmark_assets_tests.toy_target:evaluate" in text and "metric: score" in text
    # the constants the function declares, each with a value to set; as written, it checks and loads
    assert [line.split(":")[0].strip() for line in text.splitlines() if "{tier: 1" in line] == ["alpha", "beta", "gamma"]
    assert load_study(path).spec.constants["alpha"].current == 1.0
    with pytest.raises(StudyError, match=r"cannot import module .no_such_package.module."):
        write_new_study("ratchet", "missing", study_dir, target="no_such_package.module:evaluate")
        load_study(study_dir / "missing.yaml")


@pytest.mark.parametrize(("args", "message"), [
    (["new", "nope", "x"], "kind: no kind 'nope'. Fix: choose one of ['ratchet', 'comparison'"),
    (["new", "comparison", "x", "--target", "a:b"], "--target: a comparison study names its target in its own way"),
    (["new", "ratchet", "bad name"], "name: study name 'bad name' may hold only"),
    (["check", "no_such_study"], "no such study file"),
])
def test_new_and_check_refuse_in_one_line(args, message, study_dir, tmp_path):
    result = subprocess.run([sys.executable, "-m", "benchmark_assets.cli", *args], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1, \
        result.stderr


def test_new_then_check_through_the_command_line(study_dir, tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "benchmark_assets.cli", *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)

    made = cli("new", "load_sweep", "servers")
    assert made.returncode == 0 and "benchmark-assets run servers" in made.stdout
    checked = cli("check", "servers")
    assert checked.returncode == 0, checked.stderr
    assert "a valid load_sweep study (servers)" in checked.stdout and "3 sweep points x 3 trials" in checked.stdout
    again = cli("new", "load_sweep", "servers")
    assert again.returncode == 2 and "a study of this name exists" in again.stderr
    assert (study_dir / "servers.yaml").exists()  # where BENCHMARK_ASSETS_STUDIES points
    assert not (ROOT / "studies" / "servers.yaml").exists()


def test_check_takes_runs_options_and_checks_them_against_the_study(cli, tmp_path):
    """`check` accepts what `run` does and refuses in one line what `run` would refuse, before anything runs."""
    env = {"BENCHMARK_ASSETS_STUDIES": str(ROOT / "studies"), "DAGSTER_HOME": str(tmp_path / "home")}
    whole = cli("check", "memory_ratchet", env=env)
    tier = cli("check", "memory_ratchet", "--tier", "1", "--force", env=env)
    assert whole.returncode == tier.returncode == 0, whole.stderr + tier.stderr
    assert "72 sweep points x 50 seed_ids" in whole.stdout and "run it: benchmark-assets run memory_ratchet\n" in whole.stdout
    assert "run it: benchmark-assets run memory_ratchet --tier 1 --force" in tier.stdout
    assert "72 sweep points" not in tier.stdout
    gate = cli("check", "embedding_acceptance", "--fail-on", "not_met", env=env)
    assert gate.returncode == 0 and gate.stdout.rstrip().endswith("--fail-on not_met"), gate.stderr
    for args, message in [(("memory_ratchet", "--constants", "no_such"), "no_such"),
                          (("sgd_comparison", "--fail-on", "not_met"), "--fail-on")]:
        refused = cli("check", *args, env=env)
        assert refused.returncode == 2 and refused.stdout == "", refused.stdout
        assert refused.stderr.count("\n") == 1 and message in refused.stderr, refused.stderr
    assert not (tmp_path / "home").exists()  # nothing was created


def test_check_of_a_path_says_to_run_that_path(cli, tmp_path):
    path = tmp_path / "elsewhere" / "mine.yaml"
    path.parent.mkdir()
    path.write_text((ROOT / "studies" / "memory_ratchet.yaml").read_text())
    checked = cli("check", str(path), "--tier", "1", env={"DAGSTER_HOME": str(tmp_path / "home")})
    assert checked.returncode == 0, checked.stderr
    assert f"run it: benchmark-assets run {path} --tier 1\n" in checked.stdout


def test_the_commands_it_suggests_are_the_ones_that_started_it(tmp_path, monkeypatch):
    """From a clone without an activated venv, `new` says `.venv/bin/benchmark-assets ...`."""
    from benchmark_assets.cli import an, program

    script = tmp_path / ".venv" / "bin" / "benchmark-assets"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [".venv/bin/benchmark-assets", "new"])  # as a shell passes what was typed
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert program() == ".venv/bin/benchmark-assets"
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    assert program() == "benchmark-assets"
    assert (an("acceptance"), an("estimator_benchmark"), an("ratchet")) == (
        "an acceptance", "an estimator_benchmark", "a ratchet")
