"""Provenance of a decision: the git commit of the project and the hash of the study file."""
from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(folder: str | Path = ".") -> str:
    """The commit checked out in ``folder`` (with ``+dirty`` if it has changes), or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit or "unknown"


def code_commit(study_folder: str | Path) -> str:
    """The commit a decision was made with: the study folder's repository, or (a study kept outside
    any repository) the repository benchmark_assets runs from."""
    commit = git_commit(study_folder)
    return commit if commit != "unknown" else git_commit(Path(__file__).resolve().parent)
