"""The registry of study kinds: the shipped ones, any a user's package declares, any registered at run time.

A package adds a kind without editing this project by declaring an entry point in the group
``benchmark_assets.kinds`` that names a ``StudyKind`` instance (or class), e.g. in its pyproject.toml::

    [project.entry-points."benchmark_assets.kinds"]
    latency_budget = "mypackage.kind:KIND"
"""
from __future__ import annotations

from importlib.metadata import entry_points

from benchmark_assets.kinds.base import StudyKind
from benchmark_assets.kinds.comparison import KIND as COMPARISON
from benchmark_assets.kinds.load_sweep import KIND as LOAD_SWEEP
from benchmark_assets.kinds.ratchet import KIND as RATCHET

ENTRY_POINT_GROUP = "benchmark_assets.kinds"

KINDS: dict[str, StudyKind] = {kind.name: kind for kind in (RATCHET, COMPARISON, LOAD_SWEEP)}
_entry_points_loaded = False


class KindError(RuntimeError):
    """A kind that cannot be registered (a clash of names, not a StudyKind)."""


def register_kind(kind: StudyKind | type[StudyKind], *, replace: bool = False) -> StudyKind:
    """Add a kind to the registry (an instance, or a class to instantiate); returns the instance."""
    instance = kind() if isinstance(kind, type) else kind
    if not isinstance(instance, StudyKind):
        raise KindError(f"{kind!r} is not a benchmark_assets.kinds.base.StudyKind")
    known = KINDS.get(instance.name)
    if known is not None and known is not instance and not replace and type(known) is not type(instance):
        raise KindError(f"two study kinds are named {instance.name!r}: {type(known).__module__} and "
                        f"{type(instance).__module__}")
    KINDS[instance.name] = instance
    return instance


def load_entry_point_kinds(*, force: bool = False) -> list[str]:
    """Register every kind declared in the ``benchmark_assets.kinds`` entry point group (once)."""
    global _entry_points_loaded
    if _entry_points_loaded and not force:
        return []
    _entry_points_loaded = True
    added = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            kind = register_kind(entry.load())
        except Exception as error:  # noqa: BLE001 - one broken plugin must not hide the others
            raise KindError(f"entry point {entry.name!r} = {entry.value!r} in group {ENTRY_POINT_GROUP!r} does not "
                            f"load: {type(error).__name__}: {error}") from error
        added.append(kind.name)
    return added


def get_kind(name: str) -> StudyKind | None:
    """The kind registered under ``name`` (entry points included), or None."""
    load_entry_point_kinds()
    return KINDS.get(name)


def kind_names() -> list[str]:
    load_entry_point_kinds()
    return list(KINDS)


def kind_of(study) -> StudyKind:
    """The kind of a loaded study."""
    kind = get_kind(study.kind)
    if kind is None:
        raise KindError(f"study {study.name!r} has kind {study.kind!r}, which is not registered")
    return kind


__all__ = ["ENTRY_POINT_GROUP", "KINDS", "KindError", "StudyKind", "get_kind", "kind_names", "kind_of",
           "load_entry_point_kinds", "register_kind"]
