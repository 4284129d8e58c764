"""Regressions across commits: the levels a study's ledger tracks, as histories ordered by
commit, fitted with robust levels (``stats.steps``, asv's method); the changes of level between
them and the regressions still in force, with the commits they fall between. No Dagster.

- **What is tracked:** a ledger entry's effect, where the study's kind says it is a level with a
  better direction (``kinds.capabilities.TracksLevels``). Examples are a load sweep's best throughput,
  or an acceptance suite's ratio to a fixed baseline side. A gain over a baseline that moves with
  the study (a ratchet's, a comparison's) is not a level, so the kind returns None and it is not
  tracked.
- **Histories:** one per (subject, metric, study file version). An edit of the study file starts
  a new history, since a level measured under other settings is no earlier point of the same line.
  Runs at ``+dirty`` commits (uncommitted work) are left out.
- **Points:** one per commit: the weighted median of the effects of its runs, weighted by the
  inverse of their interval widths. The commit's weight is the sum of its runs' weights, so ten
  runs count for more than one. Only the newest ``MAX_HISTORY`` commits are fitted.
- **Order:** git's order along the first-parent line of ``HEAD`` in the study's repository, when
  every commit is on it (an old commit benchmarked last sits where git puts it). Otherwise the
  order of first decision, which the report says.
"""
from __future__ import annotations

import math
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark_assets.stats.steps import detect_steps, regressions_in_force, weighted_median

REGRESSION_COLUMNS = ("subject", "metric", "from_commit", "to_commit", "commits_between", "level_before",
                      "level_now", "size", "relative", "noise", "confirmed", "history_commits", "order", "study_hash")
STEP_COLUMNS = ("subject", "metric", "from_commit", "to_commit", "level_before", "level_after", "size", "relative",
                "worse", "study_hash")
MIN_HISTORY = 3  # fewer commits than this say nothing about steps
MAX_HISTORY = 300  # the exact fit is O(n^3) in Python: 0.7 s at 300 commits, 10 s at 1,000
THRESHOLD = 0.05  # asv's default: a change smaller than 5 % of the earlier level is not reported
GIT_ORDER = "git history (first-parent line of HEAD)"


def git_order(folder: Path) -> dict[str, int]:
    """Position of every commit on the first-parent line of HEAD at ``folder``, oldest first; {}
    without git. (Not ``--all``: commits of unmerged branches are not between two of the line.)"""
    try:
        out = subprocess.run(["git", "rev-list", "--first-parent", "--reverse", "HEAD"], cwd=folder,
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {commit: index for index, commit in enumerate(out.split())}


def _order(commits: pd.DataFrame, known: dict[str, int]) -> tuple[pd.Series, str]:
    """A sort key per commit (``commits`` has ``git_commit`` and ``first_decided``) and the order used."""
    if len(known) and commits["git_commit"].isin(known.keys()).all():
        return commits["git_commit"].map(known).astype(float), GIT_ORDER
    decided = pd.to_datetime(commits["first_decided"], utc=True, errors="coerce", format="ISO8601")
    return decided.rank(method="first", na_option="bottom"), "first decision (git does not know every commit)"


def histories(ledger: pd.DataFrame, known: dict[str, int],
              higher_is_better: Callable[[str, str], bool | None]) -> dict[tuple[str, str, str], pd.DataFrame]:
    """Per tracked (subject, metric, study_hash): one row per commit, in commit order, with
    ``value``, ``weight`` and ``runs``; ``attrs`` holds the order used and the direction."""
    if ledger.empty:
        return {}
    rows = ledger[np.isfinite(pd.to_numeric(ledger["effect"], errors="coerce"))
                  & ~ledger["git_commit"].astype(str).str.endswith("+dirty")
                  & (ledger["git_commit"].astype(str) != "unknown")].copy()
    width = (rows["ci_high"] - rows["ci_low"]).astype(float)
    rows["weight"] = np.where(np.isfinite(width) & (width > 0), 1.0 / width, np.nan)
    out = {}
    for (subject, metric, version), group in rows.groupby(["subject", "metric", "study_hash"], sort=True):
        direction = higher_is_better(subject, metric)
        if direction is None:
            continue
        fill = np.nanmedian(group["weight"]) if group["weight"].notna().any() else 1.0
        group = group.assign(weight=group["weight"].fillna(fill))
        per_commit = []
        for commit, runs in group.groupby("git_commit", sort=False):
            per_commit.append({"git_commit": commit, "first_decided": runs["decided_at"].min(),
                               "value": weighted_median(runs["effect"].to_numpy(float), runs["weight"].to_numpy(float)),
                               "weight": float(runs["weight"].sum()), "runs": len(runs)})
        frame = pd.DataFrame(per_commit)
        frame["position"], order = _order(frame, known)
        frame = frame.sort_values(["position", "first_decided"]).tail(MAX_HISTORY).reset_index(drop=True)
        frame.attrs.update(order=order, higher_is_better=bool(direction))
        out[(subject, metric, version)] = frame
    return out


def find_regressions(ledger: pd.DataFrame, higher_is_better: Callable[[str, str], bool | None],
                     known: dict[str, int], *, threshold: float = THRESHOLD
                     ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The regressions in force in every tracked history, every change of level (either way,
    for the report), and the histories themselves (for plots)."""
    found, changes = [], []
    series = histories(ledger, known, higher_is_better)
    for (subject, metric, version), history in series.items():
        if len(history) < MIN_HISTORY:
            continue
        better = history.attrs["higher_is_better"]
        segments, steps = detect_steps(history["value"].to_numpy(float), history["weight"].to_numpy(float),
                                       higher_is_better=better, threshold=threshold)
        history.attrs["segments"] = segments
        commits = history["git_commit"].tolist()
        for step in steps:
            changes.append({"subject": subject, "metric": metric, "from_commit": commits[step.before],
                            "to_commit": commits[step.after], "level_before": step.level_before,
                            "level_after": step.level_after, "size": step.size, "relative": step.relative,
                            "worse": step.regression, "study_hash": version})
        for regression in regressions_in_force(segments, higher_is_better=better, threshold=threshold):
            before, after = commits[regression.before], commits[regression.after]
            found.append({
                "subject": subject, "metric": metric, "from_commit": before, "to_commit": after,
                "commits_between": known[after] - known[before] - 1 if history.attrs["order"] == GIT_ORDER else -1,
                "level_before": regression.level_before, "level_now": regression.level_now, "size": regression.size,
                "relative": regression.relative, "noise": regression.noise, "confirmed": regression.confirmed,
                "history_commits": len(history), "order": history.attrs["order"], "study_hash": version})
    regressions = pd.DataFrame(found, columns=list(REGRESSION_COLUMNS)).astype({"confirmed": bool})
    return regressions, pd.DataFrame(changes, columns=list(STEP_COLUMNS)), series


def step_id(study: str, row) -> str:
    """What names one regression for good: a sensor flags each once. (A bisection that adds runs
    between its commits narrows the range and names it anew.)"""
    return f"{study}|{row['subject']}|{row['metric']}|{row['from_commit']}|{row['to_commit']}"


def _short(commit: str) -> str:
    return commit[:10]


def _number(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.4g}"


def _percent(value: float) -> str:
    return f"{100 * value:+.1f} %" if math.isfinite(value) else "n/a"


def regressions_markdown(study: str, regressions: pd.DataFrame, changes: pd.DataFrame, series: dict, *,
                         threshold: float = THRESHOLD) -> str:
    """The report: the regressions in force (commit range, size, confirmed or pending), then
    every change of level."""
    fitted = sum(1 for h in series.values() if len(h) >= MIN_HISTORY)
    lines = [f"# Regressions across commits: {study}", "",
             f"{len(series)} tracked histories (subject x metric x study version) in the ledger, {fitted} with at "
             f"least {MIN_HISTORY} commits. Levels come from a robust piecewise-constant fit (asv's method); a "
             f"change is reported when larger than the history's noise and than {100 * threshold:g} % of the "
             "earlier level. A regression is in force while the newest level is worse than an earlier one by as "
             "much (asv's rule), and confirmed once the newest level has held for two commits.", ""]
    if not fitted:
        lines.append(f"Not enough history yet: a history needs at least {MIN_HISTORY} commits with decisions."
                     if series else "Nothing tracked: this study's ledger has no levels with a better direction.")
        return "\n".join(lines) + "\n"
    lines += ["## Regressions in force", ""]
    if regressions.empty:
        lines.append("None: every tracked history is at its best level, or within the noise of it.")
    else:
        lines += ["| subject | metric | last commit before | first commit after | commits between | before | now | "
                  "size | relative | status |", "|---|---|---|---|---:|---:|---:|---:|---:|---|"]
        for row in regressions.to_dict("records"):
            between = str(row["commits_between"]) if row["commits_between"] >= 0 else "?"
            status = "**confirmed**" if row["confirmed"] else "pending (newest level: one commit)"
            lines.append(f"| {row['subject']} | {row['metric']} | `{_short(row['from_commit'])}` | "
                         f"`{_short(row['to_commit'])}` | {between} | {_number(row['level_before'])} | "
                         f"{_number(row['level_now'])} | {row['size']:+.4g} | {_percent(row['relative'])} | {status} |")
        lines += ["", "*Commits between*: commits on the line between the last run at the earlier level and the first "
                  "at the next, where the change may hide (`git log <before>..<after>`); `?` when git does not know "
                  "them."]
    if len(changes):
        lines += ["", "## Every change of level", "", "| subject | metric | from commit | to commit | before | after | "
                  "relative | worse |", "|---|---|---|---|---:|---:|---:|---|"]
        for row in changes.to_dict("records"):
            lines.append(f"| {row['subject']} | {row['metric']} | `{_short(row['from_commit'])}` | "
                         f"`{_short(row['to_commit'])}` | {_number(row['level_before'])} | "
                         f"{_number(row['level_after'])} | {_percent(row['relative'])} | "
                         f"{'yes' if row['worse'] else 'no'} |")
    orders = sorted({h.attrs["order"] for h in series.values()})
    lines += ["", f"Commits are ordered by {' / '.join(orders)}."]
    return "\n".join(lines) + "\n"


def regressions_plot(study: str, regressions: pd.DataFrame, series: dict, path: Path, limit: int = 6) -> Path | None:
    """The histories with regressions in force (or else with the most levels), each with its
    fitted levels and the regressions' commit ranges in red; None when nothing was fitted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fitted = [key for key, history in series.items() if "segments" in history.attrs]
    if not fitted:
        return None
    flagged = {(r["subject"], r["metric"], r["study_hash"]) for r in regressions.to_dict("records")}
    keys = sorted(fitted, key=lambda k: (k not in flagged, -len(series[k].attrs["segments"])))[:limit]
    figure = Figure(figsize=(7, 2.4 * len(keys)), dpi=96)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(keys), 1, squeeze=False)
    for axis, key in zip(axes[:, 0], keys):
        history = series[key]
        x = np.arange(len(history))
        axis.plot(x, history["value"], "o", color="#444444", markersize=4)
        for segment in history.attrs["segments"]:
            axis.hlines(segment.level, segment.start - 0.4, segment.end - 0.6, color="#1f77b4", linewidth=2)
        mine = regressions[(regressions["subject"] == key[0]) & (regressions["metric"] == key[1])
                           & (regressions["study_hash"] == key[2])]
        for row in mine.to_dict("records"):
            at = int(history.index[history["git_commit"] == row["to_commit"]][0])
            axis.axvspan(at - 1, at, color="#d62728", alpha=0.15)
        axis.set_title(f"{key[0]} - {key[1]}", fontsize=9)
        axis.set_xticks(x, [_short(c)[:7] for c in history["git_commit"]], rotation=90, fontsize=6)
    axes[-1, 0].set_xlabel("commit (oldest first); red: where a regression in force began")
    figure.suptitle(f"{study}: levels across commits", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=96)
    return path
