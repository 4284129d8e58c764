"""Reference pages generated from the code, so that they cannot drift from it: the study file
(docs/reference/study-file.md, from each kind's pydantic model) and the statistics API
(docs/reference/statistics-api.md, from ``benchmark_assets.stats``' signatures and docstrings):

    .venv/bin/python -m benchmark_assets.docs_reference > docs/reference/study-file.md
    .venv/bin/python -m benchmark_assets.docs_reference statistics > docs/reference/statistics-api.md

A test checks that each page is what this prints. No Dagster."""
from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from typing import Literal

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

HEADER = """# The study file

Every field a study file of each shipped kind may hold, generated from the kinds' models
(`python -m benchmark_assets.docs_reference`), so it is never behind the code. A field without a
default must be given; an unknown field is refused with the name of the field closest to it.
Each kind's page shows a complete, commented study.
"""


def _type_name(annotation, kind: str) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type_name(a, kind) for a in args if a is not type(None)]
        return " or ".join(dict.fromkeys(parts)) + (" or null" if type(None) in args else "")
    if origin in (list, tuple, set, frozenset):
        inner = ", ".join(_type_name(a, kind) for a in args if a is not Ellipsis)
        return f"list of {inner}" if origin is not tuple else f"({inner})"
    if origin is dict:
        return f"mapping of {_type_name(args[0], kind)} to {_type_name(args[1], kind)}"
    if origin is typing.Annotated:
        return _type_name(args[0], kind)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{kind}-{annotation.__name__.lower()})"
    name = getattr(annotation, "__name__", str(annotation))
    return {"StrictInt": "int", "StrictFloat": "float", "StrictStr": "str", "StrictBool": "bool"}.get(name, name)


def _constraints(info) -> str:
    shown = []
    for item in info.metadata:
        for attribute, word in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "at least"),
                                ("max_length", "at most")):
            value = getattr(item, attribute, None)
            if value is not None:
                shown.append(f"{word} {value}" + (" items" if "length" in attribute else ""))
    return ", ".join(shown)


def _default(info) -> str:
    if info.default is not PydanticUndefined:
        value = info.default
        if isinstance(value, BaseModel):
            return "(its defaults)"
        return "null" if value is None else '`""`' if value == "" else f"`{value}`"
    if info.default_factory is not None:
        made = info.default_factory()
        return "(its defaults)" if isinstance(made, BaseModel) else f"`{made}`"
    return "**required**"


def _models(model: type[BaseModel], seen: dict[str, type[BaseModel]]) -> None:
    if model.__name__ in seen:
        return
    seen[model.__name__] = model
    for info in model.model_fields.values():
        for inner in _nested(info.annotation):
            _models(inner, seen)


def _nested(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _nested(a)]


def _table(model: type[BaseModel], kind: str) -> list[str]:
    doc = " ".join((model.__doc__ or "").split())
    lines = [f"### {kind}: {model.__name__}", ""] + ([doc, ""] if doc and not doc.startswith("!!!") else [])
    lines += ["| field | type | default | constraints |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        lines.append(f"| `{name}` | {_type_name(info.annotation, kind)} | {_default(info)} | {_constraints(info)} |")
    return lines + [""]


def study_file_reference() -> str:
    from benchmark_assets.kinds import SHIPPED, get_kind

    out = [HEADER]
    for kind_name in SHIPPED:
        kind = get_kind(kind_name)
        out += [f"## `kind: {kind_name}`", ""]
        seen: dict[str, type[BaseModel]] = {}
        _models(kind.spec_model, seen)
        for model in seen.values():
            out += _table(model, kind_name)
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


STATISTICS_HEADER = """# The statistics API

Every public name of `benchmark_assets.stats`, with its signature and docstring, generated from
the code (`python -m benchmark_assets.docs_reference statistics`), so it is never behind it. The
[statistics page](statistics.md) says which function answers which question, with an example.
"""


# Each signature block is this page itself: the test that holds it to the code (test_docs_blocks).
HELD = "<!-- docs-test: held-by benchmark_assets_tests/test_docs.py::test_the_statistics_api_page_is_generated_from_the_docstrings -->"


def _shown(value) -> str:
    """A constant as it reads in the code: functions by name (a repr would hold their address)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_shown(v)}" for k, v in value.items()) + "}"
    return value.__name__ if callable(value) else repr(value)


def _doc(obj) -> list[str]:
    text = inspect.getdoc(obj) or "(no docstring)"
    return [text, ""]


def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def statistics_api_reference() -> str:
    from benchmark_assets import stats

    out = [STATISTICS_HEADER]
    constants = [n for n in stats.__all__ if not callable(getattr(stats, n))]
    if constants:
        out += ["## Constants", "", "| name | value |", "|---|---|"]
        out += [f"| `{n}` | `{_shown(getattr(stats, n))}` |" for n in constants] + [""]
    classes = [n for n in stats.__all__ if inspect.isclass(getattr(stats, n))]
    functions = [n for n in stats.__all__ if callable(getattr(stats, n)) and n not in classes]
    out += ["## Functions", ""]
    for name in functions:
        out += [f"### `{name}`", "", HELD, "```python", f"{name}{_signature(getattr(stats, name))}", "```", ""]
        out += _doc(getattr(stats, name))
    out += ["## Classes", ""]
    for name in classes:
        cls = getattr(stats, name)
        out += [f"### `{name}`", ""] + _doc(cls)
        for member, value in vars(cls).items():
            if member.startswith("_") or not (inspect.isfunction(value) or isinstance(value, property)):
                continue
            function = value.fget if isinstance(value, property) else value
            shown = f"{name}.{member}" + ("" if isinstance(value, property) else _signature(function))
            out += [f"#### `{shown}`", ""] + _doc(function)
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


if __name__ == "__main__":
    print(statistics_api_reference() if sys.argv[1:] == ["statistics"] else study_file_reference(), end="")
