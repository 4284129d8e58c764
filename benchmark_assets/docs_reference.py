"""The study file reference (docs/reference/study-file.md), generated from each kind's pydantic
model so that it cannot drift from what a study file may hold:

    .venv/bin/python -m benchmark_assets.docs_reference > docs/reference/study-file.md

A test checks that the page is what this prints. No Dagster."""
from __future__ import annotations

import re
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


if __name__ == "__main__":
    print(study_file_reference(), end="")
