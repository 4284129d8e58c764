"""The instance on PostgreSQL ($BENCHMARK_ASSETS_POSTGRES_URL): dagster-postgres, with the event
log's two costs per partition removed.

dagster-postgres opens a new connection for every statement (a NullPool) and stores a batch of
events one by one unless they are all materialisations: the planned events a run records at its
start, one per partition, were most of a 3,600-partition ratchet's time in a profile taken by
hand (`benchmarks/scale.py --storage postgres` measures the whole: 11.0 ms per partition, now 2.7). This storage keeps a small connection pool per
process (made anew in a forked child) and writes each run of consecutive asset events in one
transaction, as the SQLite one does, and records a run's plan as one event per asset
(``planned_ranges``). Tables are exactly dagster-postgres's.
"""
from __future__ import annotations

import os
import weakref

from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import create_pg_engine
from sqlalchemy.pool import QueuePool

from benchmark_assets.defs.event_writes import store_in_batches, write_asset_events
from benchmark_assets.defs.planned_ranges import PlannedRanges

_ENGINES: weakref.WeakSet = weakref.WeakSet()


def _forget_pools_in_child() -> None:
    """A forked child must not use, nor close, the parent's pooled connections."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_pools_in_child)


def pooled_engine(url: str, token_provider=None):
    engine = create_pg_engine(url, token_provider, isolation_level="AUTOCOMMIT", poolclass=QueuePool, pool_size=2,
                              max_overflow=8, pool_pre_ping=True, pool_recycle=3600)
    _ENGINES.add(engine)
    return engine


class PooledPostgresEventLogStorage(PlannedRanges, PostgresEventLogStorage):
    """dagster-postgres's event log with pooled connections and asset events stored in batches."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, inst_data=None,
                 token_provider=None):
        super().__init__(postgres_url, should_autocreate_tables, inst_data=inst_data, token_provider=token_provider)
        self._engine.dispose()
        self._engine = pooled_engine(self.postgres_url, token_provider)

    def store_event_batch(self, events) -> None:
        """Consecutive asset events in one transaction each; the others the stock way."""
        store_in_batches(events, self._store_asset_events, self.store_event)

    def _store_asset_events(self, events: list) -> None:
        if not events:
            return
        rows = [self._event_to_row(event) for event in events]
        try:
            with self.index_transaction() as conn:
                write_asset_events(self, conn, events, rows)
        except Exception:  # noqa: BLE001 - the transaction rolled back whole: store them the stock way
            for event in events:
                self.store_event(event)


class PooledPostgresStorage(DagsterPostgresStorage):
    """dagster-postgres's storage whose event log is ``PooledPostgresEventLogStorage``."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, inst_data=None):
        super().__init__(postgres_url, should_autocreate_tables, inst_data=inst_data)
        self._event_log_storage.dispose()
        self._event_log_storage = PooledPostgresEventLogStorage(postgres_url, should_autocreate_tables)
