"""What can be checked of a study's code before any of it runs: that a ``module:function`` names a
module that can be found and a top-level name in it that can be called, that a command's program
is on PATH (or is an executable file), that its working folder exists. No user code is imported
or run: modules are found the way ``import`` finds them (``importlib.machinery.PathFinder``, parent
packages' paths read, not executed) and read with ``ast``. Where reading cannot tell (a compiled
module, a module-level ``__getattr__``, ``from x import *``), the check passes and the run says.
No Dagster."""
from __future__ import annotations

import ast
import importlib.machinery
import os
import shutil
import sys
from pathlib import Path

PYTHON = "{python}"


def _module_spec(name: str):
    """The spec of module ``name`` without importing it or its parents (None: not found). A module
    already imported is taken as it is."""
    if name in sys.modules:
        return getattr(sys.modules[name], "__spec__", None) or importlib.machinery.ModuleSpec(name, None)
    parts = name.split(".")
    if len(parts) == 1 and name in sys.builtin_module_names:
        return importlib.machinery.ModuleSpec(name, None, origin="built-in")
    search = None  # sys.path for the top-level package
    spec = None
    for i in range(len(parts)):
        qualified = ".".join(parts[: i + 1])
        if qualified in sys.modules:
            module = sys.modules[qualified]
            spec = getattr(module, "__spec__", None)
            search = list(getattr(module, "__path__", []) or [])
            continue
        spec = importlib.machinery.PathFinder.find_spec(qualified, search)
        if spec is None:
            return None
        search = list(spec.submodule_search_locations or [])
        if i < len(parts) - 1 and not spec.submodule_search_locations:
            return None  # a module, not a package: it has no submodules
    return spec


def _top_level(tree: ast.Module) -> tuple[dict[str, str], bool]:
    """Names bound at a module's top level (including inside its top-level if / try / with
    blocks), each with what binds it ('function', 'class', 'import', 'value: <type>', 'assignment'),
    and whether reading cannot be sure (a star import or a module ``__getattr__``)."""
    names: dict[str, str] = {}
    unsure = False

    def visit(body):
        nonlocal unsure
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names[node.name] = "function"
                unsure |= node.name == "__getattr__"
            elif isinstance(node, ast.ClassDef):
                names[node.name] = "class"
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if alias.name == "*":
                        unsure = True
                    else:
                        names[alias.asname or alias.name.split(".")[0]] = "import"
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = node.value
                kind = (f"value: {type(value.value).__name__}" if isinstance(value, ast.Constant)
                        else "value: list" if isinstance(value, (ast.List, ast.ListComp))
                        else "value: dict" if isinstance(value, (ast.Dict, ast.DictComp)) else "assignment")
                for target in targets:
                    for leaf in ast.walk(target):
                        if isinstance(leaf, ast.Name):
                            names[leaf.id] = kind
            elif isinstance(node, ast.If):
                visit(node.body), visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body), visit(node.orelse), visit(node.finalbody)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, (ast.With, ast.For, ast.While)):
                visit(node.body)
    visit(tree.body)
    return names, unsure


def callable_problem(reference: str) -> str:
    """Why ``module:function`` cannot name something to call, with the fix; '' when it can, or
    when only running the module could tell."""
    module_name, _, attribute = reference.partition(":")
    try:
        spec = _module_spec(module_name)
    except (ImportError, ValueError, OSError) as error:  # an unreadable parent package path
        return f"module {module_name!r} cannot be found ({error}); check the name"
    if spec is None:
        top = module_name.split(".")[0]
        parent = "" if top == module_name or _module_spec(top) is None else f" (package {top!r} is found)"
        return (f"no module {module_name!r} can be found{parent}; check the name and that it is importable "
                "where benchmark-assets runs (installed, or on PYTHONPATH)")
    if module_name in sys.modules:
        value = getattr(sys.modules[module_name], attribute, None)
        if value is None:
            return f"module {module_name!r} has no {attribute!r}; check the name after the ':'"
        return "" if callable(value) else (f"{attribute!r} in module {module_name!r} is a {type(value).__name__}, "
                                           "not a function; name a function")
    origin = spec.origin
    if spec.submodule_search_locations and (origin is None or not origin.endswith(".py")):
        return ""  # a namespace package: nothing to read
    if origin is None or not origin.endswith(".py"):
        return ""  # compiled or built in: only importing it could tell
    try:
        tree = ast.parse(Path(origin).read_bytes(), filename=origin)
    except (OSError, SyntaxError, ValueError) as error:
        where = f" (line {error.lineno})" if isinstance(error, SyntaxError) and error.lineno else ""
        return f"module {module_name!r} ({origin}) cannot be read: {type(error).__name__}{where}; fix the file"
    names, unsure = _top_level(tree)
    if attribute not in names:
        if unsure:
            return ""
        defined = sorted(n for n, kind in names.items() if kind in ("function", "class") and not n.startswith("_"))
        return (f"module {module_name!r} defines no {attribute!r}"
                + (f" (its functions: {', '.join(defined[:8])}{', ...' if len(defined) > 8 else ''})" if defined
                   else "") + f"; check the name after the ':' (the module is {origin})")
    kind = names[attribute]
    if kind.startswith("value: "):
        return (f"{attribute!r} in module {module_name!r} is a {kind.removeprefix('value: ')} value, not a "
                "function; name a function")
    return ""


def program_problem(argv0: str, cwd: str | None, env: dict[str, str] | None = None) -> str:
    """Why a command's program cannot be started, with the fix; '' when it can (or when a
    placeholder other than {python} makes it unknowable before the run)."""
    folder = Path(cwd).expanduser() if cwd is not None else Path.cwd()
    if cwd is not None and not folder.is_dir():
        return f"working folder {cwd!r} does not exist; create it, or fix cwd"
    if argv0 == PYTHON or "{" in argv0:
        return ""
    path = (env or {}).get("PATH", os.environ.get("PATH", ""))
    if os.sep in argv0:
        program = Path(argv0).expanduser()
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
