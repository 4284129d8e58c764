"""Regressions across commits: each (subject, metric) a study's ledger tracks, as a history
ordered by commit, fitted with robust levels (``stats.steps``, asv's method), and the steps
between them with the commits they fall between. No Dagster.

- **The history:** one point per commit. It is the weighted median of the effects of the runs
  at that commit, weighted by the inverse of their interval widths.
- **Order:** the repository's own order (``git rev-list --topo-order``), when git knows every
  commit. Otherwise the order in which the commits were first decided on, which the report says.
  A ``+dirty`` commit sits right after its base commit.
- **Direction:** the study's kind says whether a higher effect is better
  (``StudyKind.higher_is_better``). Where it cannot say, steps are reported but none is called a
  regression.
"""
from __future__ import annotations

import math
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark_assets.stats.steps import detect_steps, weighted_median

REGRESSION_COLUMNS = ("subject", "metric", "from_commit", "to_commit", "commits_between", "level_before",
                      "level_after", "size", "relative", "noise", "regression", "newest", "history_commits",
                      "order")
MIN_HISTORY = 3  # fewer commits than this say nothing about steps
THRESHOLD = 0.05  # asv's default: a step smaller than 5 % of the earlier level is not reported


def git_order(folder: Path) -> dict[str, int]:
    """Position of every commit the repository at ``folder`` knows, oldest first; {} without git."""
    try:
        out = subprocess.run(["git", "rev-list", "--topo-order", "--reverse", "--all"], cwd=folder,
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {commit: index for index, commit in enumerate(out.split())}


def commit_positions(commits: pd.DataFrame, known: dict[str, int]) -> tuple[pd.Series, str]:
    """A sort key per commit (``commits`` has ``git_commit`` and ``first_decided``) and the order used."""
    bases = commits["git_commit"].str.replace("+dirty", "", regex=False)
    if len(known) and bases.isin(known.keys()).all():
        dirty = commits["git_commit"].str.endswith("+dirty").astype(float) * 0.5
        return bases.map(known).astype(float) + dirty, "git history"
    return pd.to_datetime(commits["first_decided"], utc=True, format="ISO8601").rank(method="first"), \
        "first decision (git does not know every commit)"


def histories(ledger: pd.DataFrame, known: dict[str, int]) -> dict[tuple[str, str], pd.DataFrame]:
    """Per (subject, metric) with a finite effect: one row per commit, in commit order, with
    ``value`` (weighted median of its runs' effects), ``weight`` and ``runs``."""
    if ledger.empty:
        return {}
    rows = ledger[np.isfinite(pd.to_numeric(ledger["effect"], errors="coerce"))].copy()
    width = (rows["ci_high"] - rows["ci_low"]).astype(float)
    rows["weight"] = np.where(np.isfinite(width) & (width > 0), 1.0 / width, np.nan)
    out = {}
    for (subject, metric), group in rows.groupby(["subject", "metric"], sort=True):
        fill = np.nanmedian(group["weight"]) if group["weight"].notna().any() else 1.0
        group = group.assign(weight=group["weight"].fillna(fill))
        per_commit = []
        for commit, runs in group.groupby("git_commit", sort=False):
            per_commit.append({"git_commit": commit, "first_decided": runs["decided_at"].min(),
                               "value": weighted_median(runs["effect"].to_numpy(float), runs["weight"].to_numpy(float)),
                               "weight": float(np.median(runs["weight"])), "runs": len(runs)})
        frame = pd.DataFrame(per_commit)
        frame["position"], order = commit_positions(frame, known)
        frame = frame.sort_values(["position", "first_decided"]).reset_index(drop=True)
        frame.attrs["order"] = order
        out[(subject, metric)] = frame
    return out


def find_regressions(ledger: pd.DataFrame, higher_is_better: Callable[[str, str], bool | None],
                     known: dict[str, int], *, threshold: float = THRESHOLD) -> tuple[pd.DataFrame, dict]:
    """Every step in every history (a row each, ``regression`` where it goes the worse way) and the
    histories themselves (for plots)."""
    found, series = [], histories(ledger, known)
    for (subject, metric), history in series.items():
        if len(history) < MIN_HISTORY:
            continue
        direction = higher_is_better(subject, metric)
        segments, steps = detect_steps(history["value"].to_numpy(float), history["weight"].to_numpy(float),
                                       higher_is_better=bool(direction), threshold=threshold)
        history.attrs["segments"] = segments
        commits = history["git_commit"].tolist()
        for number, step in enumerate(steps, start=1):
            before, after = commits[step.before], commits[step.after]
            found.append({
                "subject": subject, "metric": metric, "from_commit": before, "to_commit": after,
                "commits_between": _between(before, after, known) if history.attrs["order"] == "git history" else -1,
                "level_before": step.level_before, "level_after": step.level_after, "size": step.size,
                "relative": step.relative, "noise": step.noise,
                "regression": bool(step.regression and direction is not None),
                "newest": number == len(steps), "history_commits": len(history),  # the level the history is at now
                "order": history.attrs["order"]})
    frame = pd.DataFrame(found, columns=list(REGRESSION_COLUMNS))
    return frame.astype({"regression": bool, "newest": bool}), series


def _between(before: str, after: str, known: dict[str, int]) -> int:
    """Commits in git's order strictly between two benchmarked ones: where the change may hide."""
    first, last = (known[c.replace("+dirty", "")] for c in (before, after))
    return max(0, last - first - 1)


def step_id(study: str, row) -> str:
    """What names one step for good: a sensor flags each once."""
    return f"{study}|{row['subject']}|{row['metric']}|{row['from_commit']}|{row['to_commit']}"


def _short(commit: str) -> str:
    return commit[:10] + ("+dirty" if commit.endswith("+dirty") else "")


def _number(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.4g}"


def regressions_markdown(study: str, steps: pd.DataFrame, series: dict) -> str:
    """The report: each step with its commit range and size, regressions first, the newest marked."""
    tracked = sum(1 for h in series.values() if len(h) >= MIN_HISTORY)
    lines = [f"# Regressions across commits: {study}", "",
             f"{len(series)} tracked histories (subject x metric) in the ledger, {tracked} with at least "
             f"{MIN_HISTORY} commits; a step is a change of level in a robust piecewise-constant fit "
             "(asv's method), reported when larger than the history's noise and than 5 % of the earlier level "
             "(asv's default); a regression is one the worse way.", ""]
    if steps.empty:
        lines.append("No steps: every history holds one level." if tracked else
                     f"Not enough history yet: a step needs at least {MIN_HISTORY} commits with decisions.")
        return "\n".join(lines) + "\n"
    ordered = steps.sort_values(["regression", "newest"], ascending=False)
    lines += ["| subject | metric | last commit before | first commit after | commits between | before | after | "
              "size | relative | regression |", "|---|---|---|---|---:|---:|---:|---:|---:|---|"]
    for row in ordered.to_dict("records"):
        flag = ("**yes, newest**" if row["newest"] else "yes") if row["regression"] else "no"
        relative = f"{100 * row['relative']:+.1f} %" if math.isfinite(row["relative"]) else "n/a"
        between = str(row["commits_between"]) if row["commits_between"] >= 0 else "?"
        lines.append(f"| {row['subject']} | {row['metric']} | `{_short(row['from_commit'])}` | "
                     f"`{_short(row['to_commit'])}` | {between} | {_number(row['level_before'])} | "
                     f"{_number(row['level_after'])} | {row['size']:+.4g} | {relative} | {flag} |")
    orders = sorted(set(steps["order"]))
    lines += ["", f"Commits are ordered by {' / '.join(orders)}. *Commits between*: commits in git's history "
              "between the last run at the old level and the first at the new one, where the change may hide "
              "(`git log <before>..<after>`); `?` when git does not know them."]
    return "\n".join(lines) + "\n"


def regressions_plot(study: str, steps: pd.DataFrame, series: dict, path: Path, limit: int = 6) -> Path | None:
    """The histories with steps (regressions first), each with its fitted levels; None if none."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if steps.empty:
        return None
    keys = list(dict.fromkeys(zip(steps.sort_values("regression", ascending=False)["subject"],
                                  steps.sort_values("regression", ascending=False)["metric"])))[:limit]
    figure = Figure(figsize=(7, 2.4 * len(keys)), dpi=96)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(keys), 1, squeeze=False)
    for axis, key in zip(axes[:, 0], keys):
        history = series[key]
        x = np.arange(len(history))
        axis.plot(x, history["value"], "o", color="#444444", markersize=4, label="per commit")
        for segment in history.attrs.get("segments", []):
            axis.hlines(segment.level, segment.start - 0.4, segment.end - 0.6, color="#1f77b4", linewidth=2)
        flagged = steps[(steps["subject"] == key[0]) & (steps["metric"] == key[1]) & steps["regression"]]
        for row in flagged.to_dict("records"):
            at = history.index[history["git_commit"] == row["to_commit"]][0]
            axis.axvspan(at - 1, at, color="#d62728", alpha=0.15)
        axis.set_title(f"{key[0]} - {key[1]}", fontsize=9)
        axis.set_xticks(x, [_short(c)[:7] for c in history["git_commit"]], rotation=90, fontsize=6)
    axes[-1, 0].set_xlabel("commit (oldest first); red: a regression's commit range")
    figure.suptitle(f"{study}: levels across commits", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=96)
    return path
