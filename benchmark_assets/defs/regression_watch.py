"""Regressions across commits in Dagster: a ``<study>/regressions`` asset per study (the report,
its plot, and a check that warns while a confirmed regression is in force) and one sensor that
watches the ledger, flags each new regression once in its log, and materialises the study's
regressions asset. The analysis itself is ``benchmark_assets.regressions``."""
import json
import math

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
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
from benchmark_assets.defs.ticks import sensor_interval
from benchmark_assets.graph import StudyGraph
from benchmark_assets.regressions import (
    THRESHOLD,
    find_regressions,
    git_order,
    regressions_markdown,
    regressions_plot,
    step_id,
)

NODE = "regressions"
CHECK = "no_new_regression"
SENSOR = "regression_watch"


def analyse(graph: StudyGraph, ledger: pd.DataFrame, *, threshold: float = THRESHOLD
            ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The study's regressions in force, its changes of level and its histories
    (``regressions.find_regressions``), for the asset, the sensor and the CLI alike."""
    mine = ledger[ledger["study"] == graph.name] if len(ledger) else ledger
    return find_regressions(mine, graph.higher_is_better, git_order(graph.path.parent), threshold=threshold)


def build_regressions_asset(graph: StudyGraph):
    """``<study>/regressions``: the regressions in force across commits in the levels the study's
    ledger tracks, with their commit ranges and sizes."""
    study = graph.study
    key = AssetKey(graph.asset_path(NODE))
    last = list(graph.nodes)[-1]  # the report: after it, the ledger holds the run's decisions

    @asset(name=NODE, key_prefix=[study.name], group_name=study.name, io_manager_key="tables",
           required_resource_keys={"ledger", "warehouse"}, deps=[AssetKey(graph.asset_path(last))],
           check_specs=[AssetCheckSpec(CHECK, asset=key, description=(
               "Fails (as a warning) while a confirmed regression is in force: the newest level of a tracked "
               "history, held for two commits, is worse than an earlier one by more than the noise and 5 %"))],
           description=f"Regressions across commits in the levels {study.name}'s ledger tracks (robust "
                       "piecewise-constant fit, asv's method), with their commit ranges and sizes.")
    def regressions(context: AssetExecutionContext):
        found, changes, series = analyse(graph, context.resources.ledger.open().read(study=study.name))
        earlier = context.resources.warehouse.open().read(graph.table(NODE))
        known = {step_id(study.name, row) for row in earlier.to_dict("records")} if len(earlier) else set()
        confirmed = found[found["confirmed"]]
        for row in confirmed.to_dict("records"):
            if step_id(study.name, row) not in known:
                context.log.warning(describe(study.name, row))
        report = regressions_markdown(study.name, found, changes, series)
        folder = run_dir(study.name, context.run.run_id)
        paths = write_files(folder, {"regressions.md": report, "regressions.csv": found,
                                     "level_changes.csv": changes})
        plot = regressions_plot(study.name, found, series, folder / "plots" / "regressions.png")
        metadata = {"report": MetadataValue.md(report), "regressions_in_force": len(found),
                    "confirmed": len(confirmed), "level_changes": len(changes), "histories": len(series),
                    "file_report": MetadataValue.path(str(paths["regressions_md"]))}
        if plot is not None:
            metadata["plot"] = MetadataValue.md(png_markdown({"levels across commits": plot}))
        yield Output(found.assign(study=study.name), metadata=metadata)
        shown = confirmed[["subject", "metric", "from_commit", "to_commit", "level_before", "level_now", "relative"]]
        yield AssetCheckResult(
            check_name=CHECK, asset_key=key, passed=confirmed.empty, severity=AssetCheckSeverity.WARN,
            metadata={"regressions": MetadataValue.md(shown.to_markdown(index=False) if len(shown) else "none")})

    return regressions


def describe(study: str, row) -> str:
    """One line for a regression: what went where, by how much, between which commits."""
    relative = f" ({100 * row['relative']:+.1f} %)" if math.isfinite(row["relative"]) else ""
    return (f"new regression in {study}: {row['subject']} ({row['metric']}) went from {row['level_before']:.4g} to "
            f"{row['level_now']:.4g}{relative}; it began between commits {row['from_commit'][:10]} and "
            f"{row['to_commit'][:10]}")


def build_regression_sensor(graphs: list[StudyGraph]):
    """Every 5 minutes: for each study whose ledger grew, the new confirmed regressions are logged
    (each once: the cursor keeps the ones already flagged) and its regressions asset is
    materialised, so the UI shows them and its check warns. A study whose analysis fails is
    logged and skipped; the others go on."""
    by_name = {graph.name: graph for graph in graphs}

    @sensor(name=SENSOR, minimum_interval_seconds=sensor_interval(300), default_status=DefaultSensorStatus.RUNNING,
            asset_selection=AssetSelection.assets(*[AssetKey([name, NODE]) for name in by_name]) if by_name else None,
            description="Flags a new regression across commits in any study's ledger, once, and refreshes that "
                        "study's regressions report.")
    def regression_watch(context: SensorEvaluationContext, ledger: LedgerResource):
        cursor = json.loads(context.cursor) if context.cursor else {}
        seen, flagged = dict(cursor.get("rows", {})), set(cursor.get("flagged", []))
        frame = ledger.open().read()
        requests, news = [], []
        for name, graph in by_name.items():
            rows = frame[frame["study"] == name] if len(frame) else frame
            if rows.empty or seen.get(name) == len(rows):
                continue
            seen[name] = len(rows)
            try:
                found, _, _ = analyse(graph, rows)
            except Exception as error:  # noqa: BLE001 - one study's bad history must not stop the others
                context.log.error(f"regressions of {name} could not be analysed: {type(error).__name__}: {error}")
                continue
            for row in found[found["confirmed"]].to_dict("records"):
                if step_id(name, row) not in flagged:
                    flagged.add(step_id(name, row))
                    news.append(describe(name, row))
            requests.append(RunRequest(run_key=f"{name}:{len(rows)}", asset_selection=[AssetKey([name, NODE])],
                                       tags={"benchmark_assets/reason": f"{SENSOR}: the ledger of {name} grew"}))
        for line in news:
            context.log.warning(line)
        new_cursor = json.dumps({"rows": {k: v for k, v in seen.items() if k in by_name},
                                 "flagged": sorted(f for f in flagged if f.split("|")[0] in by_name)})
        if not requests:
            return SensorResult(skip_reason=SkipReason("no study's ledger grew since the last look"), cursor=new_cursor)
        return SensorResult(run_requests=requests, cursor=new_cursor)

    return regression_watch
