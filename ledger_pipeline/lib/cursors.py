"""Sync cursors per (tenant, rail, entity): where the next incremental read starts.

Saved inside the same transaction as the log rows they cover, so a cursor
never points past what was committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from ledger_pipeline.lib.warehouse import fetch_one


@dataclass(frozen=True)
class Cursor:
    updated_since: datetime | None = None  # max LastUpdatedTime committed from the query feed
    cdc_since: datetime | None = None  # where the next change feed read starts
    last_sweep_at: datetime | None = None
    last_synced_at: datetime | None = None
    rail_now: datetime | None = None  # the rail's own clock at the end of the sync (aging marts use its date)


def load(conn: duckdb.DuckDBPyConnection, tenant_id: str, rail: str, entity_type: str) -> Cursor:
    row = fetch_one(
        conn,
        "select updated_since, cdc_since, last_sweep_at, last_synced_at, rail_now from meta.sync_cursors "
        "where tenant_id = ? and rail = ? and entity_type = ?",
        [tenant_id, rail, entity_type],
    )
    return Cursor(*row) if row else Cursor()


def save(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, rail: str, entity_type: str, cursor: Cursor, run_id: str
) -> None:
    conn.execute(
        "insert or replace into meta.sync_cursors "
        "(tenant_id, rail, entity_type, updated_since, cdc_since, last_sweep_at, last_synced_at, run_id, rail_now) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            tenant_id,
            rail,
            entity_type,
            cursor.updated_since,
            cursor.cdc_since,
            cursor.last_sweep_at,
            cursor.last_synced_at,
            run_id,
            cursor.rail_now,
        ],
    )
