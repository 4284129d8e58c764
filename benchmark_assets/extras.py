"""Optional installs (pip extras): what serves one kind or one deployment stays out of the base
install, and a study or a setting that needs a missing one is refused with one line naming it.

Checked with ``importlib.util.find_spec``: nothing is imported, so the check is cheap and runs
before any user code or trial does."""
from __future__ import annotations

import importlib.util

# extra -> (modules it provides, what it is for)
EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    "estimators": (("sklearn",), "the shipped treatment-effect learners (scikit-learn)"),
    "causal": (("econml", "sklearn"), "EconML's causal forest"),
    "search": (("optuna",), "the ratchet's search over ranged constants (Optuna)"),
    "postgres": (("psycopg2", "dagster_postgres"), "a team deployment on PostgreSQL"),
    "scale": (("dagster_celery", "redis"), "trials on celery workers"),
    "k8s": (("dagster_k8s",), "trials on Kubernetes pods"),
}


def missing_modules(extra: str, modules: tuple[str, ...] | None = None) -> list[str]:
    """The modules of ``extra`` (or just ``modules`` of it) that are not installed; empty: all there."""
    return [module for module in (EXTRAS[extra][0] if modules is None else modules) if not _importable(module)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module set to None
        return False


def install_hint(extra: str) -> str:
    return f"pip install 'benchmark_assets[{extra}]'"


def missing_extra_message(extra: str, modules: tuple[str, ...] | None = None) -> str | None:
    """None when ``extra`` is installed (or just its ``modules``, where only those are needed);
    else what is missing and what it is for, in a few words."""
    missing = missing_modules(extra, modules)
    if not missing:
        return None
    return f"needs the {extra!r} extra for {EXTRAS[extra][1]} ({', '.join(missing)} not installed)"


class MissingExtraError(ImportError):
    """A setting needs an optional install that is not there; ``str()`` is one line with the fix."""


def require(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise ``MissingExtraError`` when ``extra`` is missing (or only its ``modules``, where the
    setting needs just those); ``what`` names the setting that needs it."""
    if message := missing_extra_message(extra, modules):
        raise MissingExtraError(f"{what} {message}. Fix: {install_hint(extra)}")
