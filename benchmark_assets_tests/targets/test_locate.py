"""Checks of a study's code that run none of it: modules found as import finds them, names read
from the source, programs looked up on PATH."""
import stat
import textwrap
from pathlib import Path

import pytest

from benchmark_assets.targets.locate import callable_problem, program_problem


@pytest.fixture
def code(tmp_path, monkeypatch):
    """A package on sys.path whose every import leaves a mark: a check that imports it is seen."""
    marks = tmp_path / "imported"
    marks.mkdir()
    package = tmp_path / "src" / "userpkg_locate"
    (package / "sub").mkdir(parents=True)
    mark = f"open({str(marks)!r} + '/' + __name__, 'w').close()\n"
    (package / "__init__.py").write_text(mark)
    (package / "sub" / "__init__.py").write_text(mark)
    (package / "sub" / "bench.py").write_text(mark + textwrap.dedent("""\
        import json
        from os import path as joined
        ROUNDS = 20
        NAMES = ["a"]
        handler = json.loads

        def run(seed):
            return seed

        class Runner:
            pass

        try:
            import ujson as fast_json
        except ImportError:
            def fast_json(text):
                return text

        if ROUNDS > 10:
            def only_when_many(seed):
                return seed
        """))
    (package / "star.py").write_text(mark + "from json import *\n")
    (package / "lazy.py").write_text(mark + "def __getattr__(name):\n    return len\n")
    (package / "broken.py").write_text(mark + "def run(seed):\n    return (\n")
    # the fallbacks and shapes a reader must follow
    (package / "fallback.py").write_text(mark + textwrap.dedent("""\
        try:
            from fastlib import speedy
        except ImportError:
            speedy = None
        if False:
            other = 3
        else:
            from json import loads as other
        match 1:
            case 1:
                def matched(seed):
                    return seed
        """))
    (package / "lazy_attach.py").write_text(mark + "import json\n__getattr__, __dir__ = json.loads, dir\n")
    (package / "nsub").mkdir()  # a namespace subpackage: a folder without __init__.py
    (package / "nsub" / "bench.py").write_text(mark + "def run(seed):\n    return seed\n")
    (tmp_path / "src" / "userns_locate" / "deeper").mkdir(parents=True)  # a namespace package at the top
    (tmp_path / "src" / "userns_locate" / "deeper" / "mod.py").write_text(mark + "def run(seed):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    yield marks
    assert not list(marks.iterdir()), "a check imported the user's code"


@pytest.mark.parametrize("reference", [
    "userpkg_locate.sub.bench:run", "userpkg_locate.sub.bench:Runner", "userpkg_locate.sub.bench:fast_json",
    "userpkg_locate.sub.bench:only_when_many", "userpkg_locate.sub.bench:handler", "userpkg_locate.sub.bench:joined",
    "userpkg_locate.star:loads", "userpkg_locate.lazy:anything", "json:loads", "math:sqrt",
    "userpkg_locate.fallback:speedy", "userpkg_locate.fallback:other", "userpkg_locate.fallback:matched",
    "userpkg_locate.lazy_attach:anything", "userpkg_locate.nsub.bench:run", "userns_locate.deeper.mod:run",
])
def test_what_can_be_called_passes_without_importing_it(code, reference):
    assert callable_problem(reference) == ""


@pytest.mark.parametrize("reference, problem", [
    ("userpkg_locat.sub.bench:run", "no module 'userpkg_locat.sub.bench' can be found; check the name"),
    ("userpkg_locate.sub.bnech:run", "no module 'userpkg_locate.sub.bnech' can be found (package 'userpkg_locate' is "
                                     "found)"),
    ("userpkg_locate.sub.bench:runn", "defines no 'runn' (its functions: Runner, fast_json, only_when_many, run); "
                                      "check the name after the ':'"),
    ("userpkg_locate.sub.bench:ROUNDS", "'ROUNDS' in module 'userpkg_locate.sub.bench' is a int value, not a "
                                        "function"),
    ("userpkg_locate.sub.bench:NAMES", "is a list value, not a function"),
    ("userpkg_locate.broken:run", "cannot be read: SyntaxError (line 3); fix the file"),
    ("userpkg_locate.sub.bench.run:go", "no module 'userpkg_locate.sub.bench.run' can be found"),
    ("json:dumpz", "module 'json' defines no 'dumpz' (its functions: "),
])
def test_what_cannot_be_called_is_one_line_with_the_fix(code, reference, problem):
    found = callable_problem(reference)
    assert problem in found and "\n" not in found, found


def test_programs_and_working_folders(tmp_path):
    assert program_problem("sh", None) == ""
    assert program_problem("{python}", None) == ""
    assert "program 'shh' is not on PATH; install it" in program_problem("shh", None)
    assert program_problem("sh", None, {"PATH": str(tmp_path)}).startswith("program 'sh' is not on PATH")
    script = tmp_path / "bench.sh"
    script.write_text("#!/bin/sh\necho '{}'\n")
    assert "is not executable; chmod +x it" in program_problem("./bench.sh", str(tmp_path))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert program_problem("./bench.sh", str(tmp_path)) == ""
    assert f"relative paths start at {tmp_path}" in program_problem("./other.sh", str(tmp_path))
    assert program_problem("sh", str(tmp_path / "gone")).startswith(f"working folder {str(tmp_path / 'gone')!r} "
                                                                    "does not exist")


def test_a_module_an_import_hook_provides_is_found_as_import_finds_it(code, tmp_path, monkeypatch):
    """An editable install of a flat-layout project puts a finder on sys.meta_path, not a folder on
    sys.path: the check asks the same finders import does."""
    import importlib.abc
    import importlib.util
    import sys

    elsewhere = tmp_path / "checkout" / "hooked_locate"
    elsewhere.mkdir(parents=True)
    (elsewhere / "__init__.py").write_text(f"open({str(code)!r} + '/hooked', 'w').close()\n")
    (elsewhere / "bench.py").write_text("def run(seed):\n    return seed\n")

    class Editable(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "hooked_locate":
                return importlib.util.spec_from_file_location(name, elsewhere / "__init__.py",
                                                              submodule_search_locations=[str(elsewhere)])
            return None

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Editable()])
    assert callable_problem("hooked_locate.bench:run") == ""
    assert "defines no 'walk'" in callable_problem("hooked_locate.bench:walk")
    assert "no module 'hooked_locate.bnech' can be found (package 'hooked_locate' is found)" in \
        callable_problem("hooked_locate.bnech:run")


def test_a_module_already_imported_is_read_from_its_source_not_its_namespace(code):
    """The code server imports targets; a module edited since is judged by its file, and looking
    up the name never calls the module's own __getattr__."""
    import importlib
    import sys

    module = importlib.import_module("userpkg_locate.sub.bench")
    try:
        for name in list(code.iterdir()):  # importing it on purpose left marks: not the check's doing
            name.unlink()
        assert callable_problem("userpkg_locate.sub.bench:run") == ""
        Path(module.__file__).write_text("def renamed(seed):\n    return seed\n")
        assert "defines no 'run' (its functions: renamed)" in callable_problem("userpkg_locate.sub.bench:run")
    finally:
        for name in [n for n in sys.modules if n.startswith("userpkg_locate")]:
            del sys.modules[name]
