"""Regressions across commits in Dagster: a ``<study>/regressions`` asset per study (the report,
its plot, and a check that fails while the newest step of a history is a regression) and one
sensor that watches the ledger and flags each new regression once, in its log and by
materialising the study's regressions asset. The analysis itself is ``benchmark_assets.regressions``."""
import json

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    DefaultSensorStatus,
    MetadataValue,
    Output,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    sensor,
)

from benchmark_assets.artifacts import png_markdown, run_dir, write_files
from benchmark_assets.defs.resources import LedgerResource
from benchmark_assets.kinds import kind_of
from benchmark_assets.regressions import (
    find_regressions,
    git_order,
    regressions_markdown,
    regressions_plot,
    step_id,
)

NODE = "regressions"
CHECK = "no_new_regression"
SENSOR = "regression_watch"


def analyse(study, ledger: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The study's steps across commits (see ``regressions.find_regressions``)."""
    kind = kind_of(study)
    return find_regressions(ledger[ledger["study"] == study.name] if len(ledger) else ledger,
                            lambda subject, metric: kind.higher_is_better(study, subject, metric),
                            git_order(study.path.parent))


def build_regressions_asset(study):
    """``<study>/regressions``: every step across commits of what the study's ledger tracks."""
    key = AssetKey([study.name, NODE])
    last = kind_of(study).nodes()[-1].name  # the report: after it, the ledger holds the run's decisions

    @asset(name=NODE, key_prefix=[study.name], group_name=study.name, io_manager_key="warehouse",
           required_resource_keys={"ledger"}, deps=[AssetKey([study.name, last])],
           check_specs=[AssetCheckSpec(CHECK, asset=key, description=(
               "Fails (as a warning) while the newest level of a tracked history is a regression: a step "
               "the worse way, larger than the history's noise"))],
           description=f"Steps across commits of every subject and metric {study.name}'s ledger tracks "
                       "(robust piecewise-constant fit, asv's method), with their commit ranges and sizes.")
    def regressions(context: AssetExecutionContext):
        steps, series = analyse(study, context.resources.ledger.open().read(study=study.name))
        report = regressions_markdown(study.name, steps, series)
        folder = run_dir(study.name, context.run.run_id)
        paths = write_files(folder, {"regressions.md": report, "regressions.csv": steps})
        plot = regressions_plot(study.name, steps, series, folder / "plots" / "regressions.png")
        newest = steps[steps["regression"] & steps["newest"]]
        metadata = {"report": MetadataValue.md(report), "steps": len(steps),
                    "regressions": int(steps["regression"].sum()), "newest_regressions": len(newest),
                    "histories": len(series), "file_report": MetadataValue.path(str(paths["regressions_md"]))}
        if plot is not None:
            metadata["plot"] = MetadataValue.md(png_markdown({"levels across commits": plot}))
        yield Output(steps.assign(study=study.name), metadata=metadata)
        shown = newest[["subject", "metric", "from_commit", "to_commit", "level_before", "level_after", "relative"]]
        yield AssetCheckResult(
            check_name=CHECK, asset_key=key, passed=newest.empty, severity=AssetCheckSeverity.WARN,
            metadata={"newest_regressions": MetadataValue.md(shown.to_markdown(index=False) if len(shown) else "none")})

    return regressions


def describe(study: str, row) -> str:
    """One line for a regression: what went where, by how much, between which commits."""
    return (f"new regression in {study}: {row['subject']} ({row['metric']}) went from {row['level_before']:.4g} to "
            f"{row['level_after']:.4g} ({100 * row['relative']:+.1f} %) between commits {row['from_commit'][:10]} and "
            f"{row['to_commit'][:10]}")


def build_regression_sensor(studies: list):
    """Every 5 minutes: for each study whose ledger grew, the new regressions are logged (each
    once: the cursor keeps the ones already flagged) and its regressions asset is materialised,
    so the UI shows them and its check turns red."""
    by_name = {study.name: study for study in studies}

    @sensor(name=SENSOR, minimum_interval_seconds=300, default_status=DefaultSensorStatus.RUNNING,
            asset_selection=[AssetKey([name, NODE]) for name in by_name] or None,
            description="Flags a new regression across commits in any study's ledger, once, and refreshes that "
                        "study's regressions report.")
    def regression_watch(context: SensorEvaluationContext, ledger: LedgerResource):
        cursor = json.loads(context.cursor) if context.cursor else {"seen": {}, "flagged": []}
        frame = ledger.open().read()
        requests, flagged, news = [], set(cursor["flagged"]), []
        for name, study in by_name.items():
            rows = frame[frame["study"] == name] if len(frame) else frame
            if rows.empty:
                continue
            newest = str(rows["decided_at"].max())
            if cursor["seen"].get(name) == newest:
                continue
            cursor["seen"][name] = newest
            steps, _ = analyse(study, rows)
            for row in steps[steps["regression"] & steps["newest"]].to_dict("records"):
                if step_id(name, row) not in flagged:
                    flagged.add(step_id(name, row))
                    news.append(describe(name, row))
            requests.append(RunRequest(run_key=f"{name}:{newest}", asset_selection=[AssetKey([name, NODE])],
                                       tags={"benchmark_assets/reason": f"{SENSOR}: the ledger of {name} grew"}))
        for line in news:
            context.log.warning(line)
        cursor["flagged"] = sorted(flagged)
        if not requests:
            return SkipReason("no study's ledger grew since the last look")
        return SensorResult(run_requests=requests, cursor=json.dumps(cursor))

    return regression_watch
