"""Systems under test: built-in targets by name, or any importable ``module:function``."""
from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass

BUILTIN_TARGETS = {"memory": "benchmark_assets.targets.memory:evaluate"}


class TargetError(ValueError):
    """A target reference that cannot be resolved; the message says how to fix it."""


@dataclass(frozen=True)
class Target:
    """A resolved target. ``constants``/``metrics`` are None when the callable does not declare them."""

    reference: str
    evaluate: Callable
    prepare_batch: Callable | None
    evaluate_prepared: Callable | None
    constants: frozenset[str] | None
    integer_constants: frozenset[str]
    metrics: tuple[str, ...] | None
    metric_bounds: dict[str, tuple[float, float]]

    @property
    def version(self) -> str:
        return str(getattr(self.evaluate, "version", "1"))


def resolve_target(reference: str) -> Target:
    """Turn ``memory`` or ``package.module:function`` into a callable with its declared surface."""
    path = BUILTIN_TARGETS.get(reference, reference)
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise TargetError(
            f"unknown target {reference!r}; use a built-in ({', '.join(sorted(BUILTIN_TARGETS))}) "
            "or 'module:function'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise TargetError(
            f"target {reference!r}: cannot import module {module_name!r} ({error}); "
            "check the name and that it is on PYTHONPATH"
        ) from error
    except Exception as error:  # the module's own code failed while importing
        where = ""
        if error.__traceback__ is not None:
            frame = traceback.extract_tb(error.__traceback__)[-1]
            where = f" at {frame.filename}:{frame.lineno}"
        raise TargetError(
            f"target {reference!r}: importing module {module_name!r} raised {type(error).__name__}: "
            f"{str(error)[:200]}{where}; fix the module so that it imports"
        ) from error
    function = getattr(module, attribute, None)
    if not callable(function):
        raise TargetError(
            f"target {reference!r}: module {module_name!r} has no callable {attribute!r}; "
            "name a function evaluate(scenario, params, seed) -> dict"
        )
    constants = getattr(function, "constants", None)
    metrics = getattr(function, "metrics", None)
    return Target(
        reference=reference,
        evaluate=function,
        prepare_batch=getattr(function, "prepare_batch", None),
        evaluate_prepared=getattr(function, "evaluate_prepared", None),
        constants=frozenset(constants) if constants is not None else None,
        integer_constants=frozenset(getattr(function, "integer_constants", None) or ()),
        metrics=tuple(metrics) if metrics is not None else None,
        metric_bounds=dict(getattr(function, "metric_bounds", {}) or {}),
    )
