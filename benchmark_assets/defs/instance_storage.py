"""A SQLite event log for the Dagster instance that records thousands of partitions cheaply.

Dagster's SQLite event log opens a new engine for every event (losing SQLAlchemy's compiled
statement cache), commits with a full fsync twice per asset event (run shard + index shard)
and reflects the schema with yet another engine on every asset event. A ratchet records two
events per partition for thousands of partitions, so that is where its time went (~30 ms per
partition measured here). This subclass keeps one pooled engine per shard (an LRU over run
shards), puts the shards in WAL mode with ``synchronous=NORMAL`` (durable across process
crashes; the last commits may be lost only on power loss), and remembers which tables exist.
Events, tables and files are exactly Dagster's, so any Dagster process can read the instance.

It also stores Dagster's event batches (the materializations of a ranged step: one per
partition) in one transaction per shard instead of one per event, and records a run's plan as one
event per asset (``planned_ranges``). Dagster
only hands a storage batches when ``DAGSTER_EVENT_BATCH_SIZE`` is set, so a process that opens
this storage sets it (unless the user did). Configure it in dagster.yaml (see the shipped one).

A run's page in the UI follows the run through a file watch on its shard; in WAL mode a commit
changes ``<run>.db-wal``, not ``<run>.db``, so the watch here follows both files (Dagster's
watches only the second and would show a running run as "Starting" until it ended).
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager

import yaml
from dagster import Field, StringSource
from sqlalchemy import create_engine
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.pool import QueuePool
from watchdog.events import PatternMatchingEventHandler
from watchdog.observers import Observer

from benchmark_assets.defs import rectangle_ranges
from benchmark_assets.defs.compat import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    ConfigurableClassData,
    DagsterSqliteStorage,
    DagsterStorage,
    SqlEventLogStorageTable,
    SqliteEventLogStorage,
    SqliteEventLogStorageWatchdog,
    SqliteRunStorage,
    SqliteScheduleStorage,
)
from benchmark_assets.defs.event_writes import store_in_batches, write_asset_events
from benchmark_assets.defs.planned_ranges import PlannedRanges
from benchmark_assets.extras import require

# The backfill daemon and the webserver load this module (dagster.yaml names it), never the definitions.
rectangle_ranges.install()

OPEN_RUN_SHARDS = 8
EVENT_BATCH_SIZE = "2000"


def _pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class PooledSqliteEventLogStorage(PlannedRanges, SqliteEventLogStorage):
    """Dagster's SQLite event log with pooled WAL connections per shard."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, object] = OrderedDict()
        self._known_tables: set[str] = set()
        self._probe_lock = threading.Lock()
        self._probe_engine = None
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        # Dagster's own from_config_value builds the base class by name; build ours.
        base_dir = config_value.get("base_dir") or os.path.join(
            os.environ.get("DAGSTER_HOME", "."), "history", "runs"
        )
        return cls(base_dir=base_dir, inst_data=inst_data)

    def _engine_for(self, shard: str):
        engine = self._engines.get(shard)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=8,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            sqlalchemy_event.listen(engine, "connect", _pragmas)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            self._engines[shard] = engine
            while len(self._engines) > OPEN_RUN_SHARDS:
                self._engines.popitem(last=False)[1].dispose()
        self._engines.move_to_end(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str):
        with self._db_lock:
            engine = self._engine_for(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        # Called while _db_lock is held, so it must not go through _connect.
        if table_name in self._known_tables:
            return True
        with self._probe_lock:
            if self._probe_engine is None:
                self._probe_engine = create_engine(
                    self.conn_string_for_shard("index"),
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
                )
            with self._probe_engine.connect() as conn:
                found = bool(self._probe_engine.dialect.has_table(conn, table_name))
        if found:
            self._known_tables.add(table_name)
        return found

    def store_event_batch(self, events) -> None:
        """Store a batch: consecutive asset events of one run go in one transaction per shard, the
        rest one by one."""
        store_in_batches(events, self._store_asset_events, self.store_event,
                         together=lambda first, event: first.run_id == event.run_id)

    def _store_asset_events(self, events: list) -> None:
        """What ``store_event`` does for each asset event, for many events of one run at once:
        the rows go to the run shard and are mirrored in the index shard with their tags, and the
        asset key table gets, per asset, the result of applying every event's values in order.

        Never leaves an event stored twice: if the run-shard write fails nothing of the group is
        stored and it goes the stock way, event by event; if the index write fails (it rolls
        back whole) only the mirroring is redone, event by event. Raising instead would make
        Dagster store the whole batch again, next to what had already been written."""
        if not events:
            return
        rows = [self._event_to_row(event) for event in events]
        try:
            with self.run_connection(events[0].run_id) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), rows)
        except Exception:  # noqa: BLE001 - nothing of this group was written
            for event in events:
                self.store_event(event)
            return
        try:
            self._mirror_in_index(events, rows)
        except Exception:  # noqa: BLE001 - the index transaction rolled back as a whole
            for event in events:
                with self.index_transaction() as conn:
                    event_id = conn.execute(self.prepare_insert_event(event)).inserted_primary_key[0]
                    self._store_asset_event_tags(conn, [event], [event_id])
                    self._store_asset_event(conn, event, event_id)

    def _mirror_in_index(self, events: list, rows: list[dict]) -> None:
        with self.index_transaction() as conn:
            write_asset_events(self, conn, events, rows)

    def wipe(self) -> None:
        self._dispose_engines()
        super().wipe()

    def delete_events(self, run_id: str) -> None:
        """Dagster's, then the run's shard file goes too (its rows are deleted, but a SQLite file
        keeps its size): deleting a run, in the UI or by `benchmark-assets prune`, frees its space."""
        super().delete_events(run_id)
        with self._db_lock:
            engine = self._engines.pop(run_id, None)
            if engine is not None:
                engine.dispose()
            path = self.path_for_shard(run_id)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path + suffix)
            self._initialized_dbs.discard(run_id)

    def _dispose_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
        self._known_tables.clear()

    def watch(self, run_id: str, cursor: str | None, callback) -> None:
        if not self._obs:
            self._obs = Observer()
            self._obs.start()
        watcher = _WalWatchdog(self, run_id, callback, cursor)
        self._watchers[run_id][callback] = (watcher, self._obs.schedule(watcher, self._base_dir, recursive=True))

    def dispose(self) -> None:
        super().dispose()  # stops the watches first: they read through the engines
        self._dispose_engines()
        if self._probe_engine is not None:
            self._probe_engine.dispose()


class _WalWatchdog(SqliteEventLogStorageWatchdog):
    """Dagster's watch of a run's shard, woken by its write-ahead log as well as by the file. A
    commit writes the log before it updates the shared-memory index (which makes no file event),
    so a read woken by the write may not see it yet: each wake reads again a moment later."""

    REREAD_SECONDS = 0.25

    def __init__(self, storage, run_id: str, callback, cursor: str | None):
        super().__init__(storage, run_id, callback, cursor)
        PatternMatchingEventHandler.__init__(self, patterns=[self._log_path, f"{self._log_path}-wal"])
        self._read_lock = threading.Lock()  # the observer's thread and the re-read timer
        self._reread: threading.Timer | None = None

    def _read(self) -> None:
        with self._read_lock:
            self._process_log()

    def _wake(self) -> None:
        self._read()
        with self._read_lock:
            if self._reread is None or not self._reread.is_alive():
                self._reread = threading.Timer(self.REREAD_SECONDS, self._read)
                self._reread.daemon = True
                self._reread.start()

    def on_modified(self, event) -> None:
        self._wake()

    def on_created(self, event) -> None:
        self._wake()


# -- one dagster.yaml, two deployments ------------------------------------------------------------

POSTGRES_URL_ENV = "BENCHMARK_ASSETS_POSTGRES_URL"


def postgres_url() -> str:
    """The shared PostgreSQL server a team deployment names ($BENCHMARK_ASSETS_POSTGRES_URL), or ''."""
    return os.environ.get(POSTGRES_URL_ENV, "").strip()


class StudyInstanceStorage(DagsterSqliteStorage):
    """The Dagster instance's storage (runs, events, schedules), chosen by the environment of each
    process that opens it, so the webserver, the daemon, the CLI and celery workers all agree:

    - ``$BENCHMARK_ASSETS_POSTGRES_URL`` set (``postgresql+psycopg2://user@host:5432/db``): Dagster's
      own PostgreSQL storage (dagster-postgres), shared by every machine of a team;
    - unset: SQLite under ``$DAGSTER_HOME`` (no server), with the pooled event log above.

    The psycopg2 URL form is deliberate: dagster-postgres's ``postgres_db:`` form picks psycopg 3
    under SQLAlchemy 2.1 and fails."""

    def __init__(self, base_dir: str, inst_data=None):  # SQLite only; see from_config_value
        self.base_dir = base_dir
        self._run_storage = SqliteRunStorage.from_local(os.path.join(base_dir, "history", ""))
        self._event_log_storage = PooledSqliteEventLogStorage(os.path.join(base_dir, "history", "runs", ""))
        self._schedule_storage = SqliteScheduleStorage.from_local(os.path.join(base_dir, "schedules"))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        url = postgres_url()
        if url:
            require("postgres", "$BENCHMARK_ASSETS_POSTGRES_URL (the instance on PostgreSQL)")
            from benchmark_assets.defs.postgres_storage import PooledPostgresStorage

            # Materialisations of a ranged run are written in batches (one insert per batch).
            os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
            # Its inst_data stays this class's: a process it is handed to (a run worker, a celery
            # worker) chooses again from its own environment.
            return PooledPostgresStorage(postgres_url=url, inst_data=inst_data)
        base_dir = config_value.get("base_dir") or os.environ.get("DAGSTER_HOME", ".")
        os.makedirs(base_dir, exist_ok=True)
        return cls(base_dir, inst_data=inst_data)

    @property
    def event_storage_data(self):
        return ConfigurableClassData(__name__, PooledSqliteEventLogStorage.__name__,
                                     yaml.dump({"base_dir": os.path.join(self.base_dir, "history", "runs", "")}))
