"""``kind: ratchet``: tiered constants swept on train scenarios, confirmed on held-out validation.

Graph: scenario_catalog (per seed id) -> trials (sweep point x seed id) -> aggregates (per
sweep point) -> verdicts (one per constant, into the ledger) and interactions (one per pair of
constants swept as a grid) -> ratchet_summary (report, patch, plots).
"""
from __future__ import annotations

from collections.abc import Sequence

from benchmark_assets.kinds.base import (
    POINT,
    REPLICATE,
    TRIAL,
    Dimension,
    Followup,
    Node,
    StudyKind,
)
from benchmark_assets.kinds.ratchet import schemas
from benchmark_assets.kinds.ratchet.cumulative import PENDING
from benchmark_assets.kinds.ratchet.nodes import (
    aggregates,
    cumulative,
    interactions,
    ratchet_summary,
    scenario_catalog,
    search,
    trials,
    verdicts,
)
from benchmark_assets.kinds.ratchet.search import (
    RUNNING,
    describe,
)
from benchmark_assets.kinds.ratchet.spec import RatchetSpec, RatchetStudy, load_ratchet
from benchmark_assets.kinds.ratchet.template import study_template
from benchmark_assets.study_file import StudyError
from benchmark_assets.sweep import CURRENT_POINT


class RatchetKind(StudyKind):
    name = "ratchet"
    spec_model = RatchetSpec
    point = Dimension("sweep_point", lambda study: [p.key for p in study.sweep_points()], registry="sweep_points")
    # Dynamic: a further validation round registers its seed ids when it is run.
    replicate = Dimension("seed_id", lambda study: study.seed_keys, registry="seed_ids")
    artifact_files = ("report.md, proposed.patch, verdicts.csv/json, aggregates.csv, sensitivity.csv, "
                      "interactions.csv, cumulative.csv, search.csv (when the study has them), plots/")

    def load(self, path, text, spec, name) -> RatchetStudy:
        return load_ratchet(path, text, spec, name)

    def template(self, name: str, target: str | None = None) -> str:
        return study_template(name, target)

    def extras(self, spec) -> dict[str, str]:
        ranged = [name for name, constant in spec.constants.items() if constant.range is not None]
        return {"search": f"constants.{ranged[0]}.range"} if ranged else {}

    def nodes(self) -> list[Node]:
        decision = lambda study: study.spec.decision  # noqa: E731
        return [
            Node("scenario_catalog", scenario_catalog, partitioned_by=REPLICATE,
                 schema=lambda study: schemas.scenario_catalog_schema(),
                 # its rows say which validation round a scenario belongs to: that depends on the rounds' size
                 version=lambda study: (study.spec.scenarios.model_dump(),
                                        study.spec.sequential.scenarios_per_round),
                 description="One row per generated scenario: its seven axes and its train/validation split."),
            Node("trials", trials, partitioned_by=TRIAL, inputs=("scenario_catalog",), schema=schemas.trials_schema,
                 # Every point's trials share this; a point's own value is in its partition key.
                 version=lambda study: study.point_fingerprints().get("current"),
                 description="Partitioned by sweep point x seed id (one scenario per seed id); each partition "
                             "holds that scenario's trials_per_scenario repeats: metrics, or the error of a failed "
                             "trial."),
            Node("aggregates", aggregates, partitioned_by=POINT, inputs=("trials",),
                 schema=lambda study: schemas.aggregates_schema(),
                 version=lambda study: (decision(study).confidence_level, decision(study).bootstrap_resamples,
                                        decision(study).rng_seed),
                 description="Per sweep point, split and metric: n, mean, std, min, max, cv, se, t and bootstrap "
                             "intervals."),
            Node("search", search, inputs=("trials",), deps=("aggregates",),
                 schema=lambda study: schemas.search_schema(),
                 version=lambda study: study.search_fingerprint(),
                 description="Optuna's proposals for the constants given a range, each measured on the train "
                             "scenarios (the run's follow-ups measure each batch); its best is judged on "
                             "validation with the verdicts. State in the warehouse database."),
            Node("verdicts", verdicts, inputs=("trials", "search"), deps=("aggregates",), selectable=True,
                 schema=lambda study: schemas.verdicts_schema(), version=lambda study: study.decision_fingerprint(),
                 description="One verdict per constant (accept / reject / no_sensitivity) with its evidence; "
                             "appended to the ledger."),
            Node("interactions", interactions, inputs=("trials", "search"), deps=("aggregates",), selectable=True,
                 schema=lambda study: schemas.interactions_schema(),
                 version=lambda study: (study.decision_fingerprint(), study.spec.interactions),
                 description="One verdict per interaction pair: is the best cell of the pair's grid on train "
                             "better on validation than each constant's best alone? Appended to the ledger."),
            Node("cumulative", cumulative, inputs=("trials", "verdicts", "interactions"),
                 schema=lambda study: schemas.cumulative_schema(),
                 version=lambda study: study.decision_fingerprint(),
                 description="The accepted changes applied together on the validation scenarios, one at a time "
                             "in order of gain: each must still add more than the improvement threshold, or it is "
                             "dropped as a clash. The patch holds what is kept."),
            Node("ratchet_summary", ratchet_summary,
                 inputs=("verdicts", "interactions", "cumulative", "search", "aggregates", "trials"),
                 description="The ratchet's proposal: report, exports, sensitivity plots and a patch of the study "
                             "file."),
        ]

    def point_fingerprints(self, study: RatchetStudy) -> dict[str, str]:
        return study.point_fingerprints()

    def followup(self, study: RatchetStudy, read) -> Followup | None:
        """First the next validation round of the verdicts still inconclusive (the current point
        and their proposed values on the round's new scenarios), then the combination the
        cumulative validation is waiting for, on the validation scenarios."""
        proposals = read("search")
        if study.searched and not proposals.empty and "state" in proposals:
            running = proposals[proposals["state"] == RUNNING]
            train = [str(s) for s in study.split[0]]
            if len(running):
                return Followup(reason=f"search: {len(running)} proposals of {study.search.sampler} measured on "
                                       f"the {len(train)} train scenarios",
                                trials=dict.fromkeys(running["sweep_point"], train),
                                nodes=("search",))
            best = proposals[proposals["best"].astype(bool)]
            if len(best) and not bool(best["validated"].iloc[0]):
                point = str(best["sweep_point"].iloc[0])
                return Followup(reason=f"search: its best proposal ({describe(study, point)}) on the validation "
                                       "scenarios",
                                trials={point: [str(s) for s in study.split[1]]},
                                nodes=("search", "verdicts", "interactions", "cumulative"))
        verdicts = read("verdicts")
        if not verdicts.empty and "next_round" in verdicts:
            waiting = verdicts[verdicts["next_round"] > 0]
            if len(waiting):
                next_round = int(waiting["next_round"].min())
                waiting = waiting[waiting["next_round"] == next_round]
                points = [CURRENT_POINT] + list(dict.fromkeys(waiting["proposed_point"]))
                seeds = [str(s) for s in study.validation_rounds[next_round - 1]]
                return Followup(reason=f"validation round {next_round} of {study.spec.sequential.rounds}: "
                                       f"{len(seeds)} new scenarios for {', '.join(waiting['constant'])}",
                                trials=dict.fromkeys(points, seeds),
                                nodes=("verdicts", "cumulative"))
        steps = read("cumulative")
        if steps.empty or "decision" not in steps or ("final" in verdicts and not verdicts["final"].all()):
            return None
        pending = steps[steps["decision"] == PENDING]
        if pending.empty:
            return None
        row = pending.iloc[0]
        return Followup(reason=f"cumulative validation: {row['change']} together with the changes kept before it "
                               f"({row['combination']}) on the validation scenarios",
                        trials={row["combination"]: [str(s) for s in study.split[1]]},
                        nodes=("cumulative",))

    def _chosen(self, study: RatchetStudy, subjects: Sequence[str], tiers: Sequence[int]) -> list[str]:
        """The selected constants: swept ones in tier order, then searched ones (which the search
        explores together, so any of them selects the search)."""
        unknown = sorted(set(subjects) - set(study.spec.constants))
        if unknown:
            raise StudyError(study.path, "--constants", f"unknown constants {unknown}",
                             f"choose from {sorted(study.spec.constants)}")
        swept = [s.name for s in study.constant_sweeps(tiers=list(tiers) or None, names=list(subjects) or None)]
        searched = [n for n in study.searched if (not subjects or n in subjects)
                    and (not tiers or study.spec.constants[n].tier in tiers)]
        if not swept and not searched:
            raise StudyError(study.path, "--tier", f"no constants in tiers {list(tiers)}",
                             "pick a tier the study declares")
        return swept + searched

    def points(self, study: RatchetStudy, subjects: Sequence[str] = (), tiers: Sequence[int] = ()) -> list[str]:
        chosen = self._chosen(study, subjects, tiers)
        names = [n for n in chosen if n not in study.searched]
        if (subjects or tiers) and not names:  # only searched constants: today's values (the search adds its own)
            return [CURRENT_POINT]
        return [p.key for p in study.sweep_points(tiers=list(tiers) or None, names=list(subjects) or None)]

    def subjects(self, study: RatchetStudy, subjects: Sequence[str] = (), tiers: Sequence[int] = ()) -> list[str]:
        """Tiers become the constants they hold, so the verdicts correct only for those."""
        if not subjects and not tiers:
            return []
        return self._chosen(study, subjects, tiers)

    def rows_per_trial(self, study: RatchetStudy) -> int:
        return study.spec.trials_per_scenario
