"""The registry of study kinds: the shipped ones, any a user's package declares, any registered at run time.

A package adds a kind without editing this project by declaring an entry point in the group
``benchmark_assets.kinds`` that names a ``StudyKind`` instance (or class), e.g. in its pyproject.toml::

    [project.entry-points."benchmark_assets.kinds"]
    latency_budget = "mypackage.kind:KIND"

Kinds are imported on first use, each on its own: a kind that fails to import (a broken plugin,
a missing optional dependency) fails only the studies of that kind, with the reason.
"""
from __future__ import annotations

import importlib
import threading
from importlib.metadata import entry_points

from benchmark_assets.kinds.base import StudyKind

ENTRY_POINT_GROUP = "benchmark_assets.kinds"
# The shipped kinds: name -> the module whose KIND is the instance.
SHIPPED = {
    "ratchet": "benchmark_assets.kinds.ratchet",
    "comparison": "benchmark_assets.kinds.comparison",
    "load_sweep": "benchmark_assets.kinds.load_sweep",
    "acceptance": "benchmark_assets.kinds.acceptance",
    "estimator_benchmark": "benchmark_assets.kinds.estimator_benchmark",
}

KINDS: dict[str, StudyKind] = {}
_FAILED: dict[str, str] = {}  # kind name -> why it could not be loaded
_LOCK = threading.RLock()  # sensors evaluate in threads: nobody sees a half-built registry
_loaded = False


class KindError(RuntimeError):
    """A kind that cannot be registered or loaded; the message says which and why."""


def register_kind(kind: StudyKind | type[StudyKind], *, replace: bool = False) -> StudyKind:
    """Add a kind to the registry (an instance, or a class to instantiate); returns the instance."""
    instance = kind() if isinstance(kind, type) else kind
    if not isinstance(instance, StudyKind):
        raise KindError(f"{kind!r} is not a benchmark_assets.kinds.base.StudyKind")
    with _LOCK:
        known = KINDS.get(instance.name)
        if known is not None and known is not instance and not replace and type(known) is not type(instance):
            raise KindError(f"two study kinds are named {instance.name!r}: {type(known).__module__} and "
                            f"{type(instance).__module__}")
        KINDS[instance.name] = instance
        _FAILED.pop(instance.name, None)
    return instance


def load_entry_point_kinds(*, force: bool = False) -> list[str]:
    """Load the shipped kinds and every kind of the ``benchmark_assets.kinds`` entry point group
    (once, unless ``force``); returns the names registered from entry points. A kind that does not
    load is remembered with its reason instead of stopping the others."""
    global _loaded
    with _LOCK:
        if _loaded and not force:
            return []
        for name, module in SHIPPED.items():
            if name not in KINDS:
                try:
                    register_kind(importlib.import_module(module).KIND)
                except Exception as error:  # noqa: BLE001 - reported when a study of this kind is loaded
                    _FAILED[name] = f"the shipped kind {name!r} does not import: {type(error).__name__}: {error}"
        added = []
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            try:
                added.append(register_kind(entry.load()).name)
            except Exception as error:  # noqa: BLE001 - one broken plugin must not hide the others
                _FAILED[entry.name] = (f"entry point {entry.name!r} = {entry.value!r} in group {ENTRY_POINT_GROUP!r} "
                                       f"does not load: {type(error).__name__}: {error}")
        _loaded = True
        return added


def get_kind(name: str) -> StudyKind | None:
    """The kind registered under ``name`` (entry points included), or None if there is none;
    raises KindError, with the reason, for a kind that exists but failed to load."""
    load_entry_point_kinds()
    with _LOCK:
        if name in KINDS:
            return KINDS[name]
        if name in _FAILED:
            raise KindError(_FAILED[name])
    return None


def kind_names() -> list[str]:
    load_entry_point_kinds()
    return list(KINDS)


def kind_of(study) -> StudyKind:
    """The kind of a loaded study."""
    kind = get_kind(study.kind)
    if kind is None:
        raise KindError(f"study {study.name!r} has kind {study.kind!r}, which is not registered")
    return kind


__all__ = ["ENTRY_POINT_GROUP", "KINDS", "SHIPPED", "KindError", "StudyKind", "get_kind", "kind_names", "kind_of",
           "load_entry_point_kinds", "register_kind"]
