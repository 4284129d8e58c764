"""``kind: estimator_benchmark``: treatment-effect estimators ranked on a template catalog of
synthetic A/B tests whose true effects are known.

Graph: scenario_catalog (per data set: catalog entry x seed) -> trials (estimator x data set)
-> aggregates (per estimator: every star point of the catalog) -> leaderboard (IQM of normalised
errors with stratified bootstrap intervals; every pair of estimators judged, into the ledger) ->
benchmark_report (report, plots of each error against each swept knob).
"""
from __future__ import annotations

import pandas as pd

from benchmark_assets.kinds.base import (
    POINT,
    REPLICATE,
    TRIAL,
    Dimension,
    Node,
    StudyKind,
)
from benchmark_assets.kinds.estimator_benchmark import schemas
from benchmark_assets.kinds.estimator_benchmark.nodes import (
    aggregates,
    benchmark_report,
    leaderboard_node,
    scenario_catalog,
    trials,
    up_to_date,
    verdicts,
)
from benchmark_assets.kinds.estimator_benchmark.spec import (
    EstimatorBenchmarkSpec,
    EstimatorBenchmarkStudy,
    load_estimator_benchmark,
)
from benchmark_assets.kinds.estimator_benchmark.template import study_template
from benchmark_assets.outcomes import RunOutcome


class EstimatorBenchmarkKind(StudyKind):
    name = "estimator_benchmark"
    spec_model = EstimatorBenchmarkSpec
    # Estimators and data sets are registered from the study file: adding either needs no reload.
    point = Dimension("estimator", lambda study: study.estimator_names, registry="estimators")
    replicate = Dimension("dataset", lambda study: study.dataset_keys, registry="datasets")
    artifact_files = "report.md, leaderboard.csv, pairs.csv/json, trials.csv, plots/"

    def load(self, path, text, spec, name) -> EstimatorBenchmarkStudy:
        return load_estimator_benchmark(path, text, spec, name)

    def template(self, name: str, target: str | None = None) -> str:
        return study_template(name, target)

    def extras(self, spec) -> dict[str, str]:
        from benchmark_assets.targets.uplift import EXTRA_OF

        needs: dict[str, str] = {}
        for index, estimator in enumerate(spec.estimators):
            if extra := EXTRA_OF.get(estimator.reference):  # a shipped one, by its name or as `function:`
                needs.setdefault(extra, f"estimators[{index}] ({estimator.name})")
        return needs

    def nodes(self) -> list[Node]:
        decision = lambda study: study.decision_fingerprint()  # noqa: E731
        return [
            Node("scenario_catalog", scenario_catalog, partitioned_by=REPLICATE,
                 schema=lambda study: schemas.catalog_schema(),
                 version=lambda study: study.spec.catalog.model_dump(),
                 description="One row per data set (catalog entry x seed): template, metric, the knob its star "
                             "sweeps and every knob's value; rows, treated share, the true average and RMS effect."),
            Node("trials", trials, partitioned_by=TRIAL, inputs=("scenario_catalog",),
                 schema=lambda study: schemas.trials_schema(),
                 version=lambda study: (sorted(study.estimator_fingerprints.items()),
                                        sorted(study.entry_fingerprints.items())),
                 description="One row per (estimator, data set): the fitted estimator scored against the known "
                             "effects (ATE bias and error, PEHE, sign accuracy, AUUC and Qini, interval coverage "
                             "and width, fit time), or the trial's error."),
            Node("aggregates", aggregates, partitioned_by=POINT, inputs=("trials",),
                 schema=lambda study: schemas.aggregates_schema(), version=decision,
                 description="Per estimator, template, metric id and star point (knob, value): n, mean, std, t and "
                             "bootstrap intervals of each error."),
            Node("leaderboard", leaderboard_node, inputs=("trials",), deps=("aggregates",),
                 schema=lambda study: schemas.leaderboard_schema(), version=decision,
                 description="Per estimator: IQM of each normalised error over the catalog with a stratified "
                             "bootstrap interval, Qini, sign accuracy, ATE coverage, fit time; ranked."),
            Node("verdicts", verdicts, inputs=("trials", "leaderboard"),
                 schema=lambda study: schemas.pairs_schema(), version=decision,
                 description="Every pair of ranked estimators on the decision metric: the share of data sets on "
                             "which one beats the other with its exact, corrected interval; better / worse / no "
                             "difference shown; in the ledger."),
            Node("benchmark_report", benchmark_report, inputs=("trials", "leaderboard", "verdicts"),
                 description="The benchmark for review: leaderboard, pairwise verdicts, each error against each "
                             "swept knob and per template; report.md, leaderboard.csv, pairs.csv/json."),
        ]

    def point_fingerprints(self, study: EstimatorBenchmarkStudy) -> dict[str, str]:
        return dict(study.estimator_fingerprints)

    def completed_trials(self, study: EstimatorBenchmarkStudy, trials: pd.DataFrame) -> set[tuple[str, str]]:
        """Trials that succeeded with the estimator's and the entry's current settings: adding an
        estimator, an entry or a seed runs only the new trials; a failed trial is retried."""
        ok = up_to_date(study, trials)
        return {(e, str(d)) for e, d in zip(ok["estimator"], ok["dataset"])} if len(ok) else set()

    def run_summary(self, outcome: RunOutcome) -> str:
        ran, others = outcome.measured, outcome.up_to_date
        what = (f"Ran {ran} new trials (estimator x data set)" + (f"; {others} others were already up to date"
                                                                 if others else "")
                if ran else f"Ran no trial (all {others} were already up to date)")
        return f"{what}, over {outcome.points} estimators, in {outcome.seconds:.1f} s ({len(outcome.stages)} Dagster runs)."
