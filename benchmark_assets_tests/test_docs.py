"""The reference pages in docs/reference/ (moved out of the modules' docstrings) stay true: every
metric, option and template the code has is in its page, and each module points at its page."""
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
