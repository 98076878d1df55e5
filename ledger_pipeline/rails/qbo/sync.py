"""One incremental sync of one QBO entity for one tenant: rail -> log, cursor committed with the rows.

Order of work inside a single DuckDB transaction:
1. the query feed from the last committed LastUpdatedTime (the client re-reads
   an overlap window; re-read versions are recognised by hash and skipped);
2. the CDC feed for transactions, which is the only place QBO shows deletes;
3. a count check against the rail and, when counts disagree or CDC cannot
   reach back far enough (30 days), a full id sweep that logs what vanished;
4. the cursor. Any failure rolls all of it back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from ledger_pipeline.lib import cursors
from ledger_pipeline.lib.entity_log import AppendStats, LogWriter, Observation, live_entity_count, live_entity_ids
from ledger_pipeline.lib.warehouse import rollback
from ledger_pipeline.rails.qbo.client import QboClient
from ledger_pipeline.rails.qbo.entities import QboEntity
from ledger_pipeline.rails.qbo.errors import QboCdcWindowError, QboMalformedResponse

RAIL = "qbo"
CDC_OVERLAP = timedelta(minutes=5)
SWEEP_MODES = ("auto", "always", "never")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntitySyncResult:
    tenant_id: str
    entity: str
    stats: AppendStats
    cursor: cursors.Cursor
    pages: int
    tombstones: int
    swept: bool
    sweep_reason: str | None


def sync_entity(
    conn: duckdb.DuckDBPyConnection,
    client: QboClient,
    tenant_id: str,
    entity: QboEntity,
    *,
    run_id: str,
    observed_at: datetime,
    sweep: str = "auto",
    batch_size: int = 5_000,
) -> EntitySyncResult:
    """Append every new version of `entity` to the log and move its cursor, atomically."""
    if sweep not in SWEEP_MODES:
        raise ValueError(f"sweep must be one of {SWEEP_MODES}, got {sweep!r}")
    previous = cursors.load(conn, tenant_id, RAIL, entity.name)
    first_sync = previous.last_synced_at is None
    conn.execute("begin")
    try:
        writer = LogWriter(conn, tenant_id, RAIL, entity.name, run_id, observed_at)
        high, pages = _read_query_feed(client, writer, entity, previous.updated_since, batch_size)
        cdc_since, tombstones, cdc_refused = previous.cdc_since or high, 0, False
        # An entity never seen non-empty has no change position yet: it gets one below, and deleted nothing logged.
        if not entity.is_name_list and not first_sync and (previous.cdc_since or previous.updated_since):
            cdc_since, tombstones, cdc_refused = _read_change_feed(client, writer, entity, previous, high)
        sweep_reason = _sweep_reason(conn, client, tenant_id, entity, sweep, first_sync, cdc_refused)
        if sweep_reason:
            _sweep(conn, client, writer, tenant_id, entity)
        rail_now = client.server_now()
        cursor = cursors.Cursor(
            updated_since=high,
            cdc_since=cdc_since or rail_now,  # an empty entity's changes are read from now (less the overlap) on
            last_sweep_at=observed_at if sweep_reason else previous.last_sweep_at,
            last_synced_at=observed_at,
            rail_now=rail_now,
        )
        cursors.save(conn, tenant_id, RAIL, entity.name, cursor, run_id)
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise
    return EntitySyncResult(
        tenant_id, entity.name, writer.stats, cursor, pages, tombstones, bool(sweep_reason), sweep_reason
    )


def _read_query_feed(
    client: QboClient, writer: LogWriter, entity: QboEntity, since: datetime | None, batch_size: int
) -> tuple[datetime | None, int]:
    high, pages, batch = since, 0, []
    for page in client.pages(entity.name, updated_since=since):
        pages += 1
        batch.extend(_observe(obj, entity, "query", client.realm_id) for obj in page.objects)
        if page.max_updated_at is not None and (high is None or page.max_updated_at > high):
            high = page.max_updated_at
        if len(batch) >= batch_size:
            writer.append(batch)
            batch = []
    writer.append(batch)
    return high, pages


def _read_change_feed(
    client: QboClient, writer: LogWriter, entity: QboEntity, previous: cursors.Cursor, high: datetime | None
) -> tuple[datetime | None, int, bool]:
    """Log CDC versions (deletes above all); report whether QBO refused the window as too old."""
    start = previous.cdc_since or previous.updated_since
    assert start is not None
    observed, newest = [], high
    try:
        for obj in client.changes(entity.name, since=start - CDC_OVERLAP):
            obs = _observe(obj, entity, "cdc", client.realm_id)
            observed.append(obs)
            if obs.source_updated_at and (newest is None or obs.source_updated_at > newest):
                newest = obs.source_updated_at
    except QboCdcWindowError:
        log.info("CDC window for %s is older than 30 days; the id sweep will find deletions", entity.name)
        return high, 0, True
    writer.append(observed)
    return newest, sum(o.deleted for o in observed), False


def _sweep_reason(
    conn: duckdb.DuckDBPyConnection,
    client: QboClient,
    tenant_id: str,
    entity: QboEntity,
    sweep: str,
    first_sync: bool,
    cdc_refused: bool,
) -> str | None:
    if sweep == "never" or first_sync:
        return None
    if sweep == "always":
        return "requested"
    if cdc_refused:
        return "change feed window older than 30 days"
    rail_count = client.count(entity.name)
    logged = live_entity_count(conn, tenant_id, RAIL, entity.name)
    if rail_count != logged:
        return f"rail count {rail_count} differs from {logged} live in the log"
    return None


def _sweep(
    conn: duckdb.DuckDBPyConnection, client: QboClient, writer: LogWriter, tenant_id: str, entity: QboEntity
) -> None:
    """Log a delete for every entity the log holds as live but the rail no longer lists."""
    on_rail = client.ids(entity.name)
    gone = sorted(live_entity_ids(conn, tenant_id, RAIL, entity.name) - on_rail, key=lambda i: (len(i), i))
    writer.append(
        [Observation(i, {"Id": i, "domain": "QBO", "status": "Deleted"}, "sweep", deleted=True) for i in gone]
    )


def _observe(obj: dict[str, Any], entity: QboEntity, source: str, realm_id: str) -> Observation:
    entity_id = obj.get("Id")
    if not isinstance(entity_id, str) or not entity_id:
        raise QboMalformedResponse(realm_id, entity.name, f"an object without an Id came back from the {source} feed")
    updated = (obj.get("MetaData") or {}).get("LastUpdatedTime")
    token = obj.get("SyncToken")
    return Observation(
        entity_id=entity_id,
        payload=obj,
        source=source,
        deleted=obj.get("status") == "Deleted",
        source_version=str(token) if token is not None else None,
        source_updated_at=datetime.fromisoformat(updated) if isinstance(updated, str) else None,
    )
