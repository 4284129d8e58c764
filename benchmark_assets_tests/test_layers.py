"""The package's imports point down its layers, never up, and never in a circle; only defs/ and above know Dagster."""
import ast
import subprocess
from pathlib import Path

import pytest

from benchmark_assets_tests.conftest import ROOT

PACKAGE = ROOT / "benchmark_assets"

# Lowest first. A module may import from its own layer or below, never above.
LAYERS = [
    ("foundation", ("stats", "display", "artifact_server", "scenarios", "targets", "servers", "examples", "sweep", "provenance", "artifacts", "extras", "env_settings",
                    "warehouse", "study_file", "schemas", "ledger", "locks", "processes", "parallel", "history",
                    "regressions", "outcomes")),
    ("kind protocol", ("kinds.base", "kinds.capabilities")),
    ("kinds", ("kinds.*",)),
    ("registry", ("kinds",)),
    ("loader", ("studies", "new_study", "docs_reference")),
    ("study graph", ("graph", "inbox_plan", "inbox", "edits")),
    ("dagster wiring", ("defs",)),
    ("entry points", ("definitions", "cli", "__init__")),
]
# Within a kind, lowest first: the spec never imports how trials run or how they are decided.
KIND_LAYERS = ["rules", "template", "spec", "schemas", "trials", "ingest", "cliffs", "family", "analysis", "stopping", "capacity", "followups", "interactions", "cumulative", "search", "simulate", "sensitivity", "report", "nodes", "kind",
               "__init__"]


PROTOCOL = {"kinds.base", "kinds.capabilities"}  # what every kind is; the rest of kinds.* is one kind each


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


PROBE = "zz_probe.py"  # written and removed by the layer walk's own test, maybe while another lists modules


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if p.name != PROBE}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every benchmark_assets module ``path`` imports, at any depth of the file (function-level too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or node.level):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                package = ("benchmark_assets." + module_name(path)).split(".")
                package = package if path.name == "__init__.py" else package[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            # ``from package import module`` depends on that module; ``from module import name`` on the module.
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            node = ast.ImportFrom(module=base, names=node.names, level=0)
            names = [m for m in submodules if m.removeprefix("benchmark_assets.") in known] or [node.module]
        for name in names:
            if name.startswith("benchmark_assets."):
                short = name.removeprefix("benchmark_assets.")
                if short in known:
                    found.add(short)
    return found


def layer_of(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if prefix == "kinds.*":
                if module.startswith("kinds.") and module not in PROTOCOL:
                    return index
            elif module == prefix or (module.startswith(prefix + ".") and prefix != "kinds"):
                return index
    raise AssertionError(f"module {module} has no layer; add it to LAYERS")


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, set(known)) - {name} for name, path in known.items()}


def test_every_import_points_down_a_layer():
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
              for a, targets in graph().items() for b in targets if layer_of(b) > layer_of(a)]
    assert not upward, "\n".join(upward)


def test_there_is_no_import_cycle():
    edges, state, cycles = graph(), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_kinds_are_independent_and_their_specs_import_no_decisions():
    for module, targets in graph().items():
        if not module.startswith("kinds.") or module in PROTOCOL:
            continue
        kind, _, part = module.removeprefix("kinds.").partition(".")
        for target in targets:
            if target.startswith("kinds.") and target not in PROTOCOL:
                other, _, other_part = target.removeprefix("kinds.").partition(".")
                assert other == kind, f"{module} imports another kind: {target}"
                assert KIND_LAYERS.index(other_part or "__init__") <= KIND_LAYERS.index(part or "__init__"), \
                    f"{module} imports {target}, which sits above it in the kind"


@pytest.mark.parametrize("module", sorted(m for m in modules() if m.split(".")[0] not in {"defs", "definitions", "cli"}))
def test_only_dagster_wiring_imports_dagster(module):
    tree = ast.parse(modules()[module].read_text())
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        assert not any(n == "dagster" or n.startswith(("dagster.", "dagster_")) for n in names), \
            f"{module} imports Dagster; only defs/, definitions and cli may"


def test_kind_branches_live_only_in_the_registry():
    found = subprocess.run(["grep", "-rn", "kind ==", str(PACKAGE)], capture_output=True, text=True).stdout
    assert found == "", found
    # Nor in another spelling: outside kinds/, no comparison with a kind's name, no isinstance on
    # a kind's study class, no import of a particular kind.
    shipped = {"ratchet", "comparison", "load_sweep"}
    edges = graph()  # once: it parses every module
    for module, path in modules().items():
        if module.startswith("kinds"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                constants = {c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)}
                assert not constants & shipped, f"{module}:{node.lineno} compares with a kind's name"
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance":
                assert "Study" not in ast.unparse(node.args[1]), f"{module}:{node.lineno} asks which study class"
        assert not {t for t in edges[module] if t.startswith("kinds.") and t not in PROTOCOL}, \
            f"{module} imports a particular kind"


def test_the_layer_walk_sees_function_level_and_relative_imports():
    module = PACKAGE / "kinds" / "ratchet" / PROBE
    try:
        module.write_text("def f():\n    from benchmark_assets.defs.assets import build_assets\n"
                          "from .spec import RatchetStudy\nfrom .. import base\n")
        assert imports_of(module, set(modules())) == {"defs.assets", "kinds.ratchet.spec", "kinds.base"}
    finally:
        module.unlink()


def test_only_compat_imports_dagster_internals():
    """Dagster's private API is used in one module, where each use names the test that guards it."""
    for module, path in modules().items():
        if module == "defs.compat":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.startswith(("dagster._", "dagster_shared._")) for n in names), \
                f"{module}:{node.lineno} imports Dagster's private API; add what it needs to defs/compat.py"


def test_every_defs_module_is_small_enough_to_read_at_once():
    long = {m: n for m, p in modules().items() if m.startswith("defs") and (n := len(p.read_text().splitlines())) > 350}
    assert not long, f"split these by concern: {long}"


def test_kinds_are_looked_up_only_in_the_registry_and_where_a_graph_is_built():
    found = subprocess.run(["grep", "-rln", "kind_of(", str(PACKAGE)], capture_output=True, text=True).stdout.split()
    assert sorted(module_name(Path(p)) for p in found) == ["graph", "kinds"]


def test_loading_the_definitions_leaves_scipy_and_statsmodels_for_the_first_statistic():
    """Every Dagster process loads the definitions (the UI's code location on each start and
    reload): SciPy and statsmodels, most of a second of that, come with the first statistic."""
    import sys

    loaded = subprocess.run([sys.executable, "-c", "import sys, benchmark_assets.definitions; "
                             "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'statsmodels', 'sklearn', 'optuna'}))"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    assert loaded == "[]"
