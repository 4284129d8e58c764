"""Dagster resources every study uses, configured once: ``warehouse`` (the results database),
``tables`` (the IO manager that keeps each node's table in it), ``ledger``, ``progress`` and
``step_values`` (what scaled-out steps hand each other).

The warehouse URL is set in one place (``WarehouseResource.url``, empty: $BENCHMARK_ASSETS_WAREHOUSE_URL
or SQLite under $DAGSTER_HOME); the IO manager and the ledger both hold that resource, and the CLI
builds its runs from the same ``study_resources``.
"""
from __future__ import annotations

import json

import pandas as pd
from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, MultiPartitionKey, OutputContext

from benchmark_assets.ledger import Ledger, Provenance
from benchmark_assets.warehouse import Warehouse


def table_name(asset_key) -> str:
    return "__".join(asset_key.path)


def _partition_tuples(keys, columns: list[str]) -> list[tuple]:
    tuples = []
    for key in keys:
        if isinstance(key, MultiPartitionKey):
            by_dimension = key.keys_by_dimension
            tuples.append(tuple(by_dimension[c] for c in columns))
        else:
            tuples.append((key,))
    return tuples


class WarehouseResource(ConfigurableResource):
    """The results database: any SQLAlchemy URL."""

    url: str = ""  # empty: $BENCHMARK_ASSETS_WAREHOUSE_URL or SQLite under $DAGSTER_HOME

    def open(self) -> Warehouse:
        return Warehouse(self.url or None)


class WarehouseIOManager(ConfigurableIOManager):
    """Stores DataFrames in ``<study>__<asset>`` tables; rematerialising a partition replaces its rows."""

    warehouse: WarehouseResource

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        columns = list(context.definition_metadata.get("partition_columns", []))
        keys = _partition_tuples(context.asset_partition_keys, columns) if context.has_asset_partitions else []
        rows = self.warehouse.open().replace_partitions(table_name(context.asset_key), obj, columns, keys)
        if len(keys) > 1:  # output metadata lands on every partition's event: the run's totals go to its log
            context.log.info(f"{rows} rows written to {table_name(context.asset_key)} for {len(keys)} partitions")
        else:
            context.add_output_metadata({"rows_written": rows, "table": table_name(context.asset_key)})

    def load_input(self, context: InputContext) -> pd.DataFrame:
        name = table_name(context.asset_key)
        warehouse = self.warehouse.open()
        columns = list((context.upstream_output.definition_metadata or {}).get("partition_columns", []))
        if not (context.has_asset_partitions and columns):
            return warehouse.read(name)
        wanted = _partition_tuples(context.asset_partition_keys, columns)
        where = {c: sorted({t[i] for t in wanted}) for i, c in enumerate(columns)}
        frame = warehouse.read(name, where)
        if len(columns) > 1 and len(frame):
            # IN-lists select a rectangle; keep exactly the partitions asked for.
            index = pd.MultiIndex.from_frame(frame[columns].astype(str))
            frame = frame[index.isin([tuple(map(str, t)) for t in wanted])].reset_index(drop=True)
        return frame


class LedgerResource(ConfigurableResource):
    """The ledger of every decision, in the warehouse's database."""

    warehouse: WarehouseResource

    def open(self) -> Ledger:
        return Ledger(self.warehouse.open())

    def stage(self, entries, provenance: Provenance) -> int:
        """Decisions of the running run: they join the ledger when it completes (``settle_finished_runs``)."""
        return self.open().stage(entries, provenance)


class ProgressResource(ConfigurableResource):
    """How trial progress is shown: always in the run's log; with ``terminal_bar`` also as a bar
    on the terminal (the CLI turns it on unless --quiet)."""

    terminal_bar: bool = False
    # The study's job run (``<study>__run_study``) whose log follows the stages: each progress line
    # goes there too, so a person watching the job sees a long trials stage move.
    parent_run_id: str = ""


STEP_VALUES_TABLE = "dagster_step_values"


class StepValuesIOManager(ConfigurableIOManager):
    """Small values one step hands another (a chunk's bounds, a row count) as JSON rows in the
    warehouse, keyed by run, step, output and mapping key: workers on other machines share nothing
    but the databases, so Dagster's default (pickles under $DAGSTER_HOME) would not reach them."""

    warehouse: WarehouseResource

    @staticmethod
    def _key(identifier: list[str]) -> str:
        return "/".join(identifier)

    def handle_output(self, context: OutputContext, obj) -> None:
        key = self._key(context.get_identifier())
        row = pd.DataFrame({"key": [key], "value": [json.dumps(obj)]})
        self.warehouse.open().replace_partitions(STEP_VALUES_TABLE, row, ["key"], [(key,)])

    def load_input(self, context: InputContext):
        key = self._key(context.upstream_output.get_identifier())
        rows = self.warehouse.open().read(STEP_VALUES_TABLE, {"key": [key]})
        if rows.empty:
            raise RuntimeError(f"no value stored for {key} in {STEP_VALUES_TABLE}: re-execute the step that makes it")
        return json.loads(rows["value"].iloc[-1])


def study_resources(warehouse_url: str = "", *, terminal_bar: bool = False, parent_run_id: str = "") -> dict:
    """The resources every study's assets need, sharing one warehouse configuration."""
    warehouse = WarehouseResource(url=warehouse_url)
    return {"tables": WarehouseIOManager(warehouse=warehouse), "ledger": LedgerResource(warehouse=warehouse),
            "warehouse": warehouse,
            "progress": ProgressResource(terminal_bar=terminal_bar, parent_run_id=parent_run_id),
            "step_values": StepValuesIOManager(warehouse=warehouse)}
