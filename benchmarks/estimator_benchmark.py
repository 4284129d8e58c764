"""Figures for the estimator benchmark: how fast the template catalog generates data, how often the
pairwise verdicts are wrong, and how far the leaderboard's interval can be trusted.

    .venv/bin/python benchmarks/estimator_benchmark.py [--simulations 1000] [--seed 0]

1. Data generation: the median time of ``generate`` for 100,000 rows, per template and metric.
2. Pairwise verdicts (an exact sign test over data sets, Holm across the pairs): simulated
   benchmarks of four estimators on 12 entries x 2 seeds whose errors are exchangeable (no real
   difference), heavy-tailed and of very different size per entry: how often any pair is called
   better or worse (the study promises at most 5 %); then one estimator made better on every data
   set by a shift of d standard deviations of the per-data-set difference: how often that pair is
   called better.
3. The leaderboard's IQM interval (rliable's stratified bootstrap, seeds resampled within each
   entry): how often the 95 % interval holds the IQM of the entries' seed distributions, at 2, 3,
   5 and 10 seeds per entry. The bootstrap of n seeds sees (n - 1) / n of their variance, so at
   two or three seeds the interval is too narrow: the verdicts do not rest on it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest, trim_mean

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_assets.kinds.estimator_benchmark.analysis import judge_pairs
from benchmark_assets.kinds.estimator_benchmark.spec import DecisionSpec
from benchmark_assets.scenarios.templates import METRICS, TEMPLATES, generate
from benchmark_assets.stats.across_tasks import stratified_bootstrap_ci


def rate(hits: int, n: int) -> str:
    ci = binomtest(hits, n).proportion_ci(0.95, method="exact")
    return f"{hits / n:6.1%} [{ci.low:.1%}, {ci.high:.1%}]"


def generation_times() -> None:
    print("1. generate(): median of 5 calls, 100,000 rows (ms)")
    print(f"{'template':<18}" + "".join(f"{m:>22}" for m in METRICS))
    for template in TEMPLATES:
        cells = []
        for metric in METRICS:
            config, _ = TEMPLATES[template](metric, 1.0, seed=1, n_visitors=100_000)
            generate(config)  # warm
            times = []
            for _ in range(5):
                started = time.perf_counter()
                generate(config)
                times.append(time.perf_counter() - started)
            cells.append(f"{1000 * float(np.median(times)):22.1f}")
        print(f"{template:<18}" + "".join(cells))
    print()


def trials(errors: dict[str, np.ndarray]) -> pd.DataFrame:
    frames = []
    for name, values in errors.items():
        seed, entry = np.indices(values.shape)
        frames.append(pd.DataFrame({"estimator": name, "seed": seed.ravel(), "entry_id": entry.ravel().astype(str),
                                    "status": "ok", "pehe_normalised": values.ravel()}))
    return pd.concat(frames, ignore_index=True)


def simulated_errors(rng: np.random.Generator, names: str, entries: int, seeds: int, shift: float = 0.0) -> dict:
    """Errors per estimator (seeds, entries): an entry-specific scale times a heavy-tailed draw. The
    first estimator's errors are lowered by ``shift`` standard deviations of the per-data-set
    difference between two estimators (so shift 0 is the null)."""
    scale = rng.lognormal(0, 1, entries)
    errors = {n: scale * (1 + 0.5 * rng.standard_t(4, (seeds, entries))) for n in names}
    # Two estimators' errors on a data set differ by scale * 0.5 * (t - t'), whose sd is scale (a t4
    # draw has variance 2): the first estimator is lowered by ``shift`` of that, entry by entry.
    errors[names[0]] = errors[names[0]] - shift * scale
    return errors


def verdict_rates(simulations: int, rng: np.random.Generator) -> None:
    entries, seeds = 12, 2
    ids = [str(i) for i in range(entries)]
    print(f"2. pairwise verdicts: 4 estimators, {entries} entries x {seeds} seeds, {simulations} benchmarks per row")
    for correction in ("holm", "none"):
        any_claim = 0
        for _ in range(simulations):
            pairs = judge_pairs(trials(simulated_errors(rng, "abcd", entries, seeds)), list("abcd"),
                                DecisionSpec(correction=correction), list(range(seeds)), ids)
            any_claim += bool(pairs["verdict"].isin(["better", "worse"]).any())
        print(f"   no real difference, correction {correction:<5}: any verdict  {rate(any_claim, simulations)}")
    for shift in (0.25, 0.5, 1.0):
        found = 0
        for _ in range(simulations):
            pairs = judge_pairs(trials(simulated_errors(rng, "abcd", entries, seeds, shift)), list("abcd"),
                                DecisionSpec(), list(range(seeds)), ids).set_index("subject")
            found += pairs.loc[["a vs b", "a vs c", "a vs d"], "verdict"].eq("better").sum()
        print(f"   'a' better by {shift:4.2f} SD of a data set's difference: 'a better' found "
              f"{rate(int(found), 3 * simulations)} of its pairs")
    print()


def iqm_coverage(simulations: int, rng: np.random.Generator) -> None:
    entries = 12
    print(f"3. leaderboard IQM interval (95 %, stratified bootstrap, 1,000 resamples), {entries} entries, "
          f"{simulations} benchmarks per row: how often it holds the entries' IQM")
    means = rng.lognormal(0, 0.5, entries)
    population = means * (1 + 0.3 * rng.standard_normal((200_000, entries)))
    truth = float(trim_mean(population.ravel(), 0.25))
    for seeds in (2, 3, 5, 10):
        held = 0
        for _ in range(simulations):
            scores = means * (1 + 0.3 * rng.standard_normal((seeds, entries)))
            result = stratified_bootstrap_ci(scores, "iqm", n_resamples=1000, rng=rng)
            held += bool(result.low <= truth <= result.high)
        print(f"   {seeds:2d} seeds per entry: {rate(held, simulations)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    generation_times()
    verdict_rates(args.simulations, rng)
    iqm_coverage(args.simulations, rng)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
