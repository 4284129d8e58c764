"""The ratchet's outputs for review: the markdown report, the proposed patch, sensitivity plots, exports."""
from __future__ import annotations

import difflib
import math
import re
from pathlib import Path

import pandas as pd
from matplotlib.ticker import MaxNLocator

from benchmark_assets import artifacts
from benchmark_assets.kinds.base import Markdown, errors_markdown
from benchmark_assets.kinds.ratchet.analysis import (
    ACCEPT,
    INCONCLUSIVE,
    NO_SENSITIVITY,
    REJECT,
    changes,
    decision_word,
    metric_table,
    shown_decisions,
    summarise_verdicts,
)
from benchmark_assets.kinds.ratchet.family import CORRECTION_NAMES
from benchmark_assets.kinds.ratchet.interactions import train_grid
from benchmark_assets.kinds.ratchet.rules import DecisionRules
from benchmark_assets.kinds.ratchet.search import SEARCH_SUBJECT, describe, failure_reasons, importance_markdown
from benchmark_assets.kinds.ratchet.sensitivity import paired_gain_curves
from benchmark_assets.stats.sequential import look_levels
from benchmark_assets.sweep import CURRENT_POINT, ConstantSweep, format_value

SPLIT_COLOURS = (("train", "tab:blue"), ("validation", "tab:orange"))


def format_report(
    verdicts: pd.DataFrame,
    *,
    study: str,
    rules: DecisionRules,
    duration_seconds: float,
    n_train: int,
    n_validation: int,
    n_trials: int,
    n_failed: int,
    failures: pd.DataFrame | None = None,
    interactions: pd.DataFrame | None = None,
    cumulative: pd.DataFrame | None = None,
    rounds: list[int] | None = None,
    spending: str = "obrien_fleming",
    searched=None,
    search_lines: list[str] | None = None,
) -> str:
    """A markdown report a reviewer can paste into a pull request."""
    counts = summarise_verdicts(verdicts)
    metric = verdicts["metric"].iloc[0] if len(verdicts) else "?"
    lines = [
        f"# Ratchet summary: {study}",
        "",
        f"- Constants evaluated: **{counts['constants']}** "
        f"(accepted {counts['accepted']}, rejected {counts['rejected']}, "
        f"no sensitivity {counts['no_sensitivity']}"
        + (f", inconclusive {counts['inconclusive']}" if counts["inconclusive"] else "") + ")",
        f"- Decision metric: `{metric}`; scenarios: {n_train} train / {n_validation} validation; "
        f"trials: {n_trials} ({n_failed} failed)",
        f"- Rules: improvement > {rules.improvement_threshold}, sensitivity < {rules.sensitivity_threshold}, "
        f"{rules.confidence_level:.0%} one-sided paired sign-flip permutation test and its interval (exact up to "
        f"16 validation scenarios), {CORRECTION_NAMES.get(rules.correction, rules.correction)} correction over "
        f"the changes tested, cliff margin {rules.cliff_safety_margin:.0%} of the swept range (aggregates: "
        f"{rules.bootstrap_resamples} bootstrap resamples, seed {rules.rng_seed})",
        *family_lines(verdicts, interactions),
        f"- Intervals: *validation CI* is the {rules.confidence_level:.0%} two-sided sign-flip interval of the "
        "validation delta, uncorrected; *corrected CI* is the one that agrees with the change's one-sided test at "
        "its corrected level (1 - 2 x that level: for one change tested at 5 %, 90 % two-sided, so it can be the "
        "narrower of the two); it decides.",
        f"- Duration: {duration_seconds:.1f} s",
        "",
        "The ratchet proposes; it never edits the constants. Review `proposed.patch`.",
        "",
    ]

    def table(frame: pd.DataFrame, title: str) -> None:
        lines.extend([f"## {title}", ""])
        if frame.empty:
            lines.extend(["(none)", ""])
            return
        lines.append(
            "| constant | tier | current | proposed | train delta | validation delta | "
            "validation CI | corrected CI | p (adj.) | reason |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for row in frame.itertuples():
            reason = row.reason + (f" WARNING: {row.cliff_warning}" if row.cliff_warning and "cliff:" not in row.reason else "")
            current, proposed = format_value(row.current), format_value(row.proposed)
            if row.constant == SEARCH_SUBJECT and searched:  # several constants at once: their values
                current, proposed = searched(CURRENT_POINT), searched(row.proposed_point)
            lines.append(
                f"| {row.constant} | {row.tier} | {current} | {proposed} | "
                f"{row.train_delta:+.4f} | {row.validation_delta:+.4f} | "
                f"{_interval(row.ci_low, row.ci_high)} | {corrected_interval(row)} | "
                f"{row.p_adjusted:.4f} | {reason} |"
            )
        lines.append("")

    for decision, title in ((ACCEPT, "Accepted"), (INCONCLUSIVE, "Inconclusive (a further round follows)"),
                            (REJECT, "Rejected"), (NO_SENSITIVITY, "No sensitivity")):
        if decision != INCONCLUSIVE or (verdicts["decision"] == decision).any():
            table(verdicts[verdicts["decision"] == decision], title)
    if search_lines:
        lines.extend(search_lines)
    if rounds:
        lines.extend(sequential_markdown(verdicts, n_validation, rounds, spending, 1.0 - rules.confidence_level))
    if interactions is not None and len(interactions):
        lines.extend(interactions_markdown(interactions, rules))
    if cumulative is not None and len(cumulative):
        lines.extend(cumulative_markdown(cumulative))
    if failures is not None:
        lines.extend(errors_markdown(failures))
    return "\n".join(lines)


def decision_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """One row per constant as the verdicts asset shows it: the decision, the values, the paired
    validation gain and the corrected interval that decides, the adjusted p-value and why."""
    rows = [{
        "constant": row.constant, "decision": shown,
        "current": format_value(row.current), "proposed": format_value(row.proposed),
        "validation gain": "" if pd.isna(row.validation_delta) else f"{row.validation_delta:+.4f}",
        "corrected interval": corrected_interval(row),
        "p (adjusted)": "" if pd.isna(row.p_adjusted) else f"{row.p_adjusted:.4f}",
        "reason": row.reason if len(row.reason) <= 80 else row.reason[:79] + "…",  # whole in the report
    } for row, shown in zip(verdicts.itertuples(), shown_decisions(verdicts))]
    return pd.DataFrame(rows, columns=["constant", "decision", "current", "proposed", "validation gain",
                                       "corrected interval", "p (adjusted)", "reason"])


def corrected_interval(row) -> str:
    """The corrected interval, or why there is none: an untested change makes no claim."""
    if not getattr(row, "tested", True):
        return "not tested"
    return _interval(row.corrected_ci_low, row.corrected_ci_high)


def _interval(low: float, high: float) -> str:
    """'[+0.0123, +0.0456]', or 'none (too few scenarios)' where the test has no interval."""
    if pd.isna(low) and pd.isna(high):
        return "none (too few scenarios)"
    return f"[{low:+.4f}, {high:+.4f}]"


def family_lines(verdicts: pd.DataFrame, interactions: pd.DataFrame | None) -> list[str]:
    """How many changes were tested on validation (the family the correction runs over) and why
    the others were not: screened on train, they make no claim."""
    if "tested" not in verdicts or verdicts.empty:
        return []
    tested = verdicts[verdicts["tested"].astype(bool)]
    pairs = interactions[interactions["tested"].astype(bool)] if interactions is not None and "tested" in interactions \
        else pd.DataFrame()
    untested = verdicts[~verdicts["tested"].astype(bool)]
    same = untested["proposed"] == untested["current"]
    cliff = ~same & (untested["cliff_warning"] != "")
    small = ~same & ~cliff
    names = ", ".join(tested["constant"].tolist() + pairs.get("pair", pd.Series(dtype=str)).tolist()) or "none"
    return [f"- Tested on validation: **{changes(len(tested) + len(pairs))}** ({names}), one family; not tested "
            f"(screened on train, so not in the correction): {int(same.sum())} propose no change, "
            f"{int(small.sum())} gain no more than the improvement threshold on train, {int(cliff.sum())} are "
            "next to a cliff"]


def sequential_markdown(verdicts: pd.DataFrame, n_validation: int, rounds: list[int], spending: str,
                        alpha: float) -> list[str]:
    """The looks: how many validation scenarios each had, its share of the error budget, and the
    verdicts it settled (``rounds``: scenarios per further round)."""
    sizes = [n_validation]
    for extra in rounds:
        sizes.append(sizes[-1] + extra)
    schedule = look_levels(sizes, sizes[-1], alpha, spending)
    lines = ["## Sequential validation", "",
             f"Verdicts still inconclusive get up to {len(rounds)} further rounds of new validation scenarios; each "
             f"look is tested at its share of the error budget ({spending.replace('_', '-')}-type spending), so over "
             "all looks a null change is accepted no more often than one look at the full level would.", "",
             "| look | validation scenarios | level | settled at this look |", "|---:|---:|---:|---|"]
    for look, size in enumerate(sizes):
        settled = verdicts[(verdicts["look"] == look) & (verdicts["decision"] != INCONCLUSIVE)]
        waiting = verdicts[(verdicts["look"] == look) & (verdicts["decision"] == INCONCLUSIVE)]
        taken = (verdicts["look"] >= look).any()
        level = f"{schedule[look]:.4f}" if taken else f"{schedule[look]:.4f} (not taken)"
        if len(settled) <= 8:
            names = ", ".join(f"{r.constant} ({r.decision})" for r in settled.itertuples())
        else:
            counts = settled["decision"].value_counts()
            names = f"{len(settled)} constants: " + ", ".join(f"{n} {d}" for d, n in counts.items())
        if len(waiting):
            names += ("; " if names else "") + "waiting for the next round: " + ", ".join(waiting["constant"])
        lines.append(f"| {look} | {size} | {level} | {names or '-'} |")
    return lines + [""]


def interactions_markdown(interactions: pd.DataFrame, rules: DecisionRules) -> list[str]:
    """The interaction section: per pair, the best cell on train against each constant's best
    alone, with the paired validation gains and their corrected sign-flip intervals."""
    fmt = lambda x: "n/a" if pd.isna(x) else f"{x:+.4f}"  # noqa: E731

    def gain(delta, low, high) -> str:
        """A validation gain and its corrected interval ('not tested' when the pair was screened out)."""
        return f"{fmt(delta)} " + ("(not tested)" if pd.isna(low) and pd.isna(high) else f"[{fmt(low)}, {fmt(high)}]")
    lines = ["## Interactions", "",
             "Each pair is swept as a grid on train; its best cell must beat each constant's best value alone and "
             "today's values on validation (three one-sided paired sign-flip tests, all of which must reject). A pair "
             "is tested when its best cell beats all three by more than the improvement threshold on train; the "
             "tested pairs are in the constants' family and correction. The heat maps show the train grid.", "",
             "| pair | best alone | best pair (train) | vs first alone | vs second alone | vs current | p (adj.) | "
             "decision |", "|---|---|---|---|---|---|---|---|"]
    for row in interactions.itertuples():
        lines.append(
            f"| {row.pair} | {row.first}={format_value(row.first_alone)} / {row.second}={format_value(row.second_alone)} "
            f"| {row.first}={format_value(row.first_value)}, {row.second}={format_value(row.second_value)} "
            f"| {gain(row.validation_vs_first, row.first_ci_low, row.first_ci_high)} "
            f"| {gain(row.validation_vs_second, row.second_ci_low, row.second_ci_high)} "
            f"| {gain(row.validation_vs_current, row.current_ci_low, row.current_ci_high)} "
            f"| {row.p_adjusted:.4f} | {row.decision}: {row.reason} |")
    return lines + [""]


def searched_importance(search: pd.DataFrame) -> dict:
    """Each searched constant's importance, as the search table carries it (the same on every row)."""
    return {c.removeprefix("importance_"): float(search[c].iloc[0]) for c in search.columns
            if c.startswith("importance_") and len(search) and pd.notna(search[c].iloc[0])}


def search_markdown(study, search: pd.DataFrame, current_train: float, plot: Path | None) -> list[str]:
    """The search: its sampler and budget, what it measured, its best proposal and how much each
    searched constant mattered (fANOVA importance over the proposals)."""
    metric = study.spec.metric
    complete = search[search["state"] == "complete"]
    lines = ["## Search", "",
             f"Optuna ({study.search.sampler}, seed {study.search.seed}) explored {', '.join(study.searched)} "
             f"together on the {len(study.split[0])} train scenarios: {len(complete)} of {study.search.trials} "
             f"proposals measured ({int((search['state'] == 'failed').sum())} failed), {study.search.batch} at a "
             "time. Its best proposal is judged on validation as the `search` verdict, in the same correction as "
             "the constants.", ""]
    counts = failure_reasons(search)
    if len(counts):  # why proposals failed: the commonest reason first
        lines += [f"- Failed proposals: {counts.iloc[0]} x {counts.index[0]}"
                  + (f" (and {counts.sum() - counts.iloc[0]} for other reasons)" if len(counts) > 1 else ""), ""]
    best = search[search["best"].astype(bool)]
    if len(best):
        row = best.iloc[0]
        lines += [f"- Best on train: {describe(study, row['sweep_point'])}: {metric} {row[f'train_{metric}']:.4f} "
                  f"(today's values {describe(study, CURRENT_POINT)}: {current_train:.4f})", ""]
    elif complete.empty and search["state"].isin(["complete", "failed"]).sum() >= study.search.trials:
        lines += ["- Every proposal failed (see the trials' errors): there is nothing to judge on validation.", ""]
    else:
        lines += ["- Not done yet: the budget is not used up.", ""]
    importance = searched_importance(search)
    lines += importance_markdown(importance) + ([""] if importance else [])
    if plot is not None:
        lines += [f"History and importance: `plots/{plot.name}`", ""]
    return lines


def plot_search(folder: Path, study, search: pd.DataFrame, current_train: float) -> Path | None:
    """Left: each proposal's train value in the order Optuna asked, the running best and today's
    value. Right: each searched constant's importance."""
    metric = study.spec.metric
    complete = search[search["state"] == "complete"].sort_values("number")
    if complete.empty:
        return None
    figure, (history, bars) = artifacts.figure(10.0, 4.0, 2)
    values = complete[f"train_{metric}"].to_numpy()
    best = pd.Series(values).cummax() if study.maximize else pd.Series(values).cummin()
    history.scatter(complete["number"], values, s=14, color="tab:blue", label="proposal (train mean)")
    history.step(complete["number"], best, where="post", color="tab:green", label="best so far")
    history.axhline(current_train, color="grey", linestyle="--", label="today's values")
    history.set_xlabel("proposal")
    history.set_ylabel(f"{metric} on train")
    history.legend(fontsize=7)
    importance = searched_importance(search)
    if importance:
        names = sorted(importance, key=importance.get)
        bars.barh(names, [importance[n] for n in names], color="tab:purple")
        bars.set_xlabel("importance (fANOVA, sums to 1)")
    else:
        bars.set_axis_off()
    figure.suptitle(f"search ({study.search.sampler})")
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.9, wspace=0.45)
    path = folder / "plots" / "search.png"
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path)
    return path


def cumulative_markdown(cumulative: pd.DataFrame) -> list[str]:
    """The accepted changes built up together on validation: what the patch holds and why."""
    fmt = lambda x: "" if pd.isna(x) else f"{x:+.4f}"  # noqa: E731
    lines = ["## Cumulative validation", "",
             "The accepted changes, added one at a time in order of their own validation gain: each must still add "
             "more than the improvement threshold on top of those kept before it. `proposed.patch` holds the kept "
             "ones.", "",
             "| step | change | alone | together with | adds | interval | decision |", "|---:|---|---|---|---|---|---|"]
    for row in cumulative.itertuples():
        interval = "" if pd.isna(row.ci_low) else f"[{fmt(row.ci_low)}, {fmt(row.ci_high)}]"
        lines.append(f"| {row.step} | {row.changes} | {fmt(row.own_delta)} | {row.compared_with} | "
                     f"{fmt(row.marginal_delta)} | {interval} | {row.decision}: {row.reason} |")
    return lines + [""]


def kept_changes(study, verdicts: pd.DataFrame, cumulative: pd.DataFrame | None) -> dict:
    """The changes the patch holds: those the cumulative validation kept (its last kept
    combination); without it, every accepted constant."""
    if cumulative is None:
        accepted = verdicts[verdicts["decision"] == ACCEPT]
        return dict(zip(accepted["constant"], accepted["proposed"]))
    kept = cumulative[cumulative["decision"] == "keep"]
    if kept.empty:
        return {}
    params = study.point_for(kept["combination"].iloc[-1]).params
    return {name: value for name, value in params.items() if float(value) != float(study.current_params[name])}


def plot_interaction(folder: Path, grid: pd.DataFrame, verdict: pd.Series, metric: str) -> Path:
    """The pair's train grid as a heat map, each cell labelled with its mean; today's values
    (circle), each constant's best alone (triangles) and the best cell (star) marked."""
    first, second = verdict["first"], verdict["second"]
    rows = sorted(grid["second_value"].unique())
    columns = sorted(grid["first_value"].unique())
    values = grid.pivot_table(index="second_value", columns="first_value", values="train_mean", dropna=False)
    values = values.reindex(index=rows, columns=columns)
    figure, axis = artifacts.figure(max(6.0, 1.0 * len(columns) + 3.0), 0.6 * len(rows) + 2.8)
    image = axis.imshow(values.to_numpy(dtype=float), origin="lower", cmap="viridis", aspect="auto")
    figure.colorbar(image, ax=axis, label=f"{metric} (train mean)")
    for i in range(len(rows)):
        for j in range(len(columns)):
            cell = values.iat[i, j]
            if pd.notna(cell):
                light = image.norm(cell) > 0.6  # viridis turns yellow: dark text there
                axis.text(j, i - 0.28, f"{cell:.3f}", ha="center", va="center", fontsize=7,
                          color="black" if light else "white")

    def mark(a, b, marker, colour, label):
        axis.scatter([columns.index(float(a))], [rows.index(float(b))], marker=marker, s=180, facecolors="none",
                     edgecolors=colour, linewidths=2, label=label)

    mark(verdict["first_current"], verdict["second_current"], "s", "magenta", "today")
    mark(verdict["first_alone"], verdict["second_current"], "^", "tab:orange", f"{first} best alone")
    mark(verdict["first_current"], verdict["second_alone"], "v", "tab:orange", f"{second} best alone")
    mark(verdict["first_value"], verdict["second_value"], "*", "tab:red", "best cell")
    axis.set_xticks(range(len(columns)), [format_value(v) for v in columns])
    axis.set_yticks(range(len(rows)), [format_value(v) for v in rows])
    axis.set_xlabel(first)
    axis.set_ylabel(second)
    axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, frameon=False)
    axis.set_title(f"{verdict['pair']}: {verdict['decision']}")
    figure.subplots_adjust(left=0.12, right=0.95, bottom=0.28, top=0.9)
    path = folder / "plots" / f"interaction_{artifacts.safe_label(first)}__{artifacts.safe_label(second)}.png"
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path)
    return path


def proposed_study_patch(study_text: str, label: str, changes: dict[str, float]) -> str:
    """A unified diff of the study file with each accepted constant's ``current`` replaced.

    Both flow (``name: {current: 0.5, ...}``) and block mappings are understood; nothing is
    written anywhere: a person applies the patch after review."""
    lines = study_text.splitlines(keepends=True)
    new_lines = list(lines)
    for name, value in changes.items():
        new_text = format_value(value)
        header = re.compile(rf"^(\s*){re.escape(name)}\s*:")
        for i, line in enumerate(new_lines):
            match = header.match(line)
            if not match:
                continue
            if re.search(r"current\s*:", line):
                new_lines[i] = re.sub(r"(current\s*:\s*)[^,}\s]+", rf"\g<1>{new_text}", line, count=1)
                break
            indent = len(match.group(1))
            for j in range(i + 1, len(new_lines)):
                stripped = new_lines[j].strip()
                if stripped and len(new_lines[j]) - len(new_lines[j].lstrip()) <= indent:
                    break
                if re.match(r"\s*current\s*:", new_lines[j]):
                    new_lines[j] = re.sub(r"(current\s*:\s*)[^#\s]+", rf"\g<1>{new_text}", new_lines[j], count=1)
                    break
            break
    return "".join(difflib.unified_diff(lines, new_lines, fromfile=f"a/{label}", tofile=f"b/{label}"))


def plot_sensitivity(
    folder: Path, sweep: ConstantSweep, aggregates: pd.DataFrame, gains: pd.DataFrame, verdict: pd.Series,
    metric: str, *, improvement_threshold: float,
) -> Path:
    """Two panels per constant. Left: the metric on train and validation with 95 % t-bands.
    Right: the paired gain of each value over the current one (what the ratchet decides on),
    with its band, the improvement threshold and, at the proposed value, the corrected interval
    the verdict used."""
    figure, (raw_axis, gain_axis) = artifacts.figure(10.0, 4.0, 2)
    rows = aggregates[aggregates["metric"] == metric]
    for split, colour in SPLIT_COLOURS:
        points = []
        for value in sweep.values:
            match = rows[(rows["sweep_point"] == sweep.key_for(value)) & (rows["split"] == split)]
            if len(match):
                r = match.iloc[0]
                points.append((float(value), r["mean"], r["t_low"], r["t_high"]))
        if points:
            frame = pd.DataFrame(points, columns=["value", "mean", "low", "high"]).sort_values("value")
            raw_axis.plot(frame["value"], frame["mean"], marker="o", color=colour, label=f"{split} mean")
            raw_axis.fill_between(frame["value"], frame["low"], frame["high"], color=colour, alpha=0.2)
        curve = gains[(gains["constant"] == sweep.name) & (gains["split"] == split)].sort_values("value")
        if len(curve):
            gain_axis.plot(curve["value"], curve["gain"], marker="o", color=colour, label=f"{split} paired gain")
            gain_axis.fill_between(curve["value"], curve["t_low"], curve["t_high"], color=colour, alpha=0.2)
    gain_axis.axhline(0.0, color="black", linewidth=0.8)
    gain_axis.axhline(improvement_threshold, color="tab:red", linestyle="--", linewidth=0.8,
                      label=f"improvement threshold {format_value(improvement_threshold)}")
    low, high = verdict.get("corrected_ci_low"), verdict.get("corrected_ci_high")
    if pd.notna(low) and pd.notna(high) and pd.notna(verdict.get("validation_delta")):
        delta = float(verdict["validation_delta"])
        gain_axis.errorbar([float(verdict["proposed"])], [delta], yerr=[[delta - low], [high - delta]], fmt="D",
                           color="tab:green", capsize=4, label="verdict: corrected sign-flip interval")
    for axis in (raw_axis, gain_axis):
        axis.axvline(float(sweep.current), color="grey", linestyle="--", label=f"current {format_value(sweep.current)}")
        if verdict["proposed"] != verdict["current"]:
            axis.axvline(float(verdict["proposed"]), color="tab:green", linestyle=":",
                         label=f"proposed {format_value(verdict['proposed'])}")
        axis.set_xlabel(sweep.name)
        # Few ticks: tick labels were most of the drawing time (20 constants, two panels each).
        axis.xaxis.set_major_locator(MaxNLocator(5))
        axis.yaxis.set_major_locator(MaxNLocator(5))
        axis.legend(fontsize=7, loc="best")
    raw_axis.set_ylabel(f"{metric} (mean, 95% t-band over scenarios)")
    gain_axis.set_ylabel(f"{metric} gain over current (paired by scenario)")
    figure.suptitle(f"{sweep.name}: {decision_word(verdict['decision'])}")
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.9, wspace=0.28)
    path = folder / "plots" / f"{artifacts.safe_label(sweep.name)}.png"
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path)
    return path


def _draw_one(job: tuple) -> Path:
    """One constant's plot (run in a worker process)."""
    folder, sweep, aggregates, gains, verdict, metric, threshold = job
    return plot_sensitivity(folder, sweep, aggregates, gains, verdict, metric, improvement_threshold=threshold)


def plot_overview(folder: Path, sweeps: list[ConstantSweep], gains: pd.DataFrame, verdicts: pd.DataFrame,
                  metric: str, *, improvement_threshold: float) -> Path | None:
    """Every decided constant at a glance: its validation paired gain over the current value,
    the current and proposed values, titled with its verdict (each constant's own plot has both
    splits, the bands and the verdict's interval). At most 1,280 x 1,400 pixels however many
    constants: panels shrink past 24, so the overview always fits in the event's plot budget."""
    if not sweeps:
        return None
    columns = min(len(sweeps), max(4, math.ceil(math.sqrt(len(sweeps) * 1.4))))
    rows = -(-len(sweeps) // columns)
    scale = min(1.0, 12.8 / (3.2 * columns), 13.6 / (2.3 * rows + 0.4))
    figure, axes = artifacts.figure(3.2 * columns * scale, (2.3 * rows + 0.4) * scale, columns, rows)
    axes = list(axes.ravel()) if columns * rows > 1 else [axes]
    by_constant = verdicts.set_index("constant")
    for axis, sweep in zip(axes, sweeps):
        verdict = by_constant.loc[sweep.name]
        for split, colour in SPLIT_COLOURS:
            curve = gains[(gains["constant"] == sweep.name) & (gains["split"] == split)].sort_values("value")
            if len(curve):
                axis.plot(curve["value"], curve["gain"], marker="o", markersize=3, color=colour, label=split)
        axis.axhline(0.0, color="black", linewidth=0.6)
        axis.axhline(improvement_threshold, color="tab:red", linestyle="--", linewidth=0.6)
        axis.axvline(float(sweep.current), color="grey", linestyle="--", linewidth=0.8)
        if verdict["proposed"] != verdict["current"]:
            axis.axvline(float(verdict["proposed"]), color="tab:green", linestyle=":", linewidth=1.2)
        axis.set_title(f"{sweep.name}: {decision_word(verdict['decision'])}", fontsize=9,
                       color="tab:green" if verdict["decision"] == "accept" else "black")
        axis.tick_params(labelsize=7)
        axis.xaxis.set_major_locator(MaxNLocator(4))
        axis.yaxis.set_major_locator(MaxNLocator(4))
    for axis in axes[len(sweeps):]:
        axis.set_visible(False)
    labelled = next((axis for axis in axes if axis.get_legend_handles_labels()[0]), None)
    if labelled is not None:  # every trial failed: nothing drawn, nothing to label
        labelled.legend(fontsize=7, loc="best")
    figure.suptitle(f"{metric} paired gain over the current value (dashed grey: current; dotted green: proposed; "
                    "dashed red: improvement threshold)", fontsize=9)
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    path = folder / "plots" / "overview.png"
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path)
    return path


_PLOT_ORDER = {"accept": 0, "inconclusive": 1, "reject": 2}  # then no_sensitivity and the rest


def write_ratchet_outputs(study, verdicts: pd.DataFrame, aggregates: pd.DataFrame, trials: pd.DataFrame,
                          folder: Path, *, interactions: pd.DataFrame | None = None,
                          cumulative: pd.DataFrame | None = None, search: pd.DataFrame | None = None):
    """Report, exports, plots and patch in ``folder`` (the run's own); returns (summary table,
    metadata, with every constant's plot and every interaction heat map shown inline)."""
    heat_maps = _interaction_plots(study, interactions, trials, folder)
    search_lines, searched = None, None
    if search is not None and len(search) and study.searched:
        table = metric_table(trials, study.spec.metric)
        train = [c for c in study.split[0] if c in table.columns]
        current_train = float(table.loc[CURRENT_POINT, train].mean()) if CURRENT_POINT in table.index else float("nan")
        plot = plot_search(folder, study, search, current_train)
        search_lines = search_markdown(study, search, current_train, plot)
        searched = lambda key: describe(study, key)  # noqa: E731
        if plot is not None:
            heat_maps = heat_maps + [("search", plot)]
    decided = set(verdicts["constant"])
    sweeps = [s for s in study.constant_sweeps() if s.name in decided]
    keys = {p.key for p in study.sweep_points(names=decided)}  # with the grid cells of their pairs
    if search is not None and len(search):
        keys |= set(search["sweep_point"])  # and the search's proposals
    trials = trials[trials["sweep_point"].isin(keys)]
    aggregates = aggregates[aggregates["sweep_point"].isin(keys)]
    train_ids, validation_ids = study.split
    compute_seconds = float(trials["duration_seconds"].sum())
    report = format_report(
        verdicts, study=study.name, rules=study.rules, duration_seconds=compute_seconds,
        n_train=len(train_ids), n_validation=len(validation_ids), n_trials=len(trials),
        n_failed=int((trials["status"] != "ok").sum()), failures=trials, interactions=interactions,
        cumulative=cumulative, rounds=[len(r) for r in study.validation_rounds],
        spending=study.spec.sequential.spending, searched=searched, search_lines=search_lines,
    )
    accepted = verdicts[verdicts["decision"] == "accept"]
    changes = kept_changes(study, verdicts, cumulative)
    patch = proposed_study_patch(study.text, f"studies/{study.path.name}", changes)
    by_constant = verdicts.set_index("constant")
    gains = paired_gain_curves(trials, sweeps, metric=study.spec.metric, maximize=study.maximize,
                               splits={"train": train_ids, "validation": validation_ids},
                               confidence_level=study.rules.confidence_level)
    jobs = []
    for sweep in sweeps:
        own = {sweep.key_for(v) for v in sweep.values}
        jobs.append((folder, sweep, aggregates[aggregates["sweep_point"].isin(own)], gains[gains["constant"] == sweep.name],
                     by_constant.loc[sweep.name], study.spec.metric, float(study.rules.improvement_threshold)))
    drawn = artifacts.in_parallel(_draw_one, jobs)
    plots = {sweep.name: path for sweep, path in zip(sweeps, drawn)}
    overview = plot_overview(folder, sweeps, gains, verdicts, study.spec.metric,
                             improvement_threshold=float(study.rules.improvement_threshold))
    # The event log keeps every run's event: the overview, then the constants a decision moves
    # (accepted first), then the interaction heat maps, within a budget; the rest by file.
    ordered = sorted(sweeps, key=lambda s: _PLOT_ORDER.get(by_constant.loc[s.name, "decision"], 3))
    shown = artifacts.budgeted_markdown(
        ([("all constants at a glance", overview)] if overview and len(sweeps) > 1 else [])
        + [(f"{s.name}: {decision_word(by_constant.loc[s.name, 'decision'])}", plots[s.name]) for s in ordered] + heat_maps)
    counts = summarise_verdicts(verdicts)
    summary_info = {**counts, "study": study.name, "study_hash": study.spec_hash, "trial_compute_seconds": compute_seconds,
                    "metric": study.spec.metric, "accepted": accepted[["constant", "current", "proposed"]].to_dict("records"),
                    "accepted_count": counts["accepted"], "patch": changes}
    paths = artifacts.write_files(folder, {
        "report.md": report, "proposed.patch": patch, "verdicts.csv": verdicts, "verdicts.json": verdicts,
        "aggregates.csv": aggregates, "sensitivity.csv": gains, "summary.json": summary_info,
        **({"interactions.csv": interactions} if interactions is not None and len(interactions) else {}),
        **({"cumulative.csv": cumulative} if cumulative is not None and len(cumulative) else {}),
        **({"search.csv": search} if search is not None and len(search) else {}),
    })
    summary = verdicts[["constant", "tier", "decision", "current", "proposed", "train_delta", "validation_delta",
                        "corrected_ci_low", "corrected_ci_high", "reason", "cliff_warning"]].copy()
    metadata = {
        **counts,
        "report": Markdown(report),
        "proposed_patch": Markdown(f"```diff\n{patch or '(no accepted changes)'}\n```"),
        "artifacts": folder,
        "patch_changes": ", ".join(f"{n}={format_value(v)}" for n, v in changes.items()) or "none",
        "trial_compute_seconds": round(compute_seconds, 3),
    }
    if plots or heat_maps:
        metadata["plots"] = Markdown(shown)
        metadata["plots_folder"] = folder / "plots"
    metadata.update({f"file_{name}": path for name, path in paths.items()})
    return summary, metadata


def _interaction_plots(study, interactions: pd.DataFrame | None, trials: pd.DataFrame,
                       folder: Path) -> list[tuple[str, Path]]:
    """Each judged pair's heat map, with its label."""
    if interactions is None or interactions.empty:
        return []
    table = metric_table(trials, study.spec.metric)
    sweeps = {s.name: s for s in study.constant_sweeps()}
    drawn = []
    for _, verdict in interactions.iterrows():
        grid = train_grid(table, sweeps[verdict["first"]], sweeps[verdict["second"]], study.change_key, study.split[0])
        path = plot_interaction(folder, grid, verdict, study.spec.metric)
        drawn.append((f"{verdict['pair']}: {verdict['decision']}", path))
    return drawn
