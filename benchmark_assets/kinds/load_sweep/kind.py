"""``kind: load_sweep``: an OpenAI-compatible server driven at each load of a sweep, repeatedly.

Graph: trials (sweep point x trial, one at a time per endpoint) -> aggregates (per sweep point)
-> sweep_summary (best configurations, Pareto frontier, trends, exports; decisions into the ledger).
"""
from __future__ import annotations

import pandas as pd

from benchmark_assets.kinds.base import (
    POINT,
    TRIAL,
    Dimension,
    Followup,
    Node,
    StudyKind,
)
from benchmark_assets.kinds.load_sweep import ingest as inbox
from benchmark_assets.kinds.load_sweep import schemas
from benchmark_assets.kinds.load_sweep.analysis import BEST_CONFIGURATIONS
from benchmark_assets.kinds.load_sweep.followups import next_trials, search_plan
from benchmark_assets.kinds.load_sweep.nodes import (
    CAPACITY_SUBJECT,
    aggregates,
    stopping,
    sweep_summary,
    trials,
)
from benchmark_assets.kinds.load_sweep.spec import LoadSweepSpec, LoadSweepStudy, load_load_sweep
from benchmark_assets.kinds.load_sweep.template import study_template
from benchmark_assets.kinds.load_sweep.trials import resumable
from benchmark_assets.outcomes import RunOutcome


class LoadSweepKind(StudyKind):
    name = "load_sweep"
    spec_model = LoadSweepSpec
    point = Dimension("sweep_point", lambda study: study.point_keys, registry="load_points")
    # Trial numbers are dynamic too: raising `trials:` adds partitions without reloading definitions.
    replicate = Dimension("trial", lambda study: study.trial_keys, registry="load_trials")
    artifact_files = "report.md, sweep_aggregate.json/csv, per_value/, plots/pareto.png (capacity.png with a search)"
    inbox_files, inbox_help = inbox.PATTERNS, inbox.HELP

    def load(self, path, text, spec, name) -> LoadSweepStudy:
        return load_load_sweep(path, text, spec, name)

    def template(self, name: str, target: str | None = None) -> str:
        return study_template(name, target)

    def higher_is_better(self, study: LoadSweepStudy, subject: str, metric: str) -> bool | None:
        """The best configurations' effects are levels (their mean throughput, their mean p99
        latency), and so is the capacity under the SLA; the sweep points' entries carry none."""
        if subject == CAPACITY_SUBJECT:
            return True
        best = BEST_CONFIGURATIONS.get(subject)
        return best[1] if best else None

    def nodes(self) -> list[Node]:
        return [
            Node("trials", trials, partitioned_by=TRIAL, schema=lambda study: schemas.load_trials_schema(),
                 version=lambda study: study.fingerprint(),
                 # One pool per endpoint with a limit of 1: no two load trials overlap on a server, across runs.
                 pool=lambda study: study.endpoint_pool,
                 description="One row per (sweep point, trial): every load metric statistic, or the trial's error."),
            Node("aggregates", aggregates, partitioned_by=POINT, inputs=("trials",),
                 schema=lambda study: schemas.load_aggregates_schema(),
                 version=lambda study: (study.spec.decision.model_dump(), [o.model_dump() for o in study.objectives]),
                 description="Per sweep point and metric statistic: n, mean, std, min, max, cv, se, t and bootstrap "
                             "intervals."),
            Node("stopping", stopping, inputs=("trials",),
                 version=lambda study: (study.spec.stopping and study.spec.stopping.model_dump(),
                                        study.spec.capacity and study.spec.capacity.model_dump(),
                                        [s.model_dump() for s in study.spec.slos],
                                        study.spec.decision.confidence_level),
                 description="Per sweep point (per probe of a capacity search): its trials this round, whether it "
                             "has enough and why (precise, max trials; met, failed or too close to call the SLA)."),
            Node("sweep_summary", sweep_summary, inputs=("aggregates", "trials", "stopping"),
                 description="Best configurations, Pareto-optimal points, trends, failed trials; JSON/CSV exports "
                             "and a Pareto plot; decisions into the ledger."),
        ]

    def followup(self, study: LoadSweepStudy, read) -> Followup | None:
        """Another trial at each point not yet precise (``stopping``), or the capacity search's
        next probe (``capacity``), measured the same way as the first round."""
        wanted = next_trials(study, read("trials"))
        if wanted is None:
            return None
        reason, trials_wanted = wanted
        return Followup(reason=reason, trials=trials_wanted, nodes=("stopping",))

    def followup_limit(self, study: LoadSweepStudy) -> int:
        """A point gets one trial per follow-up; a capacity search probes one load at a time."""
        first, last = study.trial_range
        probes = search_plan(study).max_probes if study.spec.capacity else 1
        return probes * (last - first + 2) + 1

    def point_fingerprints(self, study: LoadSweepStudy) -> dict[str, str]:
        """Every point's trials depend on the same load, server and seed settings; a point's
        own swept values are its key."""
        return dict.fromkeys(study.point_keys, study.fingerprint())

    def resumable_trials(self, study: LoadSweepStudy, checkpoint: pd.DataFrame) -> set[tuple[str, str]]:
        kept = resumable(study, checkpoint)
        return {(p, str(t)) for p, t in zip(kept["sweep_point"], kept["trial"])} if len(kept) else set()

    def ingest(self, study: LoadSweepStudy, path, relative, new_replicate) -> pd.DataFrame:
        return inbox.ingest_export(study, path, relative, new_replicate)

    def run_summary(self, outcome: RunOutcome) -> str:
        where = ("in a capacity search, one load at a time" if outcome.study.spec.capacity is not None
                 else f"over {outcome.points} sweep points")
        return (f"Ran {outcome.measured} load trials {where} in {outcome.seconds:.1f} s "
                f"({len(outcome.stages)} Dagster runs).")
