"""The pooled, batching SQLite event log records exactly what Dagster's stock one records."""

import pytest
from dagster import (
    AssetKey,
    BackfillPolicy,
    DagsterEventType,
    EventRecordsFilter,
    StaticPartitionsDefinition,
    asset,
    materialize,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from benchmark_assets.defs.instance_storage import PooledSqliteEventLogStorage
from benchmark_assets_tests.conftest import ROOT, instance_at

KEYS = [f"p{i:03d}" for i in range(120)]
PARTITIONS = StaticPartitionsDefinition(KEYS)


@asset(partitions_def=PARTITIONS, backfill_policy=BackfillPolicy.single_run())
def numbers(context) -> None:
    context.log.info(f"{len(context.partition_keys)} partitions")


def _ranged(instance, first: str, last: str):
    tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
    return materialize([numbers], instance=instance, tags=tags)


def _recorded(instance, runs) -> dict:
    key = AssetKey("numbers")
    counts = {
        DagsterEventType.ASSET_MATERIALIZATION: len(instance.fetch_materializations(key, limit=1000).records),
        # the storage's own query: DagsterInstance.fetch_planned_materializations is deprecated
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED: len(instance.event_log_storage.get_event_records(
            EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION_PLANNED, asset_key=key), limit=1000)),
    }
    latest = instance.get_latest_materialization_event(key)
    entry = instance.get_asset_records([key])[0].asset_entry
    run_index = {run.run_id: i for i, run in enumerate(runs)}
    return {
        "materialized": set(instance.get_materialized_partitions(key)),
        "counts": counts,
        "latest_partition": latest.dagster_event.partition,
        "latest_run": run_index[latest.run_id],
        "entry_last_run": run_index[entry.last_run_id],
        "entry_last_partition": entry.last_materialization.dagster_event.partition,
        "run_events": [len(instance.all_logs(run.run_id)) for run in runs],
        "latest_run_by_partition": {
            record.partition_key: run_index[record.run_id]
            for record in instance.fetch_materializations(key, limit=1000, ascending=True).records
        },
    }


def test_batched_writes_record_the_same_history_as_dagsters_stock_event_log(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "50")  # several batches per run, and a partial last one
    batches = []
    original = PooledSqliteEventLogStorage._store_asset_events

    def spy(self, events):
        batches.append(len(events))
        return original(self, events)

    monkeypatch.setattr(PooledSqliteEventLogStorage, "_store_asset_events", spy)
    recorded = {}
    for label, yaml_text in (("stock", "telemetry:\n  enabled: false\n"), ("pooled", None)):
        with instance_at(tmp_path / label, yaml_text, monkeypatch) as instance:
            assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage) == (label == "pooled")
            runs = [_ranged(instance, KEYS[0], KEYS[-1]), _ranged(instance, KEYS[10], KEYS[29])]
            assert all(run.success for run in runs)
            recorded[label] = _recorded(instance, runs)

    # The same history, but for the plans: one event per ranged run here (test_planned_ranges).
    planned = {label: r["counts"].pop(DagsterEventType.ASSET_MATERIALIZATION_PLANNED) for label, r in recorded.items()}
    assert planned == {"stock": 140, "pooled": 2}
    pooled_events, stock_events = recorded["pooled"].pop("run_events"), recorded["stock"].pop("run_events")
    assert [pooled_events[0] + 119, pooled_events[1] + 19] == stock_events
    assert recorded["pooled"] == recorded["stock"]
    pooled = recorded["pooled"]
    assert pooled["materialized"] == set(KEYS)
    assert pooled["counts"][DagsterEventType.ASSET_MATERIALIZATION] == 140
    assert pooled["latest_run"] == pooled["entry_last_run"] == 1
    assert pooled["latest_run_by_partition"][KEYS[10]] == 1 and pooled["latest_run_by_partition"][KEYS[0]] == 0
    # The events really went through the batch path, in batches of the configured size.
    assert max(batches) == 50 and sum(batches) == 140  # a run's one planned event goes the stock way


def test_on_postgresql_a_run_records_the_same_history_through_pooled_batches(tmp_path, monkeypatch,
                                                                              postgres_database):
    """The team deployment's event log: dagster-postgres, with a connection pool and each run of
    asset events (the planned ones a run records first, the materialisations) in one transaction."""
    from benchmark_assets.defs.event_writes import is_asset_event
    from benchmark_assets.defs.postgres_storage import PooledPostgresEventLogStorage

    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "50")
    monkeypatch.setenv("BENCHMARK_ASSETS_POSTGRES_URL", postgres_database)
    batches = []
    original = PooledPostgresEventLogStorage._store_asset_events
    monkeypatch.setattr(PooledPostgresEventLogStorage, "_store_asset_events",
                        lambda self, events: (batches.append(len(events)), original(self, events))[1])
    # materialisations stored the stock way (the fallback after a failed batch): none; a run's one
    # planned event goes that way
    one_by_one = []
    stock = PooledPostgresEventLogStorage.store_event
    monkeypatch.setattr(PooledPostgresEventLogStorage, "store_event",
                        lambda self, event: (one_by_one.append(event) if is_asset_event(event) else None,
                                             stock(self, event))[1])
    with instance_at(tmp_path / "pg", None, monkeypatch) as instance:
        assert isinstance(instance.event_log_storage, PooledPostgresEventLogStorage)
        assert instance.event_log_storage._engine.pool.__class__.__name__ == "QueuePool"
        runs = [_ranged(instance, KEYS[0], KEYS[-1]), _ranged(instance, KEYS[10], KEYS[29])]
        assert all(run.success for run in runs)
        recorded = _recorded(instance, runs)
    assert recorded["materialized"] == set(KEYS)
    assert recorded["counts"] == {DagsterEventType.ASSET_MATERIALIZATION: 140,
                                  DagsterEventType.ASSET_MATERIALIZATION_PLANNED: 2}  # one per ranged run
    assert recorded["latest_run"] == recorded["entry_last_run"] == 1
    assert recorded["entry_last_partition"] == recorded["latest_partition"]
    assert recorded["latest_run_by_partition"][KEYS[10]] == 1 and recorded["latest_run_by_partition"][KEYS[0]] == 0
    assert max(batches) == 50 and sum(batches) == 140  # the materialisations, in batches
    assert [e.dagster_event_type for e in one_by_one] == [DagsterEventType.ASSET_MATERIALIZATION_PLANNED] * 2


def test_opening_the_pooled_storage_turns_on_dagsters_event_batching(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    with instance_at(tmp_path / "home", None, monkeypatch):
        import os

        assert int(os.environ["DAGSTER_EVENT_BATCH_SIZE"]) >= 1000


@pytest.mark.parametrize("size", ["1"])
def test_a_user_setting_of_the_batch_size_is_kept(tmp_path, monkeypatch, size):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", size)
    with instance_at(tmp_path / "home", None, monkeypatch) as instance:
        import os

        assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == size
        assert _ranged(instance, KEYS[0], KEYS[4]).success
        assert set(instance.get_materialized_partitions(AssetKey("numbers"))) == set(KEYS[:5])


@pytest.mark.parametrize("failing", ["index", "run"])
def test_a_failed_batch_write_is_redone_event_by_event_without_duplicates(tmp_path, monkeypatch, failing):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "50")
    calls = {"n": 0, "batch": False}
    batch = PooledSqliteEventLogStorage._store_asset_events

    def in_a_batch(self, events):
        calls["batch"] = True
        try:
            return batch(self, events)
        finally:
            calls["batch"] = False

    monkeypatch.setattr(PooledSqliteEventLogStorage, "_store_asset_events", in_a_batch)
    name = "_get_asset_entry_values" if failing == "index" else "run_connection"
    original = getattr(PooledSqliteEventLogStorage, name)

    def flaky(self, *args, **kwargs):
        # index: fails inside the index transaction of the first batch; run: the first batch's
        # run-shard write fails before anything is written
        if calls["batch"]:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("simulated: database is locked")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PooledSqliteEventLogStorage, name, flaky)
    with instance_at(tmp_path / "home", None, monkeypatch) as instance:
        run = _ranged(instance, KEYS[0], KEYS[-1])
        assert run.success and calls["n"] > 1
        recorded = _recorded(instance, [run])
        planned = [e for e in instance.all_logs(run.run_id)
                   if e.dagster_event and e.dagster_event.event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED]
    assert len(planned) == 1
    assert recorded["counts"] == {DagsterEventType.ASSET_MATERIALIZATION: len(KEYS),
                                  DagsterEventType.ASSET_MATERIALIZATION_PLANNED: 1}
    assert recorded["materialized"] == set(KEYS) and recorded["entry_last_run"] == 0


WATCHED_RUN = """
import pathlib, sys, time
from dagster import DagsterInstance, job, op

flag = pathlib.Path(sys.argv[2])

@op
def wait_for_the_watcher(context):
    time.sleep(1)  # after the watcher has read what creating the shard wrote (that wakes any watch)
    context.log.info("waiting for the watcher")
    deadline = time.monotonic() + 60
    while not flag.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("nobody watching the run saw its log line while it ran")
        time.sleep(0.05)

@job
def watched():
    wait_for_the_watcher()

with DagsterInstance.get() as instance:
    result = watched.execute_in_process(instance=instance, run_id=sys.argv[1], raise_on_error=False)
sys.exit(0 if result.success else 1)
"""


def test_a_run_page_follows_a_running_run_written_by_another_process(tmp_path, monkeypatch):
    """The UI's run page watches the run's shard: the events another process (the run worker)
    commits reach it while the run runs, not only when the run ends and its connection closes."""
    import subprocess
    import sys
    import uuid

    instance = instance_at(tmp_path / "home", None, monkeypatch)
    run_id, flag, seen = str(uuid.uuid4()), tmp_path / "seen", []

    def on_event(entry, _cursor):
        seen.append(entry.user_message)
        if entry.user_message == "waiting for the watcher":
            flag.touch()

    instance.watch_event_logs(run_id, None, on_event)
    try:
        worker = subprocess.run([sys.executable, "-c", WATCHED_RUN, run_id, str(flag)], cwd=ROOT,
                                capture_output=True, text=True, timeout=180)
    finally:
        instance.end_watch_event_logs(run_id, on_event)
        instance.dispose()
    assert worker.returncode == 0, worker.stderr[-2000:]
    assert "waiting for the watcher" in seen


def test_a_run_on_a_stock_instance_says_what_it_costs_and_how_to_switch(tmp_path, monkeypatch, study_dir):
    from benchmark_assets.defs.runner import run_study

    said = {}
    for label, yaml_text in (("stock", "telemetry:\n  enabled: false\n"), ("ours", None)):
        with instance_at(tmp_path / label, yaml_text, monkeypatch) as instance:
            lines = said[label] = []
            run_study("toy", quiet=True, instance=instance, log=lines.append)
    (note,) = [line for line in said["stock"] if line.startswith("note:")]
    assert f"{tmp_path / 'stock'}/dagster.yaml uses Dagster's stock SqliteEventLogStorage" in note
    assert "about 15 ms per partition here against 2.6 ms" in note and "about 1 s more for these 100 partitions" in note
    assert "module: benchmark_assets.defs.instance_storage, class: StudyInstanceStorage" in note
    assert not [line for line in said["ours"] if line.startswith("note:")]
