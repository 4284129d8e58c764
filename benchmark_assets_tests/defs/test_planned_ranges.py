"""A ranged run records one planned event per asset, and the partition grid (Dagster's partition
status: materialised, failed, in progress) still shows what the stock storage shows."""

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
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from benchmark_assets.defs.planned_ranges import PlannedRanges
from benchmark_assets_tests.conftest import instance_at

KEYS = [f"p{i:03d}" for i in range(120)]
PARTITIONS = StaticPartitionsDefinition(KEYS)
KEY = AssetKey("numbers")
BEHAVIOUR = {"fail": False, "seen_in_progress": None}


def _status(instance) -> dict[str, set[str]]:
    value = get_and_update_asset_status_cache_value(instance, KEY, PARTITIONS)
    return {
        "materialized": set(value.deserialize_materialized_partition_subsets(PARTITIONS).get_partition_keys()),
        "failed": set(value.deserialize_failed_partition_subsets(PARTITIONS).get_partition_keys()),
        "in_progress": set(value.deserialize_in_progress_partition_subsets(PARTITIONS).get_partition_keys()),
    }


@asset(partitions_def=PARTITIONS, backfill_policy=BackfillPolicy.single_run())
def numbers(context) -> None:
    BEHAVIOUR["seen_in_progress"] = _status(context.instance)["in_progress"]  # while this run is running
    if BEHAVIOUR["fail"]:
        raise RuntimeError("this run fails")


def _history(instance) -> dict:
    """Runs in ranges and one by one, failing and succeeding, and what the grid shows after each."""
    seen = []

    def run(first, last=None, *, fail=False):
        BEHAVIOUR["fail"] = fail
        tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last} if last else {}
        result = materialize([numbers], instance=instance, tags=tags, partition_key=None if last else first,
                             raise_on_error=False)
        assert result.success is not fail
        seen.append({"during": BEHAVIOUR["seen_in_progress"], **_status(instance)})
        return result.run_id

    runs = [run(KEYS[0], KEYS[59]), run(KEYS[40], KEYS[79], fail=True), run(KEYS[70], KEYS[89]),
            run(KEYS[100]), run(KEYS[101], fail=True), run(KEYS[50], KEYS[55])]
    plans = {partition: instance.event_log_storage.get_latest_planned_materialization_info(KEY, partition)
             for partition in (KEYS[0], KEYS[45], KEYS[75], KEYS[101], KEYS[119])}
    planned_events = len(instance.event_log_storage.get_event_records(
        EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION_PLANNED, asset_key=KEY), limit=1000))
    return {"seen": seen, "plans": {p: runs.index(i.run_id) if i else None for p, i in plans.items()},
            "planned_events": planned_events}


@pytest.mark.parametrize("storage", ["sqlite", "postgres"])
def test_the_grid_shows_what_the_stock_storage_shows_from_one_planned_event_per_run(
        tmp_path, monkeypatch, storage, request):
    if storage == "postgres":
        monkeypatch.setenv("BENCHMARK_ASSETS_POSTGRES_URL", request.getfixturevalue("postgres_database"))
    with instance_at(tmp_path / "stock", "telemetry:\n  enabled: false\n", monkeypatch) as instance:
        assert not isinstance(instance.event_log_storage, PlannedRanges)
        stock = _history(instance)
    with instance_at(tmp_path / "ours", None, monkeypatch) as instance:
        assert isinstance(instance.event_log_storage, PlannedRanges)
        ours = _history(instance)

    assert ours["seen"] == stock["seen"]
    assert ours["plans"] == stock["plans"] == {KEYS[0]: 0, KEYS[45]: 1, KEYS[75]: 2, KEYS[101]: 4, KEYS[119]: None}
    first, failed, _, _, failed_one, last = ours["seen"]
    assert first["during"] == set(KEYS[:60]) and first["in_progress"] == set()
    # Dagster's rule: a partition whose latest run failed shows failed (and materialised, if it was).
    assert failed["failed"] == set(KEYS[40:80]) and failed["materialized"] == set(KEYS[:60])
    assert failed_one["failed"] == set(KEYS[40:70]) | {KEYS[101]}
    assert last["during"] == set(KEYS[50:56]) and last["materialized"] == set(KEYS[:60] + KEYS[70:90] + KEYS[100:101])
    assert last["failed"] == set(KEYS[40:50] + KEYS[56:70]) | {KEYS[101]}
    assert stock["planned_events"] == 60 + 40 + 20 + 1 + 1 + 6
    assert ours["planned_events"] == 6  # one per run
