"""QBO's side of the sync skeleton (lib/sync.py): the query feed, CDC and the count, as log observations.

The query feed reads from the last committed LastUpdatedTime (the client re-reads an overlap window; re-read
versions are recognised by hash and skipped); CDC, the only place QBO shows deletes, is read for transactions
once the entity has a change position; QBO refuses a CDC window older than 30 days, and the skeleton then
sweeps ids. The count decides whether a sweep is needed at all. A first sync reads CDC's deletions of the last
30 days too: their tombstones are logged although the entity never was (`Observation.deleted_unseen_kept`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import duckdb

from ledger_pipeline.lib import cursors
from ledger_pipeline.lib.entity_log import Observation
from ledger_pipeline.lib.sync import ChangeFeed, EntitySync, EntitySyncResult, Page, RailCount, Read
from ledger_pipeline.lib.sync import sync_entity as sync_with_session
from ledger_pipeline.rails.qbo.client import QboClient
from ledger_pipeline.rails.qbo.entities import QboEntity
from ledger_pipeline.rails.qbo.errors import QboCdcWindowError, QboMalformedResponse
from ledger_pipeline.rails.qbo.rail import NAME

CDC_OVERLAP = timedelta(minutes=5)
# A first sync reads the deletions of this far back from CDC (QBO keeps 30 days; an hour's margin for the clock): a
# payment deleted before the pipeline saw it still shows at the bank, and then its return.
FIRST_DELETIONS = timedelta(days=30) - timedelta(hours=1)
CDC_REFUSED = "change feed window older than 30 days"

__all__ = ["CDC_OVERLAP", "FIRST_DELETIONS", "EntitySync", "EntitySyncResult", "QboSession", "sync_entity"]


class QboSession:
    """One tenant's QBO company as the sync skeleton reads it, through its client."""

    rail = NAME

    def __init__(self, client: QboClient) -> None:
        self.client = client
        self.account_id = client.realm_id
        self.page_size = client.page_size

    def reads(self, entity: QboEntity, previous: cursors.Cursor, sweep: str) -> Iterator[Read]:
        """Query pages, then CDC, then the count: every request before the sweep is decided, in order."""
        for page in self.client.pages(entity.name, updated_since=previous.updated_since):
            yield Page([self._observe(obj, entity, "query") for obj in page.objects], page.max_updated_at)
        refused = False
        if _first_sync(previous) and not entity.is_name_list:
            yield ChangeFeed([obs for obs in self._changes(entity, self.client.server_now() - FIRST_DELETIONS)
                              if obs.deleted])
        elif _reads_changes(entity, previous):
            start = previous.cdc_since or previous.updated_since
            assert start is not None
            try:
                changes = self._changes(entity, start - CDC_OVERLAP)
            except QboCdcWindowError:
                refused = True
                yield ChangeFeed(refused=CDC_REFUSED)
            else:
                yield ChangeFeed(changes)
        if sweep == "auto" and previous.last_synced_at is not None and not refused:
            yield RailCount(self.client.count(entity.name))

    def ids(self, entity: QboEntity) -> set[str]:
        return self.client.ids(entity.name)

    def tombstone(self, entity: QboEntity, entity_id: str) -> dict[str, Any]:
        return {"Id": entity_id, "domain": "QBO", "status": "Deleted"}

    def server_now(self) -> datetime | None:
        return self.client.server_now()

    def close(self) -> None:
        self.client.close()

    def _changes(self, entity: QboEntity, since: datetime) -> list[Observation]:
        return [self._observe(obj, entity, "cdc") for obj in self.client.changes(entity.name, since=since)]

    def _observe(self, obj: dict[str, Any], entity: QboEntity, source: str) -> Observation:
        entity_id = obj.get("Id")
        if not isinstance(entity_id, str) or not entity_id:
            raise QboMalformedResponse(
                self.account_id, entity.name, f"an object without an Id came back from the {source} feed"
            )
        updated = (obj.get("MetaData") or {}).get("LastUpdatedTime")
        token = obj.get("SyncToken")
        deleted = obj.get("status") == "Deleted"
        return Observation(
            entity_id=entity_id,
            payload=obj,
            source=source,
            deleted=deleted,
            deleted_unseen_kept=deleted,
            source_version=str(token) if token is not None else None,
            source_updated_at=datetime.fromisoformat(updated) if isinstance(updated, str) else None,
        )


def _first_sync(previous: cursors.Cursor) -> bool:
    return previous.last_synced_at is None


def _reads_changes(entity: QboEntity, previous: cursors.Cursor) -> bool:
    # An entity never seen non-empty has no change position yet: it gets one at its first sync.
    return not entity.is_name_list and not _first_sync(previous) and bool(previous.cdc_since or previous.updated_since)


def sync_entity(
    conn: duckdb.DuckDBPyConnection, client: QboClient, tenant_id: str, entity: QboEntity, *, run_id: str,
    observed_at: datetime, sweep: str = "auto", batch_size: int = 5_000,
) -> EntitySyncResult:  # fmt: skip
    """Sync one entity of one tenant through `client` (the tests' and the benchmark's entry point)."""
    return sync_with_session(
        conn, QboSession(client), tenant_id, entity, run_id=run_id, observed_at=observed_at, sweep=sweep,
        batch_size=batch_size,
    )  # fmt: skip
