"""The malformed-input corpus: every bad study file in malformed/ is refused with the one line its header names."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark_assets.studies import StudyError, load_study
from benchmark_assets_tests.conftest import ROOT

CORPUS = Path(__file__).parent / "malformed"
CASES = sorted(CORPUS.glob("*.yaml"))


def expected_line(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode()
    assert first.startswith("# expect: "), f"{path.name} has no '# expect:' header"
    return first.removeprefix("# expect: ")


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 100


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_each_malformed_study_is_one_clear_line(path):
    with pytest.raises(StudyError) as raised:
        load_study(path)
    line = str(raised.value)
    assert expected_line(path) in line
    assert line.startswith(f"{path}: ") and ". Fix: " in line and "\n" not in line and len(line) < 500, line


@pytest.mark.parametrize("name", ["r13_typo_candidates", "l14_url_with_credentials", "f15_alias_bomb",
                                  "r46_bad_cron", "f14_not_utf8"])
def test_the_cli_refuses_them_before_creating_anything(name, tmp_path, cli):
    home = tmp_path / "home"
    result = cli("run", name, env={"DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(CORPUS)}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected_line(CORPUS / f"{name}.yaml") in lines[0], result.stderr
    assert "secret" not in result.stderr + result.stdout
    assert not home.exists()  # validation comes before DAGSTER_HOME or any database


@pytest.mark.parametrize(("args", "message"), [
    (["run", "r01_nan_current", "--tier", "abc"], "argument --tier: invalid int value: 'abc'"),
    (["run", "a_folder.yaml"], "a_folder.yaml: (file): this is a folder, not a study file"),
    (["run", "no_such_study"], "study: no such study file"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_command_line_mistakes_are_one_line_too(args, message, tmp_path, cli):
    (tmp_path / "a_folder.yaml").mkdir()
    result = cli(*args, env={"DAGSTER_HOME": str(tmp_path / "home"), "BENCHMARK_ASSETS_STUDIES": str(CORPUS)},
                 cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "home").exists()


@pytest.mark.system
@pytest.mark.parametrize(("args", "message"), [
    (["run", "r13_typo_candidates"], expected_line(CORPUS / "r13_typo_candidates.yaml")),  # the study file
    (["run", "no_such_study"], "study: no such study file"),  # the study's name
    (["frobnicate"], "invalid choice: 'frobnicate'"),  # the command line (argparse)
])
def test_a_mistake_is_one_line_from_a_real_process_too(tmp_path, args, message):
    """The same refusals from the command in a process of its own, as a shell sees them: nothing
    else is printed (no warning at import, no traceback) and nothing is created."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(tmp_path / "home"),
           "BENCHMARK_ASSETS_STUDIES": str(CORPUS)}
    result = subprocess.run([sys.executable, "-m", "benchmark_assets.cli", *args],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert result.stdout == "" and not (tmp_path / "home").exists()
