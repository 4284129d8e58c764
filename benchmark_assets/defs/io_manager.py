"""Dagster IO manager over the warehouse: a ranged run's whole output is one idempotent write."""
from __future__ import annotations

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, MultiPartitionKey, OutputContext

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


class WarehouseIOManager(ConfigurableIOManager):
    """Stores DataFrames in ``<study>__<asset>`` tables; rematerialising a partition replaces its rows."""

    url: str = ""  # empty: $BENCHMARK_ASSETS_WAREHOUSE_URL or SQLite under $DAGSTER_HOME

    def _warehouse(self) -> Warehouse:
        return Warehouse(self.url or None)

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        columns = list(context.definition_metadata.get("partition_columns", []))
        keys = _partition_tuples(context.asset_partition_keys, columns) if context.has_asset_partitions else []
        rows = self._warehouse().replace_partitions(table_name(context.asset_key), obj, columns, keys)
        context.add_output_metadata({"rows_written": rows, "table": table_name(context.asset_key)})

    def load_input(self, context: InputContext) -> pd.DataFrame:
        name = table_name(context.asset_key)
        columns = list((context.upstream_output.definition_metadata or {}).get("partition_columns", []))
        if not (context.has_asset_partitions and columns):
            return self._warehouse().read(name)
        wanted = _partition_tuples(context.asset_partition_keys, columns)
        where = {c: sorted({t[i] for t in wanted}) for i, c in enumerate(columns)}
        frame = self._warehouse().read(name, where)
        if len(columns) > 1 and len(frame):
            # IN-lists select a rectangle; keep exactly the partitions asked for.
            index = pd.MultiIndex.from_frame(frame[columns].astype(str))
            frame = frame[index.isin([tuple(map(str, t)) for t in wanted])].reset_index(drop=True)
        return frame


def study_resources() -> dict:
    """The resources every study's assets need."""
    return {"warehouse": WarehouseIOManager()}
