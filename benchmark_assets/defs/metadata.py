"""What a node's step tells the UI: its schema check, per-partition and run metadata, and the
provenance of a decision (commit, study file, what changed since the last one, why it ran)."""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pandera.errors
from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, MetadataValue, MultiPartitionKey

from benchmark_assets.artifacts import artifact_url, in_a_dialog
from benchmark_assets.defs.tags import run_reason
from benchmark_assets.display import display_number
from benchmark_assets.graph import StudyGraph
from benchmark_assets.history import StudyVersions, changes_between, history_markdown, subject_history
from benchmark_assets.kinds.base import TRIAL_STATUS_COLUMNS, Markdown, Node
from benchmark_assets.ledger import Ledger


def validate_frame(schema, frame: pd.DataFrame, check_name: str, asset_key: AssetKey) -> AssetCheckResult:
    """Run a pandera schema; a violation fails the check with the offending rows as metadata."""
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as error:
        cases = failing_rows(schema, frame, error.failure_cases)
        return AssetCheckResult(
            check_name=check_name, asset_key=asset_key, passed=False, severity=AssetCheckSeverity.ERROR,
            metadata={"failure_count": len(cases),
                      "failing_rows": MetadataValue.md(cases.head(20).to_markdown(index=False))},
        )
    return AssetCheckResult(check_name=check_name, asset_key=asset_key, passed=True, metadata={"rows_checked": len(frame)})


def failing_rows(schema, frame: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """pandera's failure cases keyed by what identifies a row (the schema's unique columns: the
    sweep point and seed id of a trial, a verdict's constant) instead of the frame's index."""
    keys = [c for c in (schema.unique or []) if c in frame.columns]
    shown = cases.copy()
    if keys and "index" in shown:
        # A column-level failure (a missing column, a wrong type) has no row: its index is None/NaN.
        located = [i if not pd.isna(i) and i in frame.index else None for i in shown["index"].astype(object)]
        for column in keys:
            shown[column] = [None if i is None else frame.at[i, column] for i in located]
        shown = shown.drop(columns="index")
    row_id = keys or ["index"]  # nothing identifies a row: its position is all there is
    columns = [c for c in (*row_id, "column", "check", "failure_case") if c in shown.columns]
    return shown[columns]


def check_name(node: Node) -> str:
    return f"check_{node.name}_schema"


def trials_metadata(frame: pd.DataFrame, key_columns: list[str], started: float) -> dict:
    """What every trials run reports: its counts, wall time and first failures with their errors."""
    failed = frame[frame["status"] != "ok"] if "status" in frame else frame.iloc[0:0]
    columns = [c for c in (*key_columns, "error") if c in failed.columns]
    first_errors = failed[columns].head(10).to_markdown(index=False) if len(failed) else ""
    # Totals of the whole run (one run covers many partitions): named so, beside each partition's own.
    return {"run_trials": len(frame), "run_failed_trials": len(failed),
            "run_seconds": round(time.perf_counter() - started, 3), "run_first_errors": MetadataValue.md(first_errors)}


def log_totals(context, totals: dict) -> None:
    """A trials run's totals in its log (one line, the first errors as a warning): as output
    metadata they would be copied onto every one of its partitions' events."""
    plain = {name: str(getattr(value, "value", value)) for name, value in totals.items()}  # Markdown, MetadataValue
    errors = plain.pop("run_first_errors", "")
    short = {name: value for name, value in plain.items() if "\n" not in value}
    context.log.info(", ".join(f"{name.removeprefix('run_').replace('_', ' ')}: {value}" for name, value in short.items()))
    for name in set(plain) - set(short):  # a kind's table or report: a line of its own
        context.log.info(f"{name}:\n{plain[name]}")
    if errors:
        context.log.warning(f"first failed trials:\n{errors}")


def per_trial_metadata(graph: StudyGraph, frame: pd.DataFrame) -> dict[MultiPartitionKey, dict]:
    """Per trial partition: how many rows it holds, how many failed and the first error, its split
    (if the kind has one) and the mean of each metric over its repeats that succeeded."""
    point, replicate = graph.point.name, graph.replicate.name
    if frame.empty:
        return {}
    keys = [point, replicate]
    failed_rows = frame["status"] != "ok" if "status" in frame else pd.Series(False, index=frame.index)
    schema = graph.trial_node.schema(graph.study) if graph.trial_node.schema else None
    unique = schema.unique if schema is not None and isinstance(schema.unique, list) else []
    # Bookkeeping has no meaning as a mean (a trial's seed, the repeat number that keys its rows).
    bookkeeping = {*keys, *TRIAL_STATUS_COLUMNS, *unique}
    numeric = [c for c in frame.select_dtypes("number").columns if c not in bookkeeping]
    table = pd.DataFrame({"rows": frame.groupby(keys, sort=False).size(),
                          "failed": failed_rows.groupby([frame[point], frame[replicate]], sort=False).sum()})
    table["error"] = frame[failed_rows].groupby(keys, sort=False)["error"].first().str[:500] \
        if "error" in frame and failed_rows.any() else ""
    if "split" in frame:
        table["split"] = frame.groupby(keys, sort=False)["split"].first().astype(str)
    means = frame[~failed_rows].groupby(keys, sort=False)[numeric].mean()
    # a metric called rows, failed or error keeps its mean (merge: join's rsuffix is deprecated in pandas 3)
    table = table.merge(means, how="left", left_index=True, right_index=True, suffixes=("", "_mean"))
    table["error"] = table["error"].fillna("")
    out = {}
    for (p, r), row in zip(table.index, table.to_dict("records")):
        own = {k: (int(v) if k in ("rows", "failed") else float(f"{v:.4g}") if isinstance(v, float) else v)
               for k, v in row.items() if not (isinstance(v, float) and v != v)}
        out[MultiPartitionKey({point: str(p), replicate: str(r)})] = own
    return out

def dagster_metadata(metadata: dict) -> dict:
    """A node's plain metadata as Dagster metadata, its ``headline`` first (what a person reads
    first): ``Markdown`` renders, a ``Path`` links (to the artifacts server, if one serves it), a
    ``DataFrame`` is a table."""
    out = {}
    for name, value in sorted(metadata.items(), key=lambda item: item[0] != "headline"):
        if isinstance(value, Markdown):
            out[name] = MetadataValue.md(str(value))
        elif isinstance(value, Path):  # a link the browser opens when an artifacts server serves it
            url = artifact_url(value)
            out[name] = MetadataValue.url(url) if url else MetadataValue.path(str(value))
        elif isinstance(value, pd.DataFrame):
            out[name] = table_metadata(value)
        else:
            out[name] = value
    return out


def table_metadata(frame: pd.DataFrame):
    """A table the asset page shows as one (sortable, one row per subject), every cell as text a
    person reads: numbers to 4 significant digits, float noise below 1e-9 as 0."""
    from dagster import TableColumn, TableRecord, TableSchema

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if value != value else display_number(value)
        return str(value)

    columns = [str(c) for c in frame.columns]
    records = [TableRecord({c: cell(v) for c, v in zip(columns, row)}) for row in frame.itertuples(index=False)]
    return MetadataValue.table(records=records, schema=TableSchema(columns=[TableColumn(c, "string") for c in columns]))


def study_headline(instance, graph: StudyGraph) -> str:
    """What the study decided: the ``headline`` of its most downstream unpartitioned asset that
    has one, at that asset's latest materialisation ('' before any)."""
    for node in reversed(list(graph.nodes.values())):
        if node.partitioned_by is not None:
            continue
        event = instance.get_latest_materialization_event(AssetKey(graph.asset_path(node.name)))
        value = event.asset_materialization.metadata.get("headline") if event else None
        if value is not None:
            return str(getattr(value, "value", value))
    return ""


def stage_links(stages) -> dict:
    """Each stage's Dagster run as a link its page opens (relative to the webserver's root)."""
    return {f"stage {i}: {stage.label}": MetadataValue.url(f"/runs/{stage.run_id}")
            for i, stage in enumerate(stages, start=1)}


def decision_record(study, warehouse) -> tuple[pd.DataFrame, dict[str, str]]:
    """The study's decisions so far and the study file texts they were made with, read once per
    analysis step; remembers this study file's text so later decisions can be compared with it."""
    versions = StudyVersions(warehouse)
    versions.remember(study.name, study.spec_hash, study.text, pd.Timestamp.now(tz="UTC").isoformat())
    return Ledger(warehouse).read(study=study.name), versions.texts(study.name)


def provenance_metadata(study, run, decided: pd.DataFrame, texts: dict[str, str], commit: str) -> dict:
    """Git commit (``+dirty`` when the checkout has changes), the study file's hash, what changed in
    the study since its previous decision (``decided``, ``texts``: ``decision_record``), and why this
    run ran."""
    earlier = decided[decided["run_id"] != run.run_id] if len(decided) else decided
    previous = earlier["study_hash"].iloc[-1] if len(earlier) else None
    return {"git_commit": commit, "study_hash": study.spec_hash, "run_reason": run_reason(run.tags),
            "study_changes_since_previous_decision": changes_between(texts, previous, study.spec_hash)}


def decision_histories(study, decided: pd.DataFrame, texts: dict[str, str], pending: pd.DataFrame,
                       limit: int = 10) -> dict[str, Markdown]:
    """Per subject this run decides on (``pending``): its earlier decisions and this one, newest
    first; as ``history`` (every subject, in one dialog) and ``history: <subject>`` (one each, so a
    person reading about one constant opens just its own)."""
    rows = pd.concat([decided, pending], ignore_index=True) if len(decided) else pending
    tables = {subject: history_markdown(subject, subject_history(rows, texts, subject, limit=limit))
              for subject in dict.fromkeys(pending["subject"])}
    intro = f"Every decision on each subject (newest first; `benchmark-assets why {study.name} <subject>` prints the same)"
    # Always in a dialog: shown in place, a history's wide table widens the page's value column
    # beyond its panel, and every value beside it (the headline first) is cut off at the panel's edge.
    entries = {"history": Markdown(in_a_dialog("\n".join([intro, "", *tables.values()])))}
    entries.update({f"history: {subject}": Markdown(in_a_dialog(table)) for subject, table in tables.items()})
    return entries


