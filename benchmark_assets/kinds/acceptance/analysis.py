"""Judges an acceptance suite: every criterion on the interval of its effect, corrected across the
suite; the report a reviewer pastes into a pull request; the CI gate. No Dagster."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark_assets.kinds.acceptance.spec import (
    SIDES,
    SUMMARY,
    UNITS,
    WALL_TIME,
    AcceptanceStudy,
    SuiteCriterion,
)
from benchmark_assets.kinds.base import INBOX_BASE, SOURCE, is_current, is_ingested, known_source
from benchmark_assets.stats.acceptance import VERDICTS, Unpaired, fewest_runs, judge

MET, NOT_MET, INCONCLUSIVE = VERDICTS
FAIL_ON = (NOT_MET, INCONCLUSIVE)

VERDICT_COLUMNS = [
    "benchmark", "criterion", "subject", "measure", "asked", "effect", "region_low", "region_high", "n_pairs",
    "n_failed", "baseline_mean", "optimised_mean", "estimate", "ci_low", "ci_high", "confidence_level",
    "raw_ci_low", "raw_ci_high", "raw_confidence_level", "p_value", "p_adjusted", "verdict", "repeats_needed", "scale", "shown_estimate",
    "shown_interval", "reason", "sides_ran",
]


def upgraded_rows(trials: pd.DataFrame) -> pd.DataFrame:
    """Rows an older version stored, with the form of each measurement under ``source``: their
    form moves to ``form`` and their source is left unknown (``is_ingested`` then goes by the
    inbox's key range, as that version did)."""
    if SOURCE not in trials or ("form" in trials and trials["form"].notna().all()):
        return trials
    form = trials["form"] if "form" in trials else pd.Series(None, index=trials.index, dtype=object)
    old = form.isna()
    return trials.assign(form=form.where(~old, trials[SOURCE]),
                         **{SOURCE: trials[SOURCE].where(~old | known_source(trials), None)})


def current_trials(study: AcceptanceStudy, trials: pd.DataFrame) -> pd.DataFrame:
    """Rows of the suite as it stands: its benchmarks and repeats (and the runs its inbox brought),
    measured with each side's current setting. Rows of a removed benchmark or an older side are
    never judged."""
    if trials.empty:
        return trials
    trials = upgraded_rows(trials)
    wanted = {(b, s): study.side_fingerprint(b, s) for b in study.benchmarks for s in SIDES}
    inbox = {(b, s): study.inbox_fingerprint(b, s) for b in study.benchmarks for s in SIDES if study.is_ingested(b)}
    ingested = is_ingested(trials, pd.to_numeric(trials["repeat"], errors="coerce") >= INBOX_BASE)
    expected = pd.Series([(inbox if from_file else wanted).get((b, s)) for b, s, from_file
                          in zip(trials["benchmark"], trials["side"], ingested)], index=trials.index, dtype=object)
    repeats = {b: study.repeats_of(b) for b in study.benchmarks}
    own = pd.Series([int(r) < repeats.get(b, 0) for b, r in zip(trials["benchmark"], trials["repeat"])],
                    index=trials.index, dtype=bool) & ~ingested
    return trials[is_current(trials, expected, own, ingested)].reset_index(drop=True)


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
        return _ingested_sample(study, item, ok)
    table = ok.pivot_table(index="repeat", columns="side", values=measure, aggfunc="first").reindex(columns=list(SIDES))
    paired = item.spec.sides == SIDES
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


RUNS = "runs per side"


@dataclass(frozen=True)
class TooFewRuns:
    """A criterion on pytest-benchmark runs with fewer than 2 runs on a side it needs: what is
    known (the point estimate, each side's runs), and from which figures the fewest runs that
    could settle it are worked out once its corrected level is known."""

    counts: dict  # runs of each side
    wanted: tuple  # the sides the criterion needs (a bound on the mean: the optimised side only)
    figures: dict  # side -> (mean of its run means, standard error of that within its runs)
    estimate: float  # on the effect's own scale (a ratio of geometric means, like a judged one)
    means: dict  # each side's mean of its runs' means

    @property
    def runs(self) -> int:
        return min(self.counts[side] for side in self.wanted)

    def needed(self, criterion, alpha: float) -> int:
        return fewest_runs(criterion, self.figures["baseline"] if "baseline" in self.wanted else None,
                           self.figures["optimised"], alpha)

    def reason(self, needed: int) -> str:
        few = " and ".join(f"{self.counts[side]} run{'s' * (self.counts[side] != 1)} of the {side} side"
                           for side in self.wanted)
        each = "of each side" if len(self.wanted) > 1 else "of the optimised side"
        return (f"{few}: the rounds of one run share its machine's state, so they do not show how much the next run "
                f"would differ, and an interval needs at least 2 runs {each}; at least {needed} runs {each} would be "
                "needed if runs varied no more than rounds do (more if they vary more): autosave every run (pytest "
                "--benchmark-autosave) and name the folder with commit:, give a pattern of files (runs/base_*.json), "
                "or put more runs in the study's inbox")


def run_figures(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (side, run) of a benchmark read from pytest-benchmark: the run's mean time
    (its rounds' mean, or the file's summary mean), the standard error of that mean within the run
    and its rounds. A run (one file) is the unit of replication: its rounds share its machine's
    state, so they are not independent samples of what the next run would show."""
    out = []
    for (side, repeat), run in rows.groupby(["side", "repeat"], sort=True):
        if (run["form"] == SUMMARY).any():
            first = run.iloc[0]
            mean, sd, n = float(first[WALL_TIME]), float(first["summary_sd"]), int(first["summary_rounds"])
        else:
            values = run[WALL_TIME].to_numpy(float)
            mean, n = float(values.mean()), values.size
            sd = float(values.std(ddof=1)) if n > 1 else 0.0
        out.append({"side": side, "run": int(repeat), "mean": mean, "se": sd / math.sqrt(max(n, 1)), "rounds": n,
                    "form": str(run["form"].iloc[0])})
    return pd.DataFrame(out, columns=["side", "run", "mean", "se", "rounds", "form"])


def _ingested_sample(study: AcceptanceStudy, item: SuiteCriterion, ok: pd.DataFrame):
    """The runs of a pytest-benchmark benchmark, each side's run means as independent replicates
    (Welch's interval across runs); with fewer than 2 runs on a side, TooFewRuns."""
    runs = run_figures(ok)
    sides = {side: runs[runs["side"] == side] for side in SIDES}
    if any(own.empty for own in sides.values()):
        return "the pytest-benchmark rows of this benchmark have not been read yet"
    wanted = item.spec.sides
    counts = {side: len(sides[side]) for side in SIDES}
    if min(counts[side] for side in wanted) < 2:
        figures = {side: (float(own["mean"].mean()), float(np.sqrt((own["se"] ** 2).sum()) / len(own)))
                   for side, own in sides.items()}
        means = {side: figures[side][0] for side in SIDES}
        geometric = {side: float(np.exp(np.log(own["mean"]).mean())) if (own["mean"] > 0).all() else math.nan
                     for side, own in sides.items()}
        estimate = {"ratio": geometric["optimised"] / geometric["baseline"], "mean": means["optimised"],
                    "difference": means["optimised"] - means["baseline"]}[item.spec.effect]
        return TooFewRuns(counts, wanted, figures, estimate, means)
    values = [sides[side]["mean"].to_numpy(float) for side in SIDES]
    if item.spec.effect == "mean":
        return None, values[1]
    return Unpaired(*values, unit=RUNS)


def _run_note(study: AcceptanceStudy, benchmark: str, trials: pd.DataFrame) -> str:
    """How a pytest-benchmark benchmark was judged, for its verdicts' reason."""
    runs = run_figures(trials[(trials["benchmark"] == benchmark) & (trials["status"] == "ok")])
    counts = runs.groupby("side").size().reindex(list(SIDES), fill_value=0)
    note = (f"judged run against run: each pytest-benchmark run's mean time is one replicate ({counts['baseline']} "
            f"baseline, {counts['optimised']} optimised runs; unpaired, Welch's interval, a ratio of geometric means)")
    if (runs["form"] == SUMMARY).any():
        note += ("; some files hold summary figures only (their mean stands for the run; run pytest with "
                 "--benchmark-save-data for the rounds)")
    return note


def judge_suite(study: AcceptanceStudy, trials: pd.DataFrame) -> pd.DataFrame:
    """One row per criterion: its effect, the interval at its corrected level (and the plain one),
    the verdict and why, and about how many repeats would settle an inconclusive one."""
    trials = current_trials(study, trials)
    items = study.criteria
    if not items:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    samples = [criterion_samples(study, item, trials) for item in items]
    few = [s if isinstance(s, TooFewRuns) else None for s in samples]
    samples = [s.reason(2) if isinstance(s, TooFewRuns) else s for s in samples]  # inconclusive, p = 1
    criteria = [item.criterion() for item in items]
    level, correction = study.spec.confidence_level, study.spec.correction
    options = {"confidence_level": level, "interval": study.spec.interval,
               "n_resamples": study.spec.bootstrap_resamples, "rng_seed": study.spec.rng_seed}
    judged = judge(criteria, samples, correction=correction, **options)
    rows = []
    for item, sample, criterion, j, too_few in zip(items, samples, criteria, judged, few):
        bench_rows = trials[trials["benchmark"] == item.benchmark] if len(trials) else trials
        failed = int((bench_rows["status"] != "ok").sum()) if len(bench_rows) else 0
        ran = set(bench_rows.loc[bench_rows["status"] == "ok", "side"]) if len(bench_rows) else set()
        means = too_few.means if too_few else _means(sample)
        reason = j.reason
        needed = j.repeats_needed
        if too_few:  # the fewest runs at the criterion's corrected level, known now
            needed = too_few.needed(criterion, (1.0 - j.confidence_level) / 2.0)
            reason = too_few.reason(needed)
        if not isinstance(sample, str) and failed:
            reason += f"; {_failures(bench_rows)}, those repeats are left out"
        if study.is_ingested(item.benchmark) and not isinstance(sample, str):
            reason += f"; {_run_note(study, item.benchmark, trials)}"
        spec = item.spec
        estimate = too_few.estimate if too_few else j.estimate
        shown = [spec.shown(v) for v in (estimate, j.low, j.high)]
        if spec.decreasing:  # a larger ratio is a smaller speed-up or reduction: the ends swap
            shown[1], shown[2] = shown[2], shown[1]
        rows.append({
            "benchmark": item.benchmark, "criterion": item.name, "subject": item.subject, "measure": spec.measure,
            "asked": spec.asked(), "effect": spec.effect, "region_low": criterion.low, "region_high": criterion.high,
            "n_pairs": int(too_few.runs if too_few else j.repeats), "n_failed": failed, "baseline_mean": means["baseline"],
            "optimised_mean": means["optimised"], "estimate": estimate, "ci_low": j.low, "ci_high": j.high,
            "confidence_level": j.confidence_level, "raw_ci_low": j.plain_low, "raw_ci_high": j.plain_high,
            "raw_confidence_level": j.plain_level,
            "p_value": j.p_value, "p_adjusted": j.adjusted_p_value, "verdict": j.verdict,
            "repeats_needed": -1 if needed is None else int(needed), "scale": spec.scale,
            "shown_estimate": shown[0], "shown_interval": f"[{shown[1]}, {shown[2]}]", "reason": reason,
            "sides_ran": all(side in ran for side in spec.sides),
        })
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def _means(sample) -> dict[str, float]:
    """Each side's mean in a sample (NaN where there is none)."""
    if isinstance(sample, str):
        return dict.fromkeys(SIDES, math.nan)
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
    # A criterion with nothing measured (a side that never ran: it cannot be imported, it crashes
    # every time) fails any gate: a suite whose baseline is broken must not pass as "nothing not met".
    ran = verdicts["sides_ran"].astype(bool)
    never = verdicts[~ran]
    bad = verdicts[verdicts["verdict"].isin([NOT_MET] if fail_on == NOT_MET else [NOT_MET, INCONCLUSIVE]) & ran]
    parts = []
    if len(never):
        parts.append(f"{len(never)} criteria have a side that never ran: " + "; ".join(
            f"{s} ({_first_line(r)})" for s, r in zip(never["subject"], never["reason"])))
    if len(bad):
        parts.append(f"{len(bad)} criteria {'not met' if fail_on == NOT_MET else 'not met or inconclusive'}: "
                     + "; ".join(f"{s} ({v})" for s, v in zip(bad["subject"], bad["verdict"])))
    return "; ".join(parts)


def _value(value: float, measure: str) -> str:
    if not math.isfinite(value):
        return "n/a"
    unit = UNITS.get(measure)
    if unit == "s":
        return f"{value * 1e3:.4g} ms" if value < 1 else f"{value:.4g} s"
    if unit == "bytes":
        return f"{value / 2**20:.4g} MiB"
    return f"{value:.4g}"


def _runs_line(rows: pd.DataFrame) -> str:
    """A side's runs as read (named in the study or brought by the inbox): '2 runs (20 and 21
    rounds) of commit abc123'."""
    runs = run_figures(rows)
    if runs.empty:
        return "no run read yet"
    commits = sorted({str(c)[:12] for c in rows["git_commit"]})
    rounds = " and ".join(str(n) for n in runs["rounds"][:5]) + (", ..." if len(runs) > 5 else "")
    summary = int((runs["form"] == SUMMARY).sum())
    return (f"{len(runs)} run{'s' * (len(runs) != 1)} ({rounds} rounds) of commit {', '.join(commits)}"
            + (f" ({summary} with summary figures only: no per-round data)" if summary else ""))


def _side(spec) -> str:
    side = spec.model_dump()
    if "pytest_benchmark" in side:
        return f"pytest-benchmark `{side['pytest_benchmark']}`" + (f" (commit {side['commit']})" if side["commit"] else "")
    return f"`{side['call']}`" if "call" in side else f"`{' '.join(side['command'])}`"


