"""How often the ratchet's decisions are wrong, over many simulated studies with a known truth.

    .venv/bin/python benchmarks/ratchet_error_rates.py [--studies 400] [--seed 0] [--workers 2]

Simulated studies (benchmark_assets/kinds/ratchet/simulate.py): 20 constants, four candidates and
today's value each, 35 train and 15 validation scenarios, paired noise. Rows:

1. No real effect anywhere: the share of studies that accept any change (the family-wise false
   accept rate), with the improvement and sensitivity thresholds at 0 (the test alone decides) and
   at the defaults. Goal: at most 5 %.
2. One real improvement of d standard deviations of a validation delta (on train and validation),
   the other 19 constants null: how often it is accepted (power), at thresholds 0 and at the
   defaults. Goals at the defaults: 35 % / 90 % / 99 % at 0.5 / 1 / 1.5 SD; at thresholds 0, 85 %
   at 1 SD.
3. A planted cliff: an improvement of 2 SD at 0.4 and, next to it at 0.5, a fall far below
   today's score: how often the ratchet warns of the cliff. Goal: 95 % or more.
4. An improvement at the edge of the range: the best value (2 SD) is the smallest candidate and
   the next one is today's value: how often it is wrongly rejected as a cliff (the old rule did,
   about a quarter of the time).
5. Sequential validation: up to two further rounds of 15 validation scenarios for the verdicts
   that stay inconclusive, the error budget spent over the three looks (O'Brien-Fleming-type
   spending by default, as a study's; ``--spending pocock`` for Pocock-type):
   the family-wise false accept rate with no real effect, and power per effect size, with the
   average number of validation scenarios the improved constant's verdict used. Compare with rows
   1 and 2 (one look at 15 scenarios). ``--only sequential`` runs just this row, ``--only single``
   rows 1-4.

Each rate is printed with its 95 % Clopper-Pearson interval.
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_assets.kinds.ratchet.rules import DecisionRules
from benchmark_assets.kinds.ratchet.simulate import simulate_study

TEST_ONLY = DecisionRules(improvement_threshold=0.0, sensitivity_threshold=0.0)


def rate(hits: int, n: int) -> str:
    ci = binomtest(hits, n).proportion_ci(0.95, method="exact")
    return f"{hits / n:6.1%} [{ci.low:.1%}, {ci.high:.1%}] ({hits} of {n})"


def one(job: tuple) -> tuple:
    """(any accept, c00 accepted, c00 warned of a cliff, c00 rejected as a cliff, c00's validation
    scenarios) of one study."""
    seed, gains, currents, rules, rounds, spending = job
    verdicts = simulate_study(np.random.default_rng(seed), gains, currents=currents, rules=rules,
                              rounds=rounds, spending=spending).set_index("constant")
    first = verdicts.loc["c00"]
    return (bool((verdicts["decision"] == "accept").any()), first["decision"] == "accept",
            first["cliff_warning"] != "", first["reason"].startswith("cliff:"), int(first["n_validation"]))


def run(pool, studies: int, seed: int, gains=None, currents=None, rules=None, rounds: int = 0,
        spending: str = "obrien_fleming") -> np.ndarray:
    jobs = [(seed * 1_000_003 + i, gains, currents, rules, rounds, spending) for i in range(studies)]
    return np.array(list(pool.map(one, jobs, chunksize=8)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=["single", "cliffs", "sequential"],
                        help="run only rows 1-4 (single), rows 3-4 (cliffs) or row 5 (sequential)")
    parser.add_argument("--spending", choices=["obrien_fleming", "pocock"], default="obrien_fleming",
                        help="row 5's alpha spending over the looks (the study default: obrien_fleming)")
    args = parser.parse_args()
    n, started = args.studies, time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        if args.only in (None, "single"):
            single_look(pool, n, args.seed)
        if args.only == "cliffs":
            cliff_rows(pool, n, args.seed)
        if args.only in ("single", "cliffs"):
            print(f"\n{time.perf_counter() - started:.0f} s")
            return
        print(f"5. sequential validation, up to 2 further rounds of 15 scenarios ({args.spending} spending), {n} "
              "studies each")
        for label, rules in (("test alone (thresholds 0)", TEST_ONLY), ("default thresholds", None)):
            result = run(pool, n, args.seed + 1, rules=rules, rounds=2, spending=args.spending)
            print(f"   {label:<26} no real effect: studies accepting any change {rate(int(result[:, 0].sum()), n)}")
            for size in (0.5, 1.0, 1.5):
                result = run(pool, n, args.seed + 2, gains={0: {0.4: size}}, rules=rules, rounds=2,
                             spending=args.spending)
                print(f"   {label:<26} {size:3.1f} SD: accepted {rate(int(result[:, 1].sum()), n)}; validation "
                      f"scenarios used {result[:, 4].mean():.1f} on average")
    print(f"\n{time.perf_counter() - started:.0f} s")


def single_look(pool, n: int, seed: int) -> None:
    """Rows 1-4: one look at the 15 validation scenarios."""
    print(f"1. no real effect, {n} studies of 20 constants: studies accepting any change")
    for label, rules in (("test alone (thresholds 0)", TEST_ONLY), ("default thresholds", None)):
        result = run(pool, n, seed + 1, rules=rules)
        print(f"   {label:<26} {rate(int(result[:, 0].sum()), n)}")
    print(f"2. one real improvement at 0.4 (today 0.3), {n} studies each: accepted")
    for label, rules in (("test alone (thresholds 0)", TEST_ONLY), ("default thresholds", None)):
        for size in (0.5, 1.0, 1.5, 2.0):
            result = run(pool, n, seed + 2, gains={0: {0.4: size}}, rules=rules)
            print(f"   {label:<26} {size:3.1f} SD   {rate(int(result[:, 1].sum()), n)}")
    cliff_rows(pool, n, seed)


def cliff_rows(pool, n: int, seed: int) -> None:
    """Rows 3-4: a planted cliff, and an improvement at the edge of the range."""
    result = run(pool, n, seed + 3, gains={0: {0.4: 2.0, 0.5: -10.0}})
    print(f"3. planted cliff past a 2 SD improvement: warned {rate(int(result[:, 2].sum()), n)}")
    result = run(pool, n, seed + 4, gains={0: {0.1: 2.0}}, currents={0: 0.2})
    print(f"4. 2 SD improvement at the smallest candidate, today next to it: accepted "
          f"{rate(int(result[:, 1].sum()), n)}; rejected as a cliff {rate(int(result[:, 3].sum()), n)}")


if __name__ == "__main__":
    main()
