"""A node's view of its Dagster run (``kinds.base.Step``): its partitions as keys, logging,
progress, and the checkpoint of finished trials that lets an interrupted run resume."""
from __future__ import annotations

import pandas as pd
from dagster import AssetExecutionContext, Config

from benchmark_assets.defs.partitions import trial_pairs_of
from benchmark_assets.graph import StudyGraph
from benchmark_assets.kinds.base import TRIAL, Node


class SubjectSelection(Config):
    """Which subjects (e.g. constants) a run decides on; empty means every subject of the study."""

    subjects: list[str] = []  # noqa: RUF012 - a Dagster Config (pydantic) copies its defaults


def progress_reporter(context, label: str, *, terminal_bar: bool, parent_run_id: str = ""):
    """Log progress to Dagster every ~10 % (also in the log of ``parent_run_id``, the study's job
    run, if any); draw a terminal bar when the CLI asks for one."""
    parent = context.instance.get_run_by_id(parent_run_id) if parent_run_id else None
    bar = None
    if terminal_bar:
        from tqdm import tqdm

        bar = tqdm(desc=label, unit="trial", leave=False, disable=None)  # None: no bar when stderr is no terminal
    state = {"logged": 0}

    def report(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()
        if done * 10 // max(total, 1) > state["logged"] or done == total:
            state["logged"] = done * 10 // max(total, 1)
            context.log.info(f"{label}: {done}/{total} trials")
            if parent is not None:
                context.instance.report_engine_event(f"{label}: {done}/{total} trials", dagster_run=parent)
        if bar is not None and done == total:
            bar.close()

    return report


class DagsterStep:
    """A node's view of its Dagster run (``kinds.base.Step``)."""

    def __init__(self, context: AssetExecutionContext, graph: StudyGraph, node: Node, subjects: list[str]):
        self._context, self._graph = context, graph
        self._checkpoint_table = graph.checkpoint_table if node.partitioned_by == TRIAL else ""
        self._columns = graph.partition_columns(node)
        self.run_id = context.run.run_id
        self.subjects = list(subjects)
        self.warehouse_url = context.resources.warehouse.open().url
        if node.partitioned_by == TRIAL:
            self.partition_keys = trial_pairs_of(graph, context.partition_keys)
        elif node.partitioned_by is not None:
            self.partition_keys = list(context.partition_keys)
        else:
            self.partition_keys = []

    def log(self, message: str) -> None:
        self._context.log.info(message)

    def warn(self, message: str) -> None:
        self._context.log.warning(message)

    def progress(self, label: str):
        progress = self._context.resources.progress
        return progress_reporter(self._context, label, terminal_bar=progress.terminal_bar,
                                 parent_run_id=progress.parent_run_id)

    def _keys(self, rows: pd.DataFrame) -> list[tuple]:
        return [tuple(str(v) for v in key) for key in rows[self._columns].itertuples(index=False)]

    def checkpoint(self, rows: pd.DataFrame) -> None:
        if self._checkpoint_table and len(rows):
            rows = self._graph.stamped(rows)  # what they were measured with, and that they were measured
            self._context.resources.warehouse.open().replace_partitions(self._checkpoint_table, rows, self._columns,
                                                                      self._keys(rows))

    def checkpointed(self) -> pd.DataFrame:
        if not self._checkpoint_table:
            return pd.DataFrame()
        warehouse = self._context.resources.warehouse.open()
        wanted = {tuple(str(v) for v in key) for key in self.partition_keys}
        rows = warehouse.read(self._checkpoint_table, {self._columns[0]: sorted({k[0] for k in wanted})})
        rows = rows[[key in wanted for key in self._keys(rows)]].reset_index(drop=True) if len(rows) else rows
        return self._graph.upgraded(rows)

    def clear_checkpoint(self) -> None:
        """The step's rows are stored for good: its checkpoint rows are not needed any more."""
        if self._checkpoint_table and self.partition_keys:
            warehouse = self._context.resources.warehouse.open()
            if warehouse.has_table(self._checkpoint_table):
                warehouse.replace_partitions(self._checkpoint_table, pd.DataFrame(), self._columns,
                                             [tuple(str(v) for v in key) for key in self.partition_keys])

