"""``kind: comparison``: a control and a candidate arm run by a command on shared seeds.

Graph: trials (arm x seed) -> summaries -> aggregates, comparison, variance_analysis ->
comparison_report (report, exports, plots; the verdict into the ledger).
"""
from __future__ import annotations

import pandas as pd

from benchmark_assets.kinds.base import (
    TRIAL,
    Dimension,
    Node,
    StudyKind,
)
from benchmark_assets.kinds.comparison import ingest as inbox
from benchmark_assets.kinds.comparison import schemas
from benchmark_assets.kinds.comparison.nodes import (
    aggregates,
    comparison,
    comparison_report,
    missing_decision_metric,
    summaries,
    trials,
    up_to_date,
    variance_analysis,
)
from benchmark_assets.kinds.comparison.spec import ARMS, ComparisonSpec, ComparisonStudy, load_comparison
from benchmark_assets.kinds.comparison.template import study_template
from benchmark_assets.outcomes import RunOutcome


class ComparisonKind(StudyKind):
    name = "comparison"
    spec_model = ComparisonSpec
    point = Dimension("arm", lambda study: list(ARMS), dynamic=False)
    # Seeds are registered from the study file (CLI or sensor): adding seeds needs no reload.
    replicate = Dimension("seed", lambda study: study.seed_keys, registry="seeds")
    artifact_files = ("report.md, comparison.csv/json, aggregates.csv, summaries.csv, variance.csv, "
                      "plots/comparison.png, plots/variance.png")
    inbox_files, inbox_help = inbox.PATTERNS, inbox.HELP

    def load(self, path, text, spec, name) -> ComparisonStudy:
        return load_comparison(path, text, spec, name)

    def template(self, name: str, target: str | None = None) -> str:
        return study_template(name, target)

    def nodes(self) -> list[Node]:
        analysis = lambda study: (study.spec.decision.model_dump(), study.spec.direction, study.spec.design)  # noqa: E731
        return [
            Node("trials", trials, partitioned_by=TRIAL, schema=lambda study: schemas.comparison_trials_schema(),
                 version=lambda study: tuple(study.arm_fingerprint(arm) for arm in ARMS),
                 description="One row per (arm, seed): the command's scalar metrics, its curves as JSON, or its error."),
            Node("summaries", summaries, inputs=("trials",),
                 version=lambda study: (study.spec.metric, study.spec.summary),
                 description="One row per (arm, seed): every scalar metric and the decision metric (a curve's "
                             "summary)."),
            Node("aggregates", aggregates, inputs=("summaries",), version=analysis,
                 schema=lambda study: schemas.arm_aggregates_schema(),
                 description="Per arm and metric: n, mean, std, min, max, cv, se, t and bootstrap intervals."),
            Node("comparison", comparison, inputs=("summaries",), version=analysis,
                 schema=lambda study: schemas.comparison_schema(),
                 description="Candidate - control per metric: effect, interval, p-values, assumption checks, power, "
                             "verdict."),
            Node("variance_analysis", variance_analysis, inputs=("summaries",), version=analysis,
                 schema=lambda study: schemas.variance_schema(),
                 description="Per arm: CV of the seed-averaged decision metric against the number of seeds, and the "
                             "stable N."),
            Node("comparison_report", comparison_report,
                 inputs=("trials", "summaries", "aggregates", "comparison", "variance_analysis"),
                 description="The verdict for review: markdown report, CSV/JSON exports, plots; appended to the "
                             "ledger."),
        ]

    def point_fingerprints(self, study: ComparisonStudy) -> dict[str, str]:
        return {arm: study.arm_fingerprint(arm) for arm in ARMS}

    def completed_trials(self, study: ComparisonStudy, trials: pd.DataFrame) -> set[tuple[str, str]]:
        """Trials that succeeded with the arm's current command and parameters: adding seeds runs
        only the new ones; a failed trial is retried."""
        ok = up_to_date(study, trials)
        return {(arm, str(seed)) for arm, seed in zip(ok["arm"], ok["seed"])} if len(ok) else set()

    def ingest(self, study: ComparisonStudy, path, relative, new_replicate) -> pd.DataFrame:
        return inbox.ingest_curves(study, path, relative, new_replicate)

    def decided_nothing(self, study: ComparisonStudy, read) -> str:
        return missing_decision_metric(study, read("summaries"))

    def run_summary(self, outcome: RunOutcome) -> str:
        ran, others = outcome.measured, outcome.up_to_date
        what = (f"Ran {ran} new trials" + (f" ({others} others were already up to date)" if others else "")
                if ran else f"Ran no trial (all {others} were already up to date)")
        return f"{what} in {outcome.seconds:.1f} s ({len(outcome.stages)} Dagster runs)."
