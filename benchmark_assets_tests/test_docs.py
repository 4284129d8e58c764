"""The documentation stays true: the site builds strictly (a broken link or a page left out of the
navigation fails), the README is short and its links resolve, and the reference pages in
docs/reference/ hold every metric, option and template the code has, each module pointing at its page."""
import dataclasses
import importlib
import re

import pytest

from benchmark_assets_tests.conftest import ROOT

PAGES = {"http_load": "benchmark_assets.targets.http_load", "mock_llm": "benchmark_assets.servers.mock_llm",
         "steps": "benchmark_assets.stats.steps", "templates": "benchmark_assets.scenarios.templates",
         "command": "benchmark_assets.targets.command"}


def page(name: str) -> str:
    return (ROOT / "docs" / "reference" / f"{name}.md").read_text()


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_module_points_at_its_page(name):
    module = importlib.import_module(PAGES[name])
    assert f"docs/reference/{name}.md" in module.__doc__ and len(module.__doc__.splitlines()) <= 6
    assert page(name).startswith("# ")


def test_every_load_metric_is_in_the_http_load_page():
    """docs/reference/http_load.md lists every metric the load target reports."""
    from benchmark_assets.targets.http_load import STATS, metric_names

    text = page("http_load")
    for metric in metric_names(streaming=True):
        generic = re.sub(rf"_({'|'.join(STATS)})$", "_<stat>", metric)
        assert metric in text or generic in text, metric


def test_every_mock_server_option_and_template_is_in_its_page():
    from benchmark_assets.scenarios.templates import TEMPLATES
    from benchmark_assets.servers.mock_llm import MockLLMConfig

    assert [f.name for f in dataclasses.fields(MockLLMConfig) if f"`{f.name}`" not in page("mock_llm")] == []
    assert [name for name in TEMPLATES if f"`{name}`" not in page("templates")] == []


def test_the_mock_server_starts_as_its_page_says():
    """docs/reference/mock_llm.md's command, on a free port: it listens and answers a completion."""
    import json
    import subprocess
    import sys
    import urllib.request

    from benchmark_assets.servers.mock_llm import READY_PREFIX

    text = page("mock_llm")
    command = text.split("```bash\n", 1)[1].split("\n```", 1)[0]
    assert command.startswith("python -m benchmark_assets.servers.mock_llm --port 8000 ")
    argv = [sys.executable, *command.split()[1:]]
    argv[argv.index("--port") + 1] = "0"
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith(READY_PREFIX), line
        url = line[len(READY_PREFIX):].split()[0]
        body = json.dumps({"model": "mock", "prompt": "hi", "max_tokens": 3, "ignore_eos": True}).encode()
        request = urllib.request.Request(f"{url}/v1/completions", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read())["usage"]["completion_tokens"] == 3
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_docs_site_builds_strictly(tmp_path):
    import os
    import subprocess
    import sys

    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                           cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "kinds" / "load-sweep" / "index.html").exists()


def test_every_docs_page_is_in_the_navigation():
    import yaml

    def pages(node) -> set[str]:
        if isinstance(node, str):
            return {node}
        if isinstance(node, list):
            return set().union(*(pages(n) for n in node))
        return set().union(*(pages(v) for v in node.values()))

    nav = pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    on_disk = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert on_disk == nav


def test_the_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert links and [link for link in links if not link.startswith("http") and not (ROOT / link).exists()] == []
    # the two commands newcomers use, exactly, in README.md and docs/getting-started.md; CI's is the second
    main = "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/benchmark-assets run memory_ratchet"
    tests = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest -q"
    started = (ROOT / "docs" / "getting-started.md").read_text()
    assert f"```bash\n{main}\n```" in text and f"```bash\n{main}\n```" in started
    assert f"```bash\n{tests}\n```" in text and f"```bash\n{tests}\n```" in started
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'" in ci and ".venv/bin/python -m pytest -q" in ci


def test_the_study_file_reference_is_generated_from_the_models():
    from benchmark_assets.docs_reference import study_file_reference

    page = (ROOT / "docs" / "reference" / "study-file.md").read_text()
    assert page == study_file_reference(), (
        "docs/reference/study-file.md is behind the models: .venv/bin/python -m benchmark_assets.docs_reference "
        "> docs/reference/study-file.md")
    for field in ("min_trials", "max_trials", "precision", "search", "max_error_rate", "speedup_at_least"):
        assert f"| `{field}` |" in page, field


def test_the_statistics_api_page_is_generated_from_the_docstrings():
    from benchmark_assets import stats
    from benchmark_assets.docs_reference import statistics_api_reference

    page = (ROOT / "docs" / "reference" / "statistics-api.md").read_text()
    assert page == statistics_api_reference(), (
        "docs/reference/statistics-api.md is behind the code: .venv/bin/python -m benchmark_assets.docs_reference "
        "statistics > docs/reference/statistics-api.md")
    assert all(f"`{name}`" in page for name in stats.__all__)
    assert "bootstrap_ci(data, *, statistic" in page and " at 0x" not in page


def test_every_environment_variable_is_in_the_configuration_page():
    page = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    used = set()
    for path in (ROOT / "benchmark_assets").rglob("*.py"):
        used |= set(re.findall(r"BENCHMARK_ASSETS_[A-Z_]*[A-Z]", path.read_text()))
    assert used and sorted(v for v in used if f"`{v}`" not in page) == []


@pytest.mark.parametrize(("kind", "page"), [("ratchet", "ratchet.md"), ("comparison", "comparison.md"),
                                            ("load_sweep", "load-sweep.md"), ("acceptance", "acceptance.md"),
                                            ("estimator_benchmark", "estimator-benchmark.md")])
def test_each_kind_page_starts_from_the_study_new_writes(kind, page):
    """The complete study on each kind's page is what `benchmark-assets new` writes, which
    test_new_study.py runs as written."""
    from benchmark_assets.kinds import get_kind

    text = (ROOT / "docs" / "kinds" / page).read_text()
    assert f"```yaml\n{get_kind(kind).template('my_study').rstrip()}\n```" in text


def test_the_own_target_guide_runs_as_written(study_dir, instance, tmp_path, monkeypatch):
    """docs/guides/your-own-target.md: its module and its study, written where they say, run and
    decide what the page says they decide."""
    import sys

    from benchmark_assets.defs.runner import run_study
    from benchmark_assets.warehouse import Warehouse

    page = (ROOT / "docs" / "guides" / "your-own-target.md").read_text()
    code = page.split("```python\n# mypackage/search.py\n", 1)[1].split("```", 1)[0]
    study = page.split("```yaml\n# studies/search_ratchet.yaml\n", 1)[1].split("```", 1)[0]
    # README.md's smallest useful study is this one
    assert f"```yaml\n# studies/search_ratchet.yaml\n{study}```" in (ROOT / "README.md").read_text()
    package = tmp_path / "site" / "mypackage"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "search.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    (study_dir / "search_ratchet.yaml").write_text(study)
    try:
        run_study("search_ratchet", quiet=True, instance=instance)
    finally:
        sys.modules.pop("mypackage.search", None)
        sys.modules.pop("mypackage", None)
    verdicts = Warehouse().read("search_ratchet__verdicts").set_index("constant")
    assert verdicts.loc["boost", "decision"] == "accept" and float(verdicts.loc["boost", "proposed"]) == 2.0
    assert verdicts.loc["k", "decision"] != "accept"
