import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.conftest import POSTGRES_URL, service_unavailable


def frame(point: str, seeds, value: float) -> pd.DataFrame:
    return pd.DataFrame({"sweep_point": point, "seed_id": list(seeds), "score": value, "error": ""})


def exercise(warehouse: Warehouse, table: str) -> None:
    keys = ["sweep_point", "seed_id"]
    warehouse.replace_partitions(table, frame("a", range(5), 1.0), keys, [("a", s) for s in range(5)])
    warehouse.replace_partitions(table, frame("b", range(5), 2.0), keys, [("b", s) for s in range(5)])
    # Rewriting partitions replaces exactly their rows.
    warehouse.replace_partitions(table, frame("a", range(2), 3.0), keys, [("a", s) for s in range(2)])
    data = warehouse.read(table)
    assert len(data) == 10 and not data.duplicated(keys).any()
    assert sorted(data.loc[data["sweep_point"] == "a", "score"]) == [1.0, 1.0, 1.0, 3.0, 3.0]
    # A new metric column widens the table instead of failing.
    extra = frame("c", [0], 4.0).assign(latency=0.5)
    warehouse.replace_partitions(table, extra, keys, [("c", 0)])
    assert warehouse.read(table, {"sweep_point": ["c"]})["latency"].tolist() == [0.5]
    # A failing write changes nothing: the delete of the partition is rolled back.
    bad = frame("b", range(5), 9.0).assign(score=[{"not": "a number"}] * 5)
    with pytest.raises(sa.exc.SQLAlchemyError):
        warehouse.replace_partitions(table, bad, keys, [("b", s) for s in range(5)])
    assert sorted(warehouse.read(table, {"sweep_point": ["b"]})["score"]) == [2.0] * 5


def test_sqlite_warehouse_replaces_partitions_atomically(tmp_path):
    exercise(Warehouse(f"sqlite:///{tmp_path / 'w.db'}"), "t")


def test_postgres_warehouse_replaces_partitions_atomically():
    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect():
            pass
    except Exception as error:  # noqa: BLE001
        service_unavailable(f"PostgreSQL at {POSTGRES_URL} unreachable: {error.__class__.__name__}")
    table = f"test_{uuid.uuid4().hex[:8]}"
    try:
        exercise(Warehouse(POSTGRES_URL), table)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))


def test_an_all_null_float_column_reads_back_as_float_nan(dagster_home):
    import numpy as np
    import pandas as pd

    from benchmark_assets.warehouse import Warehouse

    warehouse = Warehouse()
    warehouse.replace_partitions("nulls", pd.DataFrame({"k": ["a"], "x": [1.0]}), ["k"], [("a",)])
    warehouse.replace_partitions("nulls", pd.DataFrame({"k": ["a"], "x": [np.nan]}), ["k"], [("a",)])
    frame = warehouse.read("nulls")
    assert frame["x"].dtype == float and np.isnan(frame["x"].iloc[0])
