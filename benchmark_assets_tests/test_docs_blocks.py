"""Every code block in the README and the docs says how the tests hold it, and is held so.

A block is preceded by an HTML comment (invisible on GitHub and on the site):

- ``<!-- docs-test: run -->``: a bash or Python block executed as written in a scratch project as
  a clone has it (the shipped studies and ``dagster.yaml``, this interpreter's ``.venv``, its own
  DAGSTER_HOME, none of the developer's ``BENCHMARK_ASSETS_*`` or ``DAGSTER_*`` settings).
- ``<!-- docs-test: check -->``: a bash block executed with each ``benchmark-assets run``
  replaced by ``benchmark-assets check``, which takes the same options and checks the study and
  them without running anything; a YAML study written to ``studies/<name>.yaml`` (its ``# studies/<name>.yaml``
  comment, else ``doc_study``) and checked the same way.
- ``<!-- docs-test: fields -->``: a YAML study shown for its fields: each is validated against
  its kind's model, as the first step of loading a study does.
- ``<!-- docs-test: held-by path::test_name -->``: a test that runs it or holds it to what it
  runs (a daemon, a browser, PostgreSQL, workers, a whole install); that ``test_*`` function of a
  ``test_*.py`` file must exist and name the page in its own source (decorators included).
- ``<!-- docs-test: illustration -->``: output, a tree, an error as printed: nothing to run.

Code is fenced: a block indented by four spaces (which Markdown also shows as code) is refused,
so no block escapes this file.
"""
from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from benchmark_assets_tests.conftest import ROOT

MARKER = re.compile(r"<!-- docs-test: (run|check|fields|held-by|illustration)(?: (\S+))? -->")
MODES = ("run", "check", "fields", "held-by", "illustration")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    body: str
    mode: str | None
    argument: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = []
    for page in pages:
        lines = page.read_text().splitlines()
        index = 0
        while index < len(lines):
            fence = re.match(r"^\s*```(\w*)", lines[index])
            if fence:
                end = index + 1
                while not lines[end].lstrip().startswith("```"):
                    end += 1
                marker = MARKER.fullmatch(lines[index - 1].strip()) if index else None
                found.append(Block(page, index + 1, fence.group(1), "\n".join(lines[index + 1:end]) + "\n",
                                   marker.group(1) if marker else None, marker.group(2) if marker else None))
                index = end
            index += 1
    return found


BLOCKS = blocks()


def of(*modes: str) -> list:
    return [pytest.param(b, id=b.where) for b in BLOCKS if b.mode in modes]


def test_every_code_block_says_how_it_is_tested():
    unmarked = [b.where for b in BLOCKS if b.mode is None]
    assert not unmarked, (f"code blocks without a `<!-- docs-test: {'|'.join(MODES)} -->` line just above: "
                          f"{unmarked}")
    assert {mode: sum(b.mode == mode for b in BLOCKS) for mode in MODES} == {
        mode: max(1, sum(b.mode == mode for b in BLOCKS)) for mode in MODES}, "a mode no block uses tests nothing"


def indented_code(page: Path) -> list[int]:
    """Lines that start a Markdown indented code block: four spaces after a blank line, outside a
    fence, where the paragraph before is neither a list item nor indented (a list's continuation)."""
    lines, starts, fenced = page.read_text().splitlines(), [], False
    for number, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("    ") or not line.strip() or number == 0 or lines[number - 1].strip():
            continue
        before = next((lines[k] for k in range(number - 2, -1, -1) if lines[k].strip()), "")
        if not re.match(r"^\s*([-*+]|\d+\.)\s", before) and not before.startswith(" "):
            starts.append(number + 1)
    return starts


def test_no_code_block_is_indented_instead_of_fenced():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = {str(p.relative_to(ROOT)): starts for p in pages if (starts := indented_code(p))}
    assert found == {}, f"fence these code blocks (and mark them) instead of indenting them: {found}"


@pytest.fixture
def project(tmp_path):
    """A scratch project as a newcomer's clone has it: the shipped studies, ``.venv`` (this
    interpreter's), an empty DAGSTER_HOME; the commands see nothing of the test's own."""
    root = tmp_path / "project"
    shutil.copytree(ROOT / "studies", root / "studies")
    shutil.copy(ROOT / "dagster.yaml", root / "dagster.yaml")
    (root / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {name: value for name, value in os.environ.items() if not name.startswith(("BENCHMARK_ASSETS_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(root / ".dagster_home"), PYTHONPATH=str(ROOT))
    return root, env


def execute(argv: list[str], root: Path, env: dict, where: str) -> None:
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=280)  # inside pytest-timeout's
    assert done.returncode == 0, f"{where} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.mark.parametrize("block", of("run"))
def test_a_runnable_block_runs(block, project):
    argv = {"python": [".venv/bin/python", "-c"], "bash": ["bash", "-euo", "pipefail", "-c"]}.get(block.language)
    assert argv, f"{block.where}: only bash and Python blocks run"
    execute([*argv, block.body], *project, block.where)


@pytest.mark.parametrize("block", of("check"))
def test_a_checked_block_passes_check(block, project, cli, monkeypatch):
    """In this process (the `cli` fixture: its own environment and folder), each line a command."""
    root, env = project
    for name in [n for n in os.environ if n.startswith(("BENCHMARK_ASSETS_", "DAGSTER_"))]:
        monkeypatch.delenv(name)  # the developer's settings are no newcomer's
    if block.language == "yaml":
        name = re.match(r"# studies/(\w+)\.yaml", block.body)
        path = root / "studies" / f"{name.group(1) if name else 'doc_study'}.yaml"
        path.write_text(block.body)
        commands = [["check", path.stem]]
    else:
        assert block.language == "bash", f"{block.where}: only bash and YAML blocks are checked"
        lines = [shlex.split(line, comments=True) for line in block.body.splitlines()]
        lines = [words for words in lines if words]
        assert all(words[0] == ".venv/bin/benchmark-assets" for words in lines), f"{block.where}: only commands"
        assert any(words[1] == "run" for words in lines), f"{block.where}: a checked block runs a study; else run it"
        commands = [["check" if words[1] == "run" else words[1], *words[2:]] for words in lines]
    home = {name: value for name, value in env.items() if name.startswith(("BENCHMARK_ASSETS_", "DAGSTER_"))}
    for command in commands:
        result = cli(*command, env={**home, "BENCHMARK_ASSETS_STUDIES": str(root / "studies")}, cwd=root)
        assert result.returncode == 0, f"{block.where}: {' '.join(command)}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("block", of("fields"))
def test_a_study_shown_for_its_fields_is_valid(block):
    from benchmark_assets.kinds import get_kind
    from benchmark_assets.study_file import validate_model

    raw = yaml.safe_load(block.body)
    validate_model(get_kind(raw["kind"]).spec_model, block.page, raw)  # raises with the field and the fix


@pytest.mark.parametrize("block", of("held-by"))
def test_a_block_held_by_a_test_names_a_test_that_reads_its_page(block):
    assert block.argument and "::" in block.argument, f"{block.where}: held-by needs path::test_name"
    path, name = block.argument.split("::", 1)
    assert Path(path).name.startswith("test_") and name.startswith("test_"), f"{block.where}: {block.argument} is no test"
    source = (ROOT / path).read_text()
    tests = [node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
             and node.name == name]
    assert tests, f"{block.where}: no test {name} in {path}"
    first = min([tests[0].lineno, *(d.lineno for d in tests[0].decorator_list)])
    own = "\n".join(source.splitlines()[first - 1:tests[0].end_lineno])
    assert block.page.name in own, f"{block.where}: {block.argument} does not name {block.page.name}"


def test_the_modes_in_this_docstring_are_the_modes_checked():
    assert all(f"docs-test: {mode}" in __doc__ for mode in MODES)
