"""From trials to evidence: aggregates per estimator and star point, the leaderboard across the
catalog (rliable style) and the pairwise verdicts. No Dagster.

Scores are shaped (runs, tasks) as rliable has them: a task is a catalog entry, a run one seed
of it. The leaderboard's intervals resample seeds within each entry (rliable's stratified
bootstrap): they say how much the IQM moves with the seeds on this catalog, and at two or three
seeds they are too narrow (they see (n - 1)/n of the seed variance): descriptive. The pairwise
verdicts count data sets (an exact sign test): "X beats Y over this catalog" means X does better
on more of its data sets than chance would give; every data set is an independent sample (each
scenario draws from its own stream), so the test holds its level.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark_assets.kinds.base import is_current
from benchmark_assets.kinds.estimator_benchmark.spec import (
    AGGREGATED,
    BETTER,
    HIGHER_IS_BETTER,
    NO_DIFFERENCE,
    NOT_JUDGED,
    WORSE,
    DecisionSpec,
    EstimatorBenchmarkStudy,
)
from benchmark_assets.stats.across_tasks import stratified_bootstrap_ci
from benchmark_assets.stats.aggregate import aggregate_metrics, stable_seed
from benchmark_assets.stats.lazy import scipy_stats
from benchmark_assets.stats.multiple import step_down_tails
from benchmark_assets.sweep import format_value

SHOWN = {"pehe_normalised": "PEHE / RMS true effect", "ate_error_normalised": "|ATE error| / RMS true effect",
         "qini": "Qini coefficient (1 = oracle ranking)"}


def current_trials(study: EstimatorBenchmarkStudy, trials: pd.DataFrame) -> pd.DataFrame:
    """Rows of the study's current estimators and data sets, run with their current settings."""
    if trials.empty:
        return trials
    expected = trials["estimator"].map(study.estimator_fingerprints)
    # A data set's own setting is a second fingerprint: the catalog entry it was drawn from.
    keep = (is_current(trials, expected, trials["dataset"].isin(study.dataset_keys))
            & (trials["entry_id"].map(study.entry_fingerprints) == trials["entry_fingerprint"]))
    return trials[keep].reset_index(drop=True)


def star_points(trials: pd.DataFrame, points: dict[str, list]) -> pd.DataFrame:
    """One row per (trial, star point its entry stands for, ``EstimatorBenchmarkStudy.star_points``):
    the trial's columns with ``knob`` and ``knob_value`` (as the catalog has it)."""
    if trials.empty:
        return trials.assign(knob=[], knob_value=[])
    exploded = trials.assign(point=trials["entry_id"].map(points)).dropna(subset=["point"]).explode("point")
    return exploded.assign(knob=exploded["point"].map(lambda p: str(p[0])),
                           knob_value=exploded["point"].map(lambda p: p[1])).drop(columns="point")


def benchmark_aggregates(trials: pd.DataFrame, estimators: list[str], points: dict[str, list], *,
                         confidence_level: float, n_resamples: int, rng_seed: int) -> pd.DataFrame:
    """Per estimator x template x metric id x star point (knob, value) and metric: n, mean, std,
    t and bootstrap intervals over the point's trials (its seeds, and for the centre of the star
    the same trials on every knob's curve); n_failed counts the point's failed trials."""
    frames = []
    for estimator in estimators:
        rows = trials[trials["estimator"] == estimator]
        if rows.empty:
            continue
        exploded = star_points(rows, points)
        exploded["knob_value"] = exploded["knob_value"].map(
            lambda v: format_value(v) if isinstance(v, (int, float)) else str(v))
        for (template, metric_id, knob, value), group in exploded.groupby(
                ["template", "metric_id", "knob", "knob_value"], sort=True):
            ok = group[group["status"] == "ok"]
            frame = aggregate_metrics(ok, list(AGGREGATED), confidence_level=confidence_level,
                                      n_resamples=n_resamples, rng_seed=rng_seed,
                                      label=f"{estimator}|{template}|{metric_id}|{knob}|{value}")
            frame.insert(0, "n_failed", int((group["status"] != "ok").sum()))
            for name, column in (("knob_value", value), ("knob", knob), ("metric_id", metric_id),
                                 ("template", template), ("estimator", estimator)):
                frame.insert(0, name, column)
            frames.append(frame)
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    order = ["estimator", "template", "metric_id", "knob", "knob_value", "metric", "n", "n_failed"]
    return frame[order + [c for c in frame.columns if c not in order]]


def scores(trials: pd.DataFrame, estimator: str, metric: str, seeds: list[int], entries: list[str]) -> np.ndarray:
    """(runs, tasks) = (seeds, entries) of one metric for one estimator; NaN where no ok trial."""
    rows = trials[(trials["estimator"] == estimator) & (trials["status"] == "ok")]
    out = np.full((len(seeds), len(entries)), np.nan)
    seed_at = pd.Index(seeds).get_indexer(rows["seed"].astype(int))
    entry_at = pd.Index(entries).get_indexer(rows["entry_id"])
    known = (seed_at >= 0) & (entry_at >= 0)
    out[seed_at[known], entry_at[known]] = rows[metric].to_numpy(dtype=float)[known]
    return out


def exact_interval(wins: int, n: int, confidence_level: float) -> tuple[float, float]:
    """Clopper-Pearson interval of a binomial share (scipy's ``binomtest(...).proportion_ci(method
    ='exact')`` in closed form, from beta quantiles)."""
    tail = (1.0 - confidence_level) / 2
    low = scipy_stats().beta.ppf(tail, wins, n - wins + 1) if wins > 0 else 0.0
    high = scipy_stats().beta.ppf(1 - tail, wins + 1, n - wins) if wins < n else 1.0
    return float(low), float(high)


def complete_tasks(*score_sets: np.ndarray) -> np.ndarray:
    """Tasks (columns) with a finite score for every seed in every score set."""
    return np.all([np.isfinite(s).all(axis=0) for s in score_sets], axis=0)


def ranked(table: pd.DataFrame) -> list[str]:
    """The estimators a leaderboard ranked, best first (those without the decision metric are not)."""
    return [name for name, rank in zip(table["estimator"], table["rank"]) if not pd.isna(rank)]


@dataclass(frozen=True)
class Leaderboard:
    table: pd.DataFrame  # one row per estimator, best first
    pairs: pd.DataFrame  # one row per pair of estimators judged on the decision metric


def leaderboard(trials: pd.DataFrame, estimators: list[str], decision: DecisionSpec, seeds: list[int],
                entries: list[str]) -> pd.DataFrame:
    """Per estimator: the IQM of each normalised error with a stratified bootstrap interval, mean
    Qini, sign accuracy, ATE interval coverage and fit time; ranked on the decision metric (best
    first). Every estimator is scored on the same entries: those each estimator with the metric
    completed on every seed (one that failed on some entries leaves them out for all)."""
    rows = []
    metrics = ("pehe_normalised", "ate_error_normalised", "qini")
    score_sets = {(name, metric): scores(trials, name, metric, seeds, entries)
                  for name in estimators for metric in metrics}
    common = {}
    for metric in metrics:
        scored = [score_sets[(name, metric)] for name in estimators if complete_tasks(score_sets[(name, metric)]).any()]
        common[metric] = complete_tasks(*scored) if scored else np.zeros(len(entries), dtype=bool)
    for name in estimators:
        mine = trials[trials["estimator"] == name]
        ok = mine[mine["status"] == "ok"]
        row = {"estimator": name, "trials": len(mine), "failed": int((mine["status"] != "ok").sum())}
        for metric in metrics:
            s = score_sets[(name, metric)]
            complete = common[metric] & complete_tasks(s) if common[metric].any() else complete_tasks(s)
            row[f"{metric}_entries"] = int(complete.sum())
            if complete.sum() == 0:
                row.update({f"{metric}_iqm": np.nan, f"{metric}_low": np.nan, f"{metric}_high": np.nan})
                continue
            result = stratified_bootstrap_ci(s[:, complete], "iqm", confidence_level=decision.confidence_level,
                                             n_resamples=decision.bootstrap_resamples,
                                             rng=stable_seed(decision.rng_seed, name, metric))
            row.update({f"{metric}_iqm": float(result.estimate), f"{metric}_low": float(result.low),
                        f"{metric}_high": float(result.high)})
        row["sign_accuracy"] = float(ok["sign_accuracy"].mean()) if len(ok) else np.nan
        covered = ok["ate_covered"].dropna()
        row["ate_coverage"] = float(covered.mean()) if len(covered) else np.nan
        row["fit_seconds"] = float(ok["fit_seconds"].mean()) if len(ok) else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    key = f"{decision.metric}_iqm"
    ascending = decision.metric not in HIGHER_IS_BETTER
    table = table.sort_values(key, ascending=ascending, na_position="last", kind="stable").reset_index(drop=True)
    table.insert(0, "rank", pd.array([i + 1 if v == v else pd.NA for i, v in enumerate(table[key])], dtype="Int64"))
    return table


def judge_pairs(trials: pd.DataFrame, ranked: list[str], decision: DecisionSpec, seeds: list[int],
                entries: list[str]) -> pd.DataFrame:
    """Every pair (a ranked above b) on the decision metric, over the data sets (entry x seed) both
    scored: the same data for both estimators, so each data set is a paired comparison.

    ``probability_better``: the share of those data sets on which a scores better than b, with an
    exact (Clopper-Pearson) interval; the verdict is the exact sign test against one half, at the
    level the correction gives the pair, so 'better' / 'worse' agree with the interval shown (it
    lies wholly above / below 0.5). Data sets are independent draws (entries differ, and so do
    seeds), and where the entries differ in how often a wins the count is less spread than a
    binomial's, so the test holds its level at any catalog size and any shape of the errors; a
    bootstrap over two or three seeds per entry would not (at two it sees half the variance). Data
    sets where both score exactly alike are left out, as the sign test does. ``mean_difference``
    (a minus b) has a plain t-interval across the data sets.
    """
    metric = decision.metric
    sign = 1.0 if metric in HIGHER_IS_BETTER else -1.0  # scores where higher is better
    alpha = 1.0 - decision.confidence_level
    pairs, counts = [], []
    table = {name: scores(trials, name, metric, seeds, entries) for name in ranked}
    for i, a in enumerate(ranked):
        for b in ranked[i + 1:]:
            sa, sb = table[a], table[b]
            both = np.isfinite(sa) & np.isfinite(sb)
            difference = sa[both] - sb[both]  # per data set, a minus b
            wins, losses = int(np.sum(sign * difference > 0)), int(np.sum(sign * difference < 0))
            pair = {"subject": f"{a} vs {b}", "estimator": a, "other": b, "metric": metric,
                    "data_sets": int(both.sum()), "entries": int(both.any(axis=0).sum()), "wins": wins,
                    "losses": losses, "ties": int(both.sum()) - wins - losses, "mean_a": np.nan, "mean_b": np.nan,
                    "mean_difference": np.nan, "difference_low": np.nan, "difference_high": np.nan}
            if both.any():
                pair.update(mean_a=float(sa[both].mean()), mean_b=float(sb[both].mean()),
                            mean_difference=float(difference.mean()))
            if difference.size >= 2 and np.ptp(difference) > 0:
                low, high = scipy_stats().ttest_1samp(difference, 0.0).confidence_interval(decision.confidence_level)
                pair.update(difference_low=float(low), difference_high=float(high))
            pairs.append(pair)
            counts.append((wins, wins + losses))
    p_values = np.array([scipy_stats().binomtest(k, n).pvalue if n else np.nan for k, n in counts])
    judged = ~np.isnan(p_values)
    tails = np.full(len(pairs), np.nan)
    tails[judged] = step_down_tails(p_values[judged], decision.correction, alpha)
    for pair, (wins, n), p, tail in zip(pairs, counts, p_values, tails):
        if not n:
            why = (f"no data set has {metric} from both estimators" if not pair["data_sets"] else
                   f"both score exactly alike on all {pair['data_sets']} data sets")
            pair.update({"verdict": NOT_JUDGED, "probability_better": np.nan, "low": np.nan, "high": np.nan,
                         "interval_level": np.nan, "p_value": np.nan, "reason": why})
            continue
        low, high = exact_interval(wins, n, 1.0 - tail)
        verdict = (BETTER if p <= tail and low > 0.5 else WORSE if p <= tail and high < 0.5 else NO_DIFFERENCE)
        pair.update({"verdict": verdict, "probability_better": wins / n, "low": float(low), "high": float(high),
                     "interval_level": float(1.0 - tail), "p_value": float(p)})
        pair["reason"] = pair_reason(pair, verdict, decision.correction)
    return pd.DataFrame(pairs, columns=list(PAIR_COLUMNS)).astype(PAIR_COLUMNS)


# The pairs table's columns and their types: typed even with no pair (fewer than two ranked
# estimators), so an empty table is still a valid one.
PAIR_COLUMNS = {
    "subject": "str", "estimator": "str", "other": "str", "metric": "str", "verdict": "str",
    "probability_better": "float64", "low": "float64", "high": "float64", "interval_level": "float64",
    "p_value": "float64", "wins": "int64", "losses": "int64", "ties": "int64", "mean_difference": "float64",
    "difference_low": "float64", "difference_high": "float64", "mean_a": "float64", "mean_b": "float64",
    "data_sets": "int64", "entries": "int64", "reason": "str",
}


def pair_reason(pair: dict, verdict: str, correction: str) -> str:
    a, b, metric = pair["estimator"], pair["other"], pair["metric"]
    n = pair["wins"] + pair["losses"]
    shown = (f"{a} better on {pair['wins']} of {n} data sets ({pair['entries']} entries), P "
             f"{pair['probability_better']:.3f} [{pair['low']:.3f}, {pair['high']:.3f}] ({pair['interval_level']:.1%} "
             f"exact interval{'' if correction == 'none' else ', ' + correction})")
    if verdict == BETTER:
        return f"{a} beats {b} on {metric} over this catalog: {shown}"
    if verdict == WORSE:
        return f"{b} beats {a} on {metric} over this catalog: {shown}"
    return f"neither {a} nor {b} is shown better on {metric}: {shown} includes 0.5"


def headline(study: EstimatorBenchmarkStudy, table: pd.DataFrame, pairs: pd.DataFrame | None = None) -> str:
    metric = study.spec.decision.metric
    table = table.dropna(subset=[f"{metric}_iqm"])
    if table.empty:
        return f"no estimator has a {metric} score yet"
    top = table.iloc[0]
    text = (f"{top['estimator']} leads on {metric} (IQM {top[f'{metric}_iqm']:.3g} [{top[f'{metric}_low']:.3g}, "
            f"{top[f'{metric}_high']:.3g}])")
    if pairs is None:
        return text
    if len(table) < 2:
        return f"{text}; it is the only estimator ranked on {metric}, so there is no pair to judge"
    beaten = pairs[(pairs["estimator"] == top["estimator"]) & (pairs["verdict"] == BETTER)]
    return f"{text}; it beats {len(beaten)} of the {len(table) - 1} others with evidence"


def _number(value, digits: int = 3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}g}"


