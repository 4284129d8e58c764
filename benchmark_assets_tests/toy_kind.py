"""A study kind defined outside the package, as a user's own would be: keep or change one setting ``x``.

Each value of ``x`` is run on every seed of a noisy function whose best ``x`` is 0.6; the best
value is compared with the baseline, paired by seed, with a t-test. Registered through the
``benchmark_assets.kinds`` entry point group by the tests (see test_toy_kind.py), never by the package.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pydantic import Field, StrictFloat, StrictInt

from benchmark_assets import artifacts
from benchmark_assets.kinds.base import POINT, TRIAL, Dimension, LedgerEntry, Markdown, Node, NodeResult, StudyKind
from benchmark_assets.stats import paired_ttest
from benchmark_assets.stats.aggregate import aggregate_metrics
from benchmark_assets.study_file import ScheduleSpec, Strict, StudyError, StudyFile
from benchmark_assets.sweep import point_key

EXAMPLE = """\
kind: toy_kind
baseline: 0.2
values: [0.2, 0.4, 0.6, 1.0]
seeds: [1, 2, 3, 4, 5, 6]
noise: 0.01
"""


class ToySpec(Strict):
    kind: Literal["toy_kind"]
    baseline: StrictFloat
    values: list[StrictFloat] = Field(min_length=2)
    seeds: list[StrictInt] = Field(min_length=2)
    noise: StrictFloat = Field(default=0.05, ge=0)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)


@dataclass(frozen=True, eq=False)
class ToyStudy(StudyFile):
    spec: ToySpec
    kind = "toy_kind"

    def key(self, x: float) -> str:
        return point_key("x", x)

    @property
    def point_keys(self) -> list[str]:
        return [self.key(x) for x in self.spec.values]

    def x_of(self, key: str) -> float:
        return dict(zip(self.point_keys, self.spec.values))[key]


def score(x: float, seed: int, noise: float) -> float:
    return float(1.0 - (x - 0.6) ** 2 + np.random.default_rng(seed).normal(0.0, noise))


def trials(study: ToyStudy, step) -> NodeResult:
    report = step.progress("toy trials")
    rows = []
    for done, (point, seed) in enumerate(step.partition_keys, start=1):
        x = study.x_of(point)
        error = "x above 0.9 is refused on purpose" if x > 0.9 else ""
        rows.append({"x_point": point, "seed": int(seed), "trial_seed": int(seed), "status": "failed" if error else "ok",
                     "error": error, "score": float("nan") if error else score(x, int(seed), study.spec.noise)})
        report(done, len(step.partition_keys))
    return NodeResult(pd.DataFrame(rows))


def aggregates(study: ToyStudy, step, trials: pd.DataFrame) -> NodeResult:
    frames = []
    for point in step.partition_keys:
        ok = trials[(trials["x_point"] == point) & (trials["status"] == "ok")]
        table = aggregate_metrics(ok, ["score"], n_resamples=500, label=point)
        table.insert(0, "x_point", point)
        frames.append(table)
    return NodeResult(pd.concat(frames, ignore_index=True))


def decision(study: ToyStudy, step, trials: pd.DataFrame, aggregates: pd.DataFrame) -> NodeResult:
    means = aggregates.set_index("x_point")["mean"].dropna()
    best = means.idxmax()
    table = trials[trials["status"] == "ok"].pivot_table(index="seed", columns="x_point", values="score")
    baseline = study.key(study.spec.baseline)
    test = paired_ttest(table[best].to_numpy(), table[baseline].to_numpy())
    change = best != baseline and test.p_value < 0.05 and test.low > 0
    verdict = "change" if change else "keep"
    reason = f"{best} beats {baseline} by {test.mean_difference:+.4f}, p = {test.p_value:.3g}" if best != baseline \
        else f"{baseline} is already the best value"
    frame = pd.DataFrame([{"best": best, "baseline": baseline, "effect": test.mean_difference, "ci_low": test.low,
                           "ci_high": test.high, "p_value": test.p_value, "decision": verdict, "reason": reason}])
    report = f"# Toy decision: {study.name}\n\n**{verdict}**: {reason}\n"
    folder = artifacts.run_dir(study.name, step.run_id)
    artifacts.write_files(folder, {"report.md": report, "decision.csv": frame})
    entry = LedgerEntry(subject="x", decision=verdict, reason=reason, metric="score", baseline=study.spec.baseline,
                        proposal=study.x_of(best), effect=test.mean_difference, ci_low=test.low, ci_high=test.high,
                        adjusted_ci_low=test.low, adjusted_ci_high=test.high, confidence_level=0.95,
                        p_value=test.p_value, p_adjusted=test.p_value)
    return NodeResult(frame, {"decision": verdict, "report": Markdown(report), "artifacts": folder}, ledger=[entry])


def trials_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema({"x_point": pa.Column(str), "seed": pa.Column(int), "status": pa.Column(str),
                               "score": pa.Column(float, pa.Check.le(1.5), nullable=True)},
                              unique=["x_point", "seed"], strict=False)


class ToyKind(StudyKind):
    name = "toy_kind"
    spec_model = ToySpec
    point = Dimension("x_point", lambda study: study.point_keys, registry="points")
    replicate = Dimension("seed", lambda study: [str(s) for s in study.spec.seeds], dynamic=False)
    artifact_files = "report.md, decision.csv"

    def load(self, path, text, spec, name) -> ToyStudy:
        if spec.baseline not in spec.values:
            raise StudyError(path, "baseline", f"{spec.baseline} is not among the values", "add it to values")
        return ToyStudy(name=name, path=path, text=text, spec=spec)

    def nodes(self) -> list[Node]:
        return [
            Node("trials", trials, partitioned_by=TRIAL, schema=lambda study: trials_schema(),
                 version=lambda study: study.spec.noise, description="One row per (x, seed)."),
            Node("aggregates", aggregates, partitioned_by=POINT, inputs=("trials",), description="Per x: mean, CI."),
            Node("decision", decision, inputs=("trials", "aggregates"), description="Keep or change x."),
        ]

    def point_fingerprints(self, study: ToyStudy) -> dict[str, str]:
        return dict.fromkeys(study.point_keys, str(study.spec.noise))


KIND = ToyKind()
