"""Asset events written many at a time, for the project's SQLite and PostgreSQL event logs: the
rows, their tags and the asset key table's values in one transaction."""
from __future__ import annotations

from benchmark_assets.defs.compat import ASSET_EVENTS, AssetKeyTable, SqlEventLogStorageTable


def write_asset_events(storage, conn, events: list, rows: list[dict]) -> None:
    """In one transaction (``conn``): the events' rows, their tags, and per asset the asset key
    table's values as applying every event in order would leave them."""
    inserted = conn.execute(
        SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True), rows)
    event_ids = [row[0] for row in inserted]
    storage._store_asset_event_tags(conn, events, event_ids)
    has_index_cols = storage._has_asset_key_index_cols_on_connection(conn)
    # Applying every event's values in order leaves, per asset, what the last event of each type
    # set; so only those are computed (each materialization's would be serialised).
    last_of_type = {(e.dagster_event.asset_key.to_string(), e.dagster_event_type): i for i, e in enumerate(events)}
    merged: dict[str, dict] = {}
    for (asset_key, _), i in sorted(last_of_type.items(), key=lambda item: item[1]):
        values = storage._get_asset_entry_values(events[i], event_ids[i], has_index_cols)
        if values:
            merged.setdefault(asset_key, {}).update(values)
    for asset_key, values in merged.items():
        updated = conn.execute(AssetKeyTable.update().values(**values).where(AssetKeyTable.c.asset_key == asset_key))
        if updated.rowcount == 0:
            conn.execute(AssetKeyTable.insert().values(asset_key=asset_key, **values))


def is_asset_event(event) -> bool:
    return bool(event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS and event.dagster_event.asset_key)


def store_in_batches(events, store_batch, store_one, *, together=lambda first, event: True) -> None:
    """Events in order: each run of consecutive asset events (that ``together`` keeps with the
    run's first) to ``store_batch``, every other event to ``store_one``."""
    pending: list = []
    for event in events:
        if is_asset_event(event) and (not pending or together(pending[0], event)):
            pending.append(event)
            continue
        if pending:
            store_batch(pending)
        pending = [event] if is_asset_event(event) else []
        if not pending:
            store_one(event)
    if pending:
        store_batch(pending)
