"""Judges an acceptance suite: every criterion on the interval of its effect, corrected across the
suite; the report a reviewer pastes into a pull request; the CI gate. No Dagster."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark_assets.kinds.acceptance.spec import (
    ROUNDS,
    SIDES,
    SUMMARY,
    UNITS,
    WALL_TIME,
    AcceptanceStudy,
    SuiteCriterion,
)
from benchmark_assets.kinds.base import INBOX_BASE
from benchmark_assets.stats.acceptance import VERDICTS, Summary, Unpaired, judge

MET, NOT_MET, INCONCLUSIVE = VERDICTS
FAIL_ON = (NOT_MET, INCONCLUSIVE)

VERDICT_COLUMNS = [
    "benchmark", "criterion", "subject", "measure", "asked", "effect", "region_low", "region_high", "n_pairs",
    "n_failed", "baseline_mean", "optimised_mean", "estimate", "ci_low", "ci_high", "confidence_level",
    "raw_ci_low", "raw_ci_high", "raw_confidence_level", "p_value", "p_adjusted", "verdict", "repeats_needed", "scale", "shown_estimate",
    "shown_interval", "reason",
]


def current_trials(study: AcceptanceStudy, trials: pd.DataFrame) -> pd.DataFrame:
    """Rows of the suite as it stands: its benchmarks and repeats (and the runs its inbox brought),
    measured with each side's current setting. Rows of a removed benchmark or an older side are
    never judged."""
    if trials.empty:
        return trials
    wanted = {(b, s): study.side_fingerprint(b, s) for b in study.benchmarks for s in SIDES}
    inbox = {(b, s): study.inbox_fingerprint(b, s) for b in study.benchmarks for s in SIDES if study.is_ingested(b)}
    keep = [(wanted.get((b, s)) == f and int(r) < study.spec.repeats)
            or (int(r) >= INBOX_BASE and inbox.get((b, s)) == f)
            for b, s, r, f in zip(trials["benchmark"], trials["side"], trials["repeat"], trials["side_fingerprint"])]
    return trials[keep].reset_index(drop=True)


def _first_line(text: str) -> str:
    return (str(text).strip().splitlines() or [""])[0][:300]


def _failures(rows: pd.DataFrame) -> str:
    """'the optimised side failed in 3 of 10 repeats (first error: ...)', per side; '' if none."""
    parts = []
    for side in SIDES:
        own = rows[rows["side"] == side]
        failed = own[own["status"] != "ok"]
        if len(failed):
            parts.append(f"the {side} side failed in {len(failed)} of {len(own)} repeats (first error: "
                         f"{_first_line(failed['error'].iloc[0])})")
    return "; ".join(parts)


def criterion_samples(study: AcceptanceStudy, item: SuiteCriterion, trials: pd.DataFrame):
    """(baseline, optimised) values of the criterion's measure on the repeats where both sides
    succeeded (a ``mean`` needs only the optimised side), or the reason it cannot be judged."""
    rows = trials[trials["benchmark"] == item.benchmark]
    measure = item.spec.measure
    if rows.empty:
        return f"no trials of {item.benchmark} have been measured with the suite's current settings yet"
    if measure not in rows:
        return f"no side of {item.benchmark} has reported {measure} yet. {_failures(rows)}".strip(". ")
    ok = rows[rows["status"] == "ok"]
    if study.is_ingested(item.benchmark):
        return _ingested_sample(item, ok)
    table = ok.pivot_table(index="repeat", columns="side", values=measure, aggfunc="first").reindex(columns=list(SIDES))
    paired = item.spec.effect != "mean"
    usable = table.dropna() if paired else table[["optimised"]].dropna()
    if len(usable) < 2:
        what = "both sides succeeded" if paired else "the optimised side succeeded"
        why = _failures(rows)
        return (f"only {len(usable)} repeats where {what}; at least 2 are needed for an interval"
                + (f": {why}" if why else ""))
    if item.spec.effect == "ratio" and (usable.to_numpy() <= 0).any():
        side = "baseline" if (usable["baseline"] <= 0).any() else "optimised"
        return (f"a ratio needs positive values, but the {side} side measured {usable[side].min():g} for {measure}; "
                "judge it with a difference or below/above criterion instead")
    baseline = usable["baseline"].to_numpy(float) if paired else None
    return baseline, usable["optimised"].to_numpy(float)


INGESTED_NOTES = {
    ROUNDS: "from the per-round times of separate pytest-benchmark runs (unpaired, Welch's interval; rounds "
            "of one run share its machine state, so the interval can be narrower than run-to-run variation)",
    SUMMARY: "from pytest-benchmark's summary figures only (mean, standard deviation and rounds; the files hold no "
             "per-round data: run pytest with --benchmark-save-data for it)",
}


def pooled_figures(groups: list[tuple[float, float, int]]) -> list:
    """[mean, standard deviation, count] of the groups' observations taken together, from each
    group's mean, standard deviation (n - 1) and count: the figures of the concatenated data."""
    n = sum(count for _, _, count in groups)
    mean = sum(count * m for m, _, count in groups) / n
    squares = sum((count - 1) * sd ** 2 + count * (m - mean) ** 2 for m, sd, count in groups)
    return [mean, math.sqrt(squares / (n - 1)) if n > 1 else 0.0, n]


def _ingested_sample(item: SuiteCriterion, ok: pd.DataFrame):
    """A pytest-benchmark benchmark's rounds of each side (unpaired), or its summary figures."""
    sides = {side: ok[ok["side"] == side] for side in SIDES}
    if any(rows.empty for rows in sides.values()):
        return "the pytest-benchmark rows of this benchmark have not been read yet"
    if any((rows["source"] == SUMMARY).any() for rows in sides.values()):
        # A file has summary figures only: both sides are judged from figures, each side's runs
        # (summary figures, and rounds, which give their own) pooled into one mean, standard
        # deviation and count.
        figures = []
        for side in SIDES:
            rows = sides[side]
            summaries = rows[rows["source"] == SUMMARY]
            groups = [(float(r[WALL_TIME]), float(r["summary_sd"]), int(r["summary_rounds"]))
                      for r in summaries.to_dict("records")]
            values = rows.loc[rows["source"] != SUMMARY, WALL_TIME].to_numpy(float)
            if values.size:
                spread = float(values.std(ddof=1)) if values.size > 1 else 0.0
                groups.append((float(values.mean()), spread, values.size))
            figures += pooled_figures(groups)
        return Summary(*figures)
    values = [sides[side][WALL_TIME].to_numpy(float) for side in SIDES]
    if item.spec.effect == "mean":
        return None, values[1]
    return Unpaired(*values)


def judge_suite(study: AcceptanceStudy, trials: pd.DataFrame) -> pd.DataFrame:
    """One row per criterion: its effect, the interval at its corrected level (and the plain one),
    the verdict and why, and about how many repeats would settle an inconclusive one."""
    trials = current_trials(study, trials)
    items = study.criteria
    if not items:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    samples = [criterion_samples(study, item, trials) for item in items]
    criteria = [item.criterion() for item in items]
    level, correction = study.spec.confidence_level, study.spec.correction
    options = {"confidence_level": level, "interval": study.spec.interval,
               "n_resamples": study.spec.bootstrap_resamples, "rng_seed": study.spec.rng_seed}
    judged = judge(criteria, samples, correction=correction, **options)
    rows = []
    for item, sample, criterion, j in zip(items, samples, criteria, judged):
        bench_rows = trials[trials["benchmark"] == item.benchmark] if len(trials) else trials
        failed = int((bench_rows["status"] != "ok").sum()) if len(bench_rows) else 0
        means = _means(sample)
        reason = j.reason
        if not isinstance(sample, str) and failed:
            reason += f"; {_failures(bench_rows)}, those repeats are left out"
        if study.is_ingested(item.benchmark) and not isinstance(sample, str):
            source = SUMMARY if isinstance(sample, Summary) else ROUNDS
            reason += f"; judged {INGESTED_NOTES[source]}"
        spec = item.spec
        shown = [spec.shown(v) for v in (j.estimate, j.low, j.high)]
        if spec.decreasing:  # a larger ratio is a smaller speed-up or reduction: the ends swap
            shown[1], shown[2] = shown[2], shown[1]
        rows.append({
            "benchmark": item.benchmark, "criterion": item.name, "subject": item.subject, "measure": spec.measure,
            "asked": spec.asked(), "effect": spec.effect, "region_low": criterion.low, "region_high": criterion.high,
            "n_pairs": int(j.repeats), "n_failed": failed, "baseline_mean": means["baseline"],
            "optimised_mean": means["optimised"], "estimate": j.estimate, "ci_low": j.low, "ci_high": j.high,
            "confidence_level": j.confidence_level, "raw_ci_low": j.plain_low, "raw_ci_high": j.plain_high,
            "raw_confidence_level": j.plain_level,
            "p_value": j.p_value, "p_adjusted": j.adjusted_p_value, "verdict": j.verdict,
            "repeats_needed": -1 if j.repeats_needed is None else int(j.repeats_needed), "scale": spec.scale,
            "shown_estimate": shown[0], "shown_interval": f"[{shown[1]}, {shown[2]}]", "reason": reason,
        })
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def _means(sample) -> dict[str, float]:
    """Each side's mean in a sample (NaN where there is none)."""
    if isinstance(sample, str):
        return dict.fromkeys(SIDES, math.nan)
    if isinstance(sample, Summary):
        return {"baseline": sample.baseline_mean, "optimised": sample.optimised_mean}
    baseline, optimised = (sample.baseline, sample.optimised) if isinstance(sample, Unpaired) else sample
    return {"baseline": float(np.mean(baseline)) if baseline is not None else math.nan,
            "optimised": float(np.mean(optimised))}


def headline(verdicts: pd.DataFrame) -> str:
    """'2 of 5 criteria met, 1 inconclusive, 2 not met'."""
    counts = verdicts["verdict"].value_counts() if len(verdicts) else pd.Series(dtype=int)
    return (f"{int(counts.get(MET, 0))} of {len(verdicts)} criteria met, {int(counts.get(INCONCLUSIVE, 0))} "
            f"inconclusive, {int(counts.get(NOT_MET, 0))} not met")


def gate(verdicts: pd.DataFrame, fail_on: str) -> str:
    """Why a CI job gating on ``fail_on`` (not_met, or inconclusive: not met or not yet settled)
    must fail, or '' if it passes."""
    if fail_on not in FAIL_ON:
        raise ValueError(f"--fail-on {fail_on!r} unknown; choose one of {', '.join(FAIL_ON)}")
    bad = verdicts[verdicts["verdict"].isin([NOT_MET] if fail_on == NOT_MET else [NOT_MET, INCONCLUSIVE])]
    if bad.empty:
        return ""
    return f"{len(bad)} criteria {'not met' if fail_on == NOT_MET else 'not met or inconclusive'}: " + "; ".join(
        f"{s} ({v})" for s, v in zip(bad["subject"], bad["verdict"]))


def _value(value: float, measure: str) -> str:
    if not math.isfinite(value):
        return "n/a"
    unit = UNITS.get(measure)
    if unit == "s":
        return f"{value * 1e3:.4g} ms" if value < 1 else f"{value:.4g} s"
    if unit == "bytes":
        return f"{value / 2**20:.4g} MiB"
    return f"{value:.4g}"


def _side(spec) -> str:
    side = spec.model_dump()
    if "pytest_benchmark" in side:
        return f"pytest-benchmark `{side['pytest_benchmark']}`" + (f" (commit {side['commit']})" if side["commit"] else "")
    return f"`{side['call']}`" if "call" in side else f"`{' '.join(side['command'])}`"


def format_suite_report(study: AcceptanceStudy, verdicts: pd.DataFrame, trials: pd.DataFrame,
                        plots: dict[str, str] | None = None) -> str:
    """The suite for review: the headline, every criterion with its interval and verdict, each
    benchmark's sides and measurements, and what failed."""
    trials = current_trials(study, trials)
    level = study.spec.confidence_level
    correction = study.spec.correction
    if correction == "none":
        promise = (f"not corrected: each criterion alone is wrong at most {1 - level:.0%} of the time, the suite's "
                   f"{len(verdicts)} together more often")
    else:
        promise = (f"the chance that any met or not met is wrong is held at {1 - level:.0%}, "
                   f"{'Holm' if correction == 'holm' else 'Bonferroni'}-corrected across the {len(verdicts)} criteria")
    lines = [f"# Acceptance suite: {study.name}", ""]
    if study.spec.description:
        lines += [study.spec.description, ""]
    lines += [
        f"**{headline(verdicts)}** ({study.spec.repeats} paired repeats per benchmark; {promise}; each "
        "interval is at its own corrected level; "
        + ("t-intervals, a ratio on the logs of the paired ratios" if study.spec.interval == "t" else
           f"paired percentile bootstrap, {study.spec.bootstrap_resamples:,} resamples, a ratio of the means; a claim "
           "also needs the t-test on the log ratios to agree") + ").",
        "",
        "| benchmark | criterion | asked | estimate | interval | verdict | repeats to settle |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in verdicts.itertuples():
        needed = f"about {row.repeats_needed}" if row.repeats_needed > 0 else ""
        verdict = {MET: "met", NOT_MET: "**not met**", INCONCLUSIVE: "_inconclusive_"}[row.verdict]
        lines.append(f"| {row.benchmark} | {row.criterion} | {row.asked} | {row.scale} {row.shown_estimate} | "
                     f"{row.shown_interval} | {verdict} | {needed} |")
    lines += ["", "Met: the whole interval lies inside what is asked. Not met: wholly outside. Inconclusive: it "
              "straddles a boundary; the repeats shown would settle it if the spread stays as observed.", ""]
    for benchmark in study.benchmarks:
        bench = study.spec.benchmarks[benchmark]
        rows = trials[trials["benchmark"] == benchmark] if len(trials) else trials
        lines += [f"## {benchmark}", ""]
        if bench.description:
            lines += [bench.description, ""]
        lines.append(f"- baseline: {_side(bench.baseline)}; optimised: {_side(bench.optimised)}")
        if study.is_ingested(benchmark):
            results = {side: study.ingested[(benchmark, side)][1] for side in SIDES}
            lines.append("- read from pytest-benchmark: " + "; ".join(
                f"{side} {r.n_rounds} rounds of commit {r.commit[:12]}"
                + ("" if r.has_rounds else " (summary figures only: no per-round data)")
                for side, r in results.items()))
        else:
            lines.append(f"- {bench.number} call(s) per measurement after {bench.warmup} warm-up call(s); sides "
                         "alternate A B, B A, ... on the same seeds")
        lines.append("")
        mine = verdicts[verdicts["benchmark"] == benchmark]
        for row in mine.itertuples():
            lines.append(f"- **{row.criterion}** ({row.asked}): {row.verdict}; {row.scale} {row.shown_estimate}, "
                         f"interval {row.shown_interval} at {row.confidence_level:.2%} (p {row.p_value:.2g}, "
                         f"adjusted {row.p_adjusted:.2g}); {row.reason}.")
        measures = list(dict.fromkeys(c.measure for c in bench.criteria))
        if len(rows):
            lines += ["", "| measure | baseline mean | optimised mean | repeats ok (baseline / optimised) |",
                      "|---|---|---|---|"]
            for measure in measures:
                means = {side: rows.loc[(rows["side"] == side) & (rows["status"] == "ok"), measure]
                         for side in SIDES} if measure in rows else {side: pd.Series(dtype=float) for side in SIDES}
                lines.append(f"| {measure} | {_value(means['baseline'].mean(), measure)} | "
                             f"{_value(means['optimised'].mean(), measure)} | "
                             f"{means['baseline'].notna().sum()} / {means['optimised'].notna().sum()} |")
        if plots and benchmark in plots:
            lines += ["", plots[benchmark]]
        lines.append("")
    failed = trials[trials["status"] != "ok"] if len(trials) else trials
    if len(failed):
        lines += [f"## Failed measurements: {len(failed)} of {len(trials)}", "",
                  "| benchmark | side | repeat | error |", "|---|---|---|---|"]
        lines += [f"| {r.benchmark} | {r.side} | {r.repeat} | {_first_line(r.error).replace('|', '/')} |"
                  for r in failed.head(20).itertuples()]
        lines.append("")
    return "\n".join(lines)
