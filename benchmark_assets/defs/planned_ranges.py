"""One "planned" event per asset and run, not one per partition, with partitions still shown as
in progress or failed.

When a run starts, Dagster records what it intends to materialise. For a ranged run (a stage of
the CLI, a backfill of a rectangle) its stock storage writes one planned event per partition:
100,000 events for a 100,000-partition trials stage, about a seventh of that stage's time here
(``benchmarks/scale.py``). Dagster can instead write one event holding the run's partition
subset (``supports_partition_subset_in_asset_materialization_planned_events``), but then its
partition status (the grid's "in progress" and "failed") no longer sees the run's partitions:
it reads planned events partition by partition. This mixin turns the subset events on and
answers the two queries that read planned events per partition from both kinds of event, so the
grid shows what the stock storage shows (``defs/test_planned_ranges.py`` compares them).
"""
from __future__ import annotations

from dagster import DagsterEventType, deserialize_value

from benchmark_assets.defs.compat import PlannedMaterializationInfo, SqlEventLogStorageTable

PLANNED = DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value
MATERIALIZED = DagsterEventType.ASSET_MATERIALIZATION.value


class PlannedRanges:
    """For a subclass of Dagster's ``SqlEventLogStorage``: planned events by partition subset."""

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return True

    def _ranged_plans(self, asset_key, after_storage_id=None, *, newest_first: bool = False):
        """(storage id, run id, partition keys) of each planned event of ``asset_key`` that holds a
        subset (its ``partition`` column is empty), oldest first (``newest_first``: the other way)."""
        table = SqlEventLogStorageTable
        query = (table.select().with_only_columns(table.c.id, table.c.run_id, table.c.event)
                 .where(table.c.asset_key == asset_key.to_string(), table.c.dagster_event_type == PLANNED,
                        table.c.partition.is_(None)))
        if after_storage_id:
            query = query.where(table.c.id > after_storage_id)
        query = query.order_by(table.c.id.desc() if newest_first else table.c.id.asc())
        with self.index_connection() as conn:
            rows = conn.execute(query).fetchall()
        for storage_id, run_id, text in rows:
            subset = deserialize_value(text).dagster_event.event_specific_data.partitions_subset
            if subset is not None:  # an unpartitioned asset's plan
                yield storage_id, run_id, set(subset.get_partition_keys())

    def get_latest_asset_partition_materialization_attempts_without_materializations(self, asset_key,
                                                                                    after_storage_id=None):
        """Per partition whose latest plan (per partition or in a run's subset) has no later
        materialisation: (run id, storage id) of that plan, as Dagster's query answers."""
        attempts = dict(super().get_latest_asset_partition_materialization_attempts_without_materializations(
            asset_key, after_storage_id))
        latest: dict[str, tuple[str, int]] = {}
        for storage_id, run_id, keys in self._ranged_plans(asset_key, after_storage_id):
            latest.update(dict.fromkeys(keys, (run_id, storage_id)))
        if not latest:
            return attempts
        table = SqlEventLogStorageTable
        earliest = min(storage_id for _, storage_id in latest.values())
        query = (table.select().with_only_columns(table.c.partition, table.c.id.label("id"))
                 .where(table.c.asset_key == asset_key.to_string(), table.c.dagster_event_type == MATERIALIZED,
                        table.c.id > earliest))
        materialized: dict[str, int] = {}
        with self.index_connection() as conn:
            for partition, storage_id in conn.execute(query):
                materialized[partition] = max(storage_id, materialized.get(partition, 0))
        for key, (run_id, storage_id) in latest.items():
            later_plan = key in attempts and attempts[key][1] > storage_id
            if materialized.get(key, 0) > storage_id or later_plan:
                continue
            attempts[key] = (run_id, storage_id)
        return attempts

    def get_latest_planned_materialization_info(self, asset_key, partition=None):
        """The latest plan of ``asset_key`` (of ``partition``: per partition or in a subset)."""
        info = super().get_latest_planned_materialization_info(asset_key, partition)
        if partition is None:
            return info
        for storage_id, run_id, keys in self._ranged_plans(asset_key, info.storage_id if info else None,
                                                           newest_first=True):
            if partition in keys:
                return PlannedMaterializationInfo(storage_id=storage_id, run_id=run_id)
        return info
