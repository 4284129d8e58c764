"""The results warehouse: one SQL table per asset, partitions replaced atomically, any SQLAlchemy URL."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from benchmark_assets.extras import require

_ENGINES: dict[str, sa.Engine] = {}


# On a team's shared PostgreSQL server the warehouse has a schema of its own: Dagster's tables and
# Optuna's (each with its own ``alembic_version``) must not meet in one namespace.
SHARED_SCHEMA = "benchmark_assets"


def default_url() -> str:
    """$BENCHMARK_ASSETS_WAREHOUSE_URL; else, in a team deployment ($BENCHMARK_ASSETS_POSTGRES_URL,
    the Dagster instance's server), schema ``benchmark_assets`` of that database; else a SQLite
    file under $DAGSTER_HOME (embedded, no server)."""
    url = os.environ.get("BENCHMARK_ASSETS_WAREHOUSE_URL")
    if url:
        return url
    shared = os.environ.get("BENCHMARK_ASSETS_POSTGRES_URL", "").strip()
    if shared:
        return with_search_path(shared, SHARED_SCHEMA)
    home = Path(os.environ.get("DAGSTER_HOME", ".dagster_home"))
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home.resolve() / 'benchmark.db'}"


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections look up tables in ``schema`` first (libpq's ``options``), keeping
    any options it had and its password (``str(URL)`` would mask it as ***)."""
    parsed = sa.make_url(url)
    options = parsed.query.get("options", "")
    options = options if isinstance(options, str) else " ".join(options)
    if "search_path" not in options:
        options = f"{options} -csearch_path={schema}".strip()
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def _column_type(series: pd.Series) -> sa.types.TypeEngine:
    if pd.api.types.is_bool_dtype(series):
        return sa.Boolean()
    if pd.api.types.is_integer_dtype(series):
        return sa.BigInteger()
    if pd.api.types.is_float_dtype(series):
        return sa.Float(precision=53)
    if pd.api.types.is_datetime64_any_dtype(series):
        return sa.DateTime(timezone=True)
    return sa.Text()


def _records(frame: pd.DataFrame) -> list[dict]:
    clean = frame.astype(object).where(pd.notna(frame), None)
    out = clean.to_dict(orient="records")
    for row in out:
        for key, value in row.items():
            if isinstance(value, np.generic):
                row[key] = value.item()
    return out


class Warehouse:
    """Reads and writes asset tables. Writes of a partition set happen in one transaction:
    the old rows of exactly those partitions go, the new rows come, or nothing changes."""

    def __init__(self, url: str | None = None):
        self.url = url or default_url()
        engine = _ENGINES.get(self.url)
        if engine is None:
            url = sa.make_url(self.url)
            if url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg2":
                require("postgres", "a PostgreSQL warehouse", modules=("psycopg2",))  # the driver it names
            engine = sa.create_engine(self.url, future=True)
            if engine.dialect.name == "sqlite":
                sa.event.listen(engine, "connect", _sqlite_pragmas)
                sa.event.listen(engine, "begin", _sqlite_begin)
            elif engine.dialect.name == "postgresql":
                _create_search_path_schema(engine)
            _ENGINES[self.url] = engine
        self.engine = engine

    def _table(self, name: str, frame: pd.DataFrame, conn, key_columns: Sequence[str]) -> sa.Table:
        if conn.dialect.name == "postgresql":
            # Two writers creating or widening one table at once (measuring steps on several
            # workers start together) would fail on "already exists": one at a time, per table,
            # until the transaction ends. SQLite's BEGIN IMMEDIATE already serialises writers.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": f"warehouse:{name}"})
        metadata = sa.MetaData()
        inspector = sa.inspect(conn)
        if not inspector.has_table(name):
            columns = [sa.Column(col, _column_type(frame[col])) for col in frame.columns]
            table = sa.Table(name, metadata, *columns)
            if key_columns:
                sa.Index(f"ix_{name}_partition", *[table.c[c] for c in key_columns])
            metadata.create_all(conn)
            return table
        table = sa.Table(name, metadata, autoload_with=conn)
        for col in frame.columns:
            if col not in table.c:
                # New metric from a target: widen the table rather than lose the column.
                kind = _column_type(frame[col]).compile(dialect=conn.dialect)
                conn.execute(sa.text(f'ALTER TABLE "{name}" ADD COLUMN "{col}" {kind}'))
        if any(col not in table.c for col in frame.columns):
            metadata = sa.MetaData()
            table = sa.Table(name, metadata, autoload_with=conn)
        return table

    @contextlib.contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        """A connection in a write transaction. On SQLite it takes the write lock when it begins
        (BEGIN IMMEDIATE), so two writers queue on the busy timeout instead of one failing with
        "database is locked" when it upgrades a read snapshot another writer has made stale."""
        with self.engine.connect() as conn:
            conn.execution_options(benchmark_assets_write=True)
            with conn.begin():
                yield conn

    def replace_partitions(
        self, name: str, frame: pd.DataFrame, key_columns: Sequence[str], partition_keys: Sequence[tuple], *,
        conn=None,
    ) -> int:
        """Replace the rows of ``partition_keys`` (tuples over ``key_columns``) with ``frame``, in
        its own transaction or in the caller's ``conn``."""
        if conn is None:
            with self.writing() as own:
                return self.replace_partitions(name, frame, key_columns, partition_keys, conn=own)
        table = self._table(name, frame, conn, key_columns)
        if key_columns:
            conditions = [table.c[c] == sa.bindparam(f"k_{c}") for c in key_columns]
            delete = table.delete().where(sa.and_(*conditions))
            params = [
                {f"k_{c}": _as_column_value(table.c[c], v) for c, v in zip(key_columns, key)}
                for key in partition_keys
            ]
            if params:
                conn.execute(delete, params)
        else:
            conn.execute(table.delete())
        if len(frame):
            conn.execute(table.insert(), _records(frame))
        return len(frame)

    def append(self, name: str, frame: pd.DataFrame, *, conn=None) -> int:
        """Add ``frame``'s rows to table ``name`` (created from the frame's types if missing), in
        its own transaction or in the caller's ``conn``."""
        if conn is None:
            with self.writing() as own:
                return self.append(name, frame, conn=own)
        table = self._table(name, frame, conn, [])
        if len(frame):
            conn.execute(table.insert(), _records(frame))
        return len(frame)

    def read(self, name: str, where: dict[str, Sequence] | None = None) -> pd.DataFrame:
        """Rows of a table, optionally filtered by ``column IN values``; empty frame if no table."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(name):
                return pd.DataFrame()
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            query = sa.select(table)
            for column, values in (where or {}).items():
                values = [_as_column_value(table.c[column], v) for v in values]
                query = query.where(table.c[column].in_(values))
            frame = pd.read_sql(query, conn)
        # A float column whose rows are all NULL comes back as objects (None); keep it float (NaN).
        for column in table.c:
            if isinstance(column.type, sa.Float) and frame[column.name].dtype == object:
                frame[column.name] = pd.to_numeric(frame[column.name], errors="coerce").astype(float)
        return frame

    def has_table(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return sa.inspect(conn).has_table(name)


def _as_column_value(column: sa.Column, value):
    if isinstance(column.type, sa.Integer | sa.BigInteger):
        return int(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _create_search_path_schema(engine: sa.Engine) -> None:
    """A URL whose ``options`` set a search_path (the shared server's ``benchmark_assets`` schema)
    gets its first schema created on first use, so that tables land in it, not in the next one."""
    with engine.begin() as conn:
        first = conn.exec_driver_sql("SHOW search_path").scalar().split(",")[0].strip().strip('"')
        if not first or first == "$user":
            return
        # CREATE SCHEMA IF NOT EXISTS is not safe against a second process doing the same at once
        # (a unique violation): one at a time, per schema, until this transaction ends.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": f"warehouse-schema:{first}"})
        exists = conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": first}).first()
        if exists is None:
            try:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{first}"')
            except sa.exc.ProgrammingError as error:
                raise RuntimeError(f"the warehouse schema {first!r} does not exist and this user may not create it "
                                   f"({error.orig}); create it once (CREATE SCHEMA {first}) or set "
                                   "BENCHMARK_ASSETS_WAREHOUSE_URL to a database you may write") from None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # The sqlite3 module opens transactions itself only before DML, so a CREATE or ALTER TABLE
    # would commit on its own; with its own handling off, SQLAlchemy's "begin" below makes every
    # transaction cover DDL too (SQLAlchemy's documented pysqlite recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("benchmark_assets_write") else "BEGIN")
