"""Every use of Dagster's private API (``dagster._...``), in one place: what the project needs that
Dagster has no public call for. Dagster is pinned below 1.14 (pyproject); each item names the test
that fails if an upgrade changes what it relies on. No other module imports ``dagster._``
(``test_layers.test_only_compat_imports_dagster_internals``).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable

from dagster._core.definitions.partitions.definition.multi import MultiPartitionsDefinition
from dagster._core.definitions.partitions.partition_key_range import PartitionKeyRange
from dagster._core.definitions.partitions.subset.default import DefaultPartitionsSubset
from dagster._core.definitions.partitions.utils.multi import MultiPartitionKey

# A job rebuilt by name in each worker process (scale-out): test_scale_out.
from dagster._core.definitions.reconstruct import build_reconstructable_job

# The instance's storage classes that instance_storage extends: defs/test_instance_storage.
from dagster._core.events import ASSET_EVENTS

# Whether a trials run or a backfill is in flight (the inbox sensor's retries): test_inbox.
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

# A plan of one partition, answered from a run's subset event as well: test_planned_ranges.
from dagster._core.storage.event_log.base import PlannedMaterializationInfo
from dagster._core.storage.event_log.schema import AssetKeyTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
    SqliteEventLogStorageWatchdog,
)

# The key-value store's rows by prefix, and their removal (retention of sensor states): test_retention.
from dagster._core.storage.runs.schema import KeyValueStoreTable
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

# A ranged run's partition range, as the CLI's stages tag it: test_rectangle_ranges.
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster._serdes import ConfigurableClassData


def add_partition_metadata(context, asset_key, by_partition: dict) -> None:
    """``context.add_asset_metadata(metadata, partition_key=...)`` for many partitions in one step:
    the public call lists the run's partitions and copies all metadata added so far on every call,
    which took 3 minutes for the ratchet's 3,600 trial partitions. Guarded by
    ``test_each_trial_partition_shows_its_own_rows``, which reads the events."""
    from dagster._core.execution.context.metadata_logging import AssetMetadataHandle, OutputMetadataAccumulator

    step = context.get_step_execution_context()
    merged = dict(step._metadata_accumulator.per_output_metadata)
    for partition_key, metadata in by_partition.items():
        handle = AssetMetadataHandle(asset_key=asset_key, partition_key=partition_key)
        merged[handle] = {**merged.get(handle, {}), **metadata}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=merged)


class GridPartitions(MultiPartitionsDefinition):
    """Dagster's two-dimensional partitions, each key built once.

    Dagster builds every ``MultiPartitionKey`` anew whenever it lists a grid's keys (the
    ``lru_cache`` on ``_get_partition_keys`` is keyed by the current time, so it hits only within
    one partition-loading context, where it can answer with keys since deleted), lists the keys of
    a range, or parses one: about 22 times per trial partition in one run of a study, 1.5 s per
    listing at 100,000 partitions. This keeps the grid of the dimensions' current keys (rebuilt
    whenever either dimension's keys differ) and answers those three calls from it, with the keys
    Dagster would build, in its order. Overrides Dagster's private ``_get_partition_keys``:
    ``defs/test_partitions.py`` compares every answer with Dagster's own. The grid is about 0.8 KB
    per partition, held while the definition lives; it is not pickled."""

    def __init__(self, partitions_defs):
        super().__init__(partitions_defs)
        # (keys per dimension, their product in Dagster's order, the valid ones, position per dimension)
        self._grid_state: tuple | None = None
        self._built: dict[tuple[str, str], MultiPartitionKey] = {}  # (first, second) -> the grid's key

    def __getstate__(self):
        return {**self.__dict__, "_grid_state": None, "_built": {}}

    def _grid(self) -> tuple:
        dimensions = tuple(tuple(d.partitions_def.get_partition_keys()) for d in self.partitions_defs)
        state = self._grid_state
        if state is None or state[0] != dimensions:
            first, second = (d.name for d in self.partitions_defs)
            old, built, product = self._built, {}, []
            for pair in itertools.product(*dimensions):
                key = old.get(pair)
                if key is None:
                    key = MultiPartitionKey({first: pair[0], second: pair[1]})
                built[pair] = key
                product.append(key)
            valid = [key for key in product if self.is_valid_key_format(key)]
            positions = tuple({k: i for i, k in enumerate(keys)} for keys in dimensions)
            # A key with the delimiter in it is never handed out by parsing (Dagster refuses it).
            self._built = {pair: key for pair, key in built.items() if "|" not in pair[0] + pair[1]}
            state = self._grid_state = (dimensions, product, valid, positions)
        return state

    def _get_partition_keys(self, _current_time) -> list[MultiPartitionKey]:
        return list(self._grid()[2])

    def get_partition_keys_in_range(self, partition_key_range, dynamic_partitions_store=None):
        from dagster import partition_loading_context

        with partition_loading_context(dynamic_partitions_store=dynamic_partitions_store):
            dimensions, product, _, positions = self._grid()
            start = self.get_partition_key_from_str(partition_key_range.start).keys_by_dimension
            end = self.get_partition_key_from_str(partition_key_range.end).keys_by_dimension
            try:
                (a0, a1), (b0, b1) = ((where[start[d.name]], where[end[d.name]])
                                      for d, where in zip(self.partitions_defs, positions))
            except KeyError:  # a key the dimensions do not hold: Dagster's own error
                return super().get_partition_keys_in_range(partition_key_range, dynamic_partitions_store)
            width = len(dimensions[1])
            return [product[i * width + j] for i in range(a0, a1 + 1) for j in range(b0, b1 + 1)]

    def get_partition_key_from_str(self, partition_key_str: str) -> MultiPartitionKey:
        parts = partition_key_str.split("|") if isinstance(partition_key_str, str) else ()
        key = self._built.get((parts[0], parts[1])) if len(parts) == 2 else None
        return key if key is not None else super().get_partition_key_from_str(partition_key_str)


def check_output_names(check_specs, asset_keys) -> dict:
    """The output name of each check of a graph-backed asset (the fanned-out trials), as Dagster's
    ``@asset`` assigns them: test_fan_out."""
    from dagster._core.definitions.decorators.decorator_assets_definition_builder import (
        validate_and_assign_output_names_to_check_specs,
    )

    return validate_and_assign_output_names_to_check_specs(check_specs, list(asset_keys))


def install_rectangle_ranges(grid_ranges: Callable) -> None:
    """Make ``DefaultPartitionsSubset.get_partition_key_ranges`` return ``grid_ranges(keys,
    partitions_def)`` for a two-dimensional grid without a time dimension (None: Dagster's own
    ranges), so a backfill of a trials grid runs one run per rectangle (``rectangle_ranges``).
    Idempotent. Guarded by test_rectangle_ranges, through Dagster's own run-request builder."""
    dagster_ranges = getattr(DefaultPartitionsSubset.get_partition_key_ranges, "dagster_ranges",
                             DefaultPartitionsSubset.get_partition_key_ranges)

    def get_partition_key_ranges(self, partitions_def):
        if isinstance(partitions_def, MultiPartitionsDefinition) and not partitions_def.has_time_window_dimension:
            ranges = grid_ranges(self.subset, partitions_def)
            if ranges is not None:
                return ranges
        return dagster_ranges(self, partitions_def)

    get_partition_key_ranges.dagster_ranges = dagster_ranges
    DefaultPartitionsSubset.get_partition_key_ranges = get_partition_key_ranges


def cursor_keys(instance, prefix: str) -> list[str]:
    """Keys of the instance's key-value store that start with ``prefix``."""
    import sqlalchemy as sa

    with instance.run_storage.connect() as conn:
        rows = conn.execute(sa.select(KeyValueStoreTable.c.key).where(KeyValueStoreTable.c.key.startswith(prefix)))
        return [row[0] for row in rows]


def delete_cursor_values(instance, keys: list[str]) -> None:
    """Remove ``keys`` from the instance's key-value store (Dagster has set and get, no delete)."""
    if keys:
        with instance.run_storage.connect() as conn:
            conn.execute(KeyValueStoreTable.delete().where(KeyValueStoreTable.c.key.in_(keys)))


__all__ = ["ASSET_EVENTS", "ASSET_PARTITION_RANGE_END_TAG", "ASSET_PARTITION_RANGE_START_TAG", "IN_PROGRESS_RUN_STATUSES",
           "SQLITE_BUSY_TIMEOUT_SECONDS", "AssetKeyTable", "BulkActionStatus", "ConfigurableClassData",
           "DagsterSqliteStorage", "DagsterStorage", "GridPartitions", "MultiPartitionKey", "PartitionKeyRange", "PlannedMaterializationInfo", "SqlEventLogStorageTable",
           "SqliteEventLogStorage", "SqliteEventLogStorageWatchdog", "SqliteRunStorage", "SqliteScheduleStorage",
           "add_partition_metadata", "build_reconstructable_job", "check_output_names", "cursor_keys", "delete_cursor_values", "install_rectangle_ranges"]
