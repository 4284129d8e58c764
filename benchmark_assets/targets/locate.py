"""What can be checked of a study's code before any of it runs: that a ``module:function`` names a
module that can be found and a top-level name in it that can be called, that a command's program
is on PATH (or is an executable file), that its working folder exists. No user code is imported
or run: modules are found by the import system's own finders (``sys.meta_path``: the path finder,
editable installs, import hooks), each package's folders read from its spec, never by executing
it; a module's names are read from its source with ``ast``. Where reading cannot tell (a compiled
module, a module-level ``__getattr__``, ``from x import *``, a finder that fails), the check passes
and the run says. No Dagster."""
from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import sys
from pathlib import Path

PYTHON = "{python}"


class _CannotTell(Exception):
    """Finding the module went somewhere only importing could follow: the check passes."""


def _locations(spec) -> list[str]:
    """A package spec's folders as plain paths, without asking for its parent module (a namespace
    package's path object recomputes itself from its parent, which is not imported)."""
    found = spec.submodule_search_locations
    return list(getattr(found, "_path", None) or found or [])


def _find(qualified: str, search: list[str] | None):
    """The spec of ``qualified`` from the import system's own finders (sys.meta_path: the path
    finder, and those of editable installs or import hooks), given its parent's folders."""
    if search is None:  # a top-level name: find_spec of a name without dots imports nothing
        return importlib.util.find_spec(qualified)
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        spec = find_spec(qualified, search)
        if spec is not None:
            return spec
    return None


def _module_spec(name: str):
    """The spec of module ``name`` without importing it or its parents (None: not found); raises
    _CannotTell where only importing could say."""
    parts = name.split(".")
    search: list[str] | None = None
    spec = None
    try:
        for i in range(len(parts)):
            qualified = ".".join(parts[: i + 1])
            module = sys.modules.get(qualified)
            spec = getattr(module, "__spec__", None) if module is not None else _find(qualified, search)
            if module is not None and spec is None:
                raise _CannotTell(qualified)  # e.g. __main__, or a module made at run time
            if spec is None:
                return None
            if i < len(parts) - 1:
                if spec.submodule_search_locations is None:
                    return None  # a module, not a package: it has no submodules
                search = list(getattr(module, "__path__", None) or []) if module is not None else _locations(spec)
    except _CannotTell:
        raise
    except Exception as error:  # a finder that fails: only importing could say more
        raise _CannotTell(name) from error
    return spec


def _bound_names(target) -> list[str]:
    return [leaf.id for leaf in ast.walk(target) if isinstance(leaf, ast.Name)]


def _kind_of_value(value) -> str:
    """What an assignment binds, as far as reading tells: a literal's type, or 'assignment'."""
    if isinstance(value, ast.Constant):
        return f"value: {type(value.value).__name__}"
    if isinstance(value, (ast.List, ast.ListComp)):
        return "value: list"
    if isinstance(value, (ast.Dict, ast.DictComp)):
        return "value: dict"
    return "assignment"


def _top_level(tree: ast.Module) -> tuple[dict[str, set[str]], bool]:
    """Every binding of each name at a module's top level (including inside its top-level compound
    statements: if / try / with / for / match ...), as kinds ('function', 'class', 'import',
    'value: <type>', 'assignment'), and whether reading cannot be sure (a star import, or a module
    ``__getattr__`` bound in any way)."""
    names: dict[str, set[str]] = {}
    unsure = False

    def bind(name: str, kind: str) -> None:
        nonlocal unsure
        names.setdefault(name, set()).add(kind)
        unsure |= name == "__getattr__"

    def visit(body) -> None:
        nonlocal unsure
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bind(node.name, "class" if isinstance(node, ast.ClassDef) else "function")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if alias.name == "*":
                        unsure = True
                    else:
                        bind(alias.asname or alias.name.split(".")[0], "import")
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                kind = _kind_of_value(node.value) if node.value is not None else "assignment"
                for target in targets:
                    for name in _bound_names(target):
                        bind(name, kind)
            else:
                if isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith)):
                    for name in _bound_names(getattr(node, "target", None) or ast.Tuple(elts=[])) + [
                            n for item in getattr(node, "items", []) if item.optional_vars is not None
                            for n in _bound_names(item.optional_vars)]:
                        bind(name, "assignment")
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(node, field, None) or [])
                for handler in getattr(node, "handlers", None) or []:
                    visit(handler.body)
                for case in getattr(node, "cases", None) or []:
                    visit(case.body)
    visit(tree.body)
    return names, unsure


def callable_problem(reference: str) -> str:
    """Why ``module:function`` cannot name something to call, with the fix; '' when it can, or
    when only running the module could tell."""
    module_name, _, attribute = reference.partition(":")
    try:
        spec = _module_spec(module_name)
    except _CannotTell:
        return ""
    if spec is None:
        top = module_name.split(".")[0]
        try:
            parent = "" if top == module_name or _module_spec(top) is None else f" (package {top!r} is found)"
        except _CannotTell:
            parent = ""
        return (f"no module {module_name!r} can be found{parent}; check the name and that it is importable "
                "where benchmark-assets runs (installed, or on PYTHONPATH)")
    origin = spec.origin
    if origin is None or not origin.endswith(".py"):
        return _imported_problem(module_name, attribute)  # compiled, built in or namespace: only its module says
    try:
        tree = ast.parse(Path(origin).read_bytes(), filename=origin)
    except (OSError, SyntaxError, ValueError) as error:
        where = f" (line {error.lineno})" if isinstance(error, SyntaxError) and error.lineno else ""
        return f"module {module_name!r} ({origin}) cannot be read: {type(error).__name__}{where}; fix the file"
    names, unsure = _top_level(tree)
    if attribute not in names:
        if unsure:
            return ""
        defined = sorted(n for n, kinds in names.items() if kinds & {"function", "class"} and not n.startswith("_"))
        return (f"module {module_name!r} defines no {attribute!r}"
                + (f" (its functions: {', '.join(defined[:8])}{', ...' if len(defined) > 8 else ''})" if defined
                   else "") + f"; check the name after the ':' (the module is {origin})")
    kinds = names[attribute]
    if all(kind.startswith("value: ") for kind in kinds):  # every binding a literal: never callable
        shown = " or ".join(sorted(kind.removeprefix("value: ") for kind in kinds))
        return f"{attribute!r} in module {module_name!r} is a {shown} value, not a function; name a function"
    return ""


def _imported_problem(module_name: str, attribute: str) -> str:
    """For a module already imported that has no source to read (a built-in or compiled one):
    its own namespace, looked up without calling the module's ``__getattr__``."""
    module = sys.modules.get(module_name)
    if module is None:
        return ""
    namespace = vars(module)
    if attribute not in namespace:
        return "" if "__getattr__" in namespace else (f"module {module_name!r} has no {attribute!r}; check the name "
                                                      "after the ':'")
    value = namespace[attribute]
    return "" if callable(value) else (f"{attribute!r} in module {module_name!r} is a {type(value).__name__}, not a "
                                       "function; name a function")


def program_problem(argv0: str, cwd: str | None, env: dict[str, str] | None = None) -> str:
    """Why a command's program cannot be started, with the fix; '' when it can (or when a
    placeholder other than {python} makes it unknowable before the run)."""
    folder = Path(cwd) if cwd is not None else Path.cwd()  # no ~: the run starts no shell to expand it
    if cwd is not None and not folder.is_dir():
        return f"working folder {cwd!r} does not exist; create it, or fix cwd"
    if argv0 == PYTHON or "{" in argv0:
        return ""
    path = (env or {}).get("PATH", os.environ.get("PATH", ""))
    if os.sep in argv0:
        program = Path(argv0)
        program = program if program.is_absolute() else folder / program
        if not program.is_file():
            return (f"program {argv0!r} does not exist (relative paths start at {folder}); give its path, or "
                    "'{python}' and the script to run a Python script")
        if not os.access(program, os.X_OK):
            return (f"program {argv0!r} is not executable; chmod +x it, or run it through an interpreter "
                    "('{python}', 'bash', ...)")
        return ""
    if shutil.which(argv0, path=path) is None:
        return (f"program {argv0!r} is not on PATH; install it, give its full path, or use '{{python}}' to run a "
                "Python script with this interpreter")
    return ""


def problem_and_fix(message: str) -> tuple[str, str]:
    """A check's one line split into what is wrong and what to do (the part after the last '; ')."""
    problem, _, fix = message.rpartition("; ")
    return (problem, fix) if problem else (message, "correct it")
