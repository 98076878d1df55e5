"""Plaid's side of the sync skeleton (lib/sync.py): items and accounts read whole, transactions through
/transactions/sync from each item's saved cursor.

- Items (`/item/get`) and accounts (`/accounts/get`) are read whole each sync; an unchanged one is skipped by hash,
  so each changed balance is a new account version: the log keeps every balance reading. Their count is compared
  with the log's, so an account the bank no longer lists is logged as deleted (the sweep).
- Transactions: per item, the sync loop from the cursor the last sync saved ("" the first time: the whole history)
  until `has_more` is false; `added` and `modified` are versions, `removed` an `op = deleted` (a pending
  transaction replaced by its posted twin, or cancelled). Every page of every item is logged in the sync's one
  transaction with the new cursors, committed after the last `has_more` false. When Plaid answers
  TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION the loop's pages are voided (`Restart`: the skeleton rolls back
  what it logged) and every item is read again from its saved cursor, up to MAX_RESTARTS times.
- The cursor's `position` is JSON: per item, Plaid's cursor and when the item last synced (freshness per item).
- An item whose bank wants a new login (ITEM_LOGIN_REQUIRED) is skipped, its cursor kept: the other items, rails
  and tenants sync on, and `connection_states` tells the registry (lib/sync.py's caller) that a person must act.
  The next sync after the re-login resumes from the saved cursor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from ledger_pipeline.lib import cursors
from ledger_pipeline.lib.entity_log import Observation
from ledger_pipeline.lib.sync import ChangeFeed, Page, RailCount, Read, Restart
from ledger_pipeline.rails.plaid.client import MAX_COUNT, PlaidClient
from ledger_pipeline.rails.plaid.entities import ACCOUNT, ITEM, TRANSACTION, PlaidEntity
from ledger_pipeline.rails.plaid.errors import (
    PlaidError, PlaidItemLoginRequired, PlaidMalformedResponse, PlaidMutationDuringPagination, PlaidSyncUnsettled,
)
from ledger_pipeline.rails.plaid.rail import NAME, PlaidConnection

MAX_RESTARTS = 5  # sync loops voided by changes during paging before the sync gives up (the data never settled)
RESTART_PAUSE = 1.0  # seconds before the first new loop; doubles each time
LOGIN_REQUIRED = "ITEM_LOGIN_REQUIRED"


class PlaidSession:
    """One tenant's items as the sync skeleton reads them, through one client holding their access tokens."""

    rail = NAME

    def __init__(
        self, client: PlaidClient, connection: PlaidConnection, *, count: int = MAX_COUNT,
        sleep: Callable[[float], None] = time.sleep, now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self.client, self.connection = client, connection
        self.account_id = connection.account_id
        self.page_size = count
        self._sleep, self._now = sleep, now
        self._login: dict[str, str | None] = {}  # item -> since when it needs a login (None: it read fine)
        self._listed: dict[str, set[str]] = {}  # entity -> ids a whole read saw this session

    def reads(self, entity: PlaidEntity, previous: cursors.Cursor, sweep: str) -> Iterator[Read]:
        if entity is TRANSACTION:
            yield from self._transactions(previous)
        else:
            yield from self._whole(entity)

    def ids(self, entity: PlaidEntity) -> set[str]:
        if entity is TRANSACTION:
            return {o.entity_id for read in self._transactions(cursors.Cursor()) if isinstance(read, Page)
                    for o in read.observations if not o.deleted}  # fmt: skip
        if entity.name not in self._listed:
            list(self._whole(entity))
        if entity.name not in self._listed:
            skipped = ", ".join(i for i, since in self._login.items() if since)
            raise PlaidItemLoginRequired(None, None, f"cannot list every {entity.name} while items {skipped} need a "
                                         "new login: the sweep waits for the re-login")  # fmt: skip
        return self._listed[entity.name]

    def tombstone(self, entity: PlaidEntity, entity_id: str) -> dict[str, Any]:
        return {entity.id_field: entity_id, "removed": True}

    def server_now(self) -> datetime | None:
        return None  # Plaid tells no clock

    def connection_states(self) -> dict[str, str | None]:
        """Per item read this session: since when it needs a person to log in again (None: it reads fine)."""
        return dict(self._login)

    def close(self) -> None:
        self.client.close()

    # --- items and accounts -------------------------------------------------------------------

    def _whole(self, entity: PlaidEntity) -> Iterator[Read]:
        """Every item, or every account of every item that reads, on one page; the rail's count when all read."""
        observations: list[Observation] = []
        for item_id in self.connection.account_ids:
            if entity is ITEM:
                item = self.client.item(item_id)
                self._note_item(item_id, item)
                observations.append(Observation(_id(item, ITEM, item_id), item, "get"))
                continue
            try:
                accounts = self.client.accounts(item_id)
            except PlaidItemLoginRequired:
                self._needs_login(item_id)
                continue
            self._login[item_id] = None
            # Plaid's account does not say which item it belongs to: the log adds it (the item it was read through).
            observations += [Observation(_id(a, ACCOUNT, item_id), {**a, "item_id": item_id}, "get") for a in accounts]
        yield Page(observations)
        if entity is ITEM or not any(self._login.get(i) for i in self.connection.account_ids):
            self._listed[entity.name] = {o.entity_id for o in observations}
            yield RailCount(len(observations))

    def _note_item(self, item_id: str, item: dict[str, Any]) -> None:
        error = item.get("error")
        if isinstance(error, dict) and error.get("error_code") == LOGIN_REQUIRED:
            self._needs_login(item_id)
        else:
            self._login[item_id] = None

    def _needs_login(self, item_id: str) -> None:
        registered = self.connection.item(item_id).login_required_since
        self._login[item_id] = registered or self._now().isoformat(timespec="seconds")

    # --- transactions -------------------------------------------------------------------------

    def _transactions(self, previous: cursors.Cursor) -> Iterator[Read]:
        """Every item's sync loop, from its saved cursor; all of them again when Plaid voids one under way."""
        saved = _positions(previous.position)
        for attempt in range(MAX_RESTARTS + 1):
            positions = dict(saved)
            try:
                for item_id in self.connection.account_ids:
                    start = saved.get(item_id, {}).get("cursor", "")
                    try:
                        end = yield from self._loop(item_id, start)
                    except PlaidItemLoginRequired:
                        self._needs_login(item_id)
                        continue
                    self._login[item_id] = None
                    positions[item_id] = {"cursor": end, "synced_at": self._now().isoformat(timespec="seconds")}
            except PlaidMutationDuringPagination as exc:
                if attempt == MAX_RESTARTS:
                    raise PlaidSyncUnsettled(
                        exc.item_id, exc.endpoint, f"the transactions kept changing while they were paged, "
                        f"{MAX_RESTARTS + 1} sync loops in a row; try again later", status=exc.status,
                        error_type=exc.error_type, code=exc.code, request_id=exc.request_id,
                    ) from None  # fmt: skip
                yield Restart(str(exc))
                self._sleep(RESTART_PAUSE * 2**attempt)
                continue
            yield ChangeFeed(position=json.dumps(positions, sort_keys=True))
            return

    def _loop(self, item_id: str, cursor: str) -> Iterator[Page]:
        """One item's pages from `cursor` until has_more is false; returns the cursor to save."""
        while True:
            page = self.client.transactions_sync(item_id, cursor, self.page_size)
            observations = [Observation(_id(t, TRANSACTION, item_id), t, "sync") for t in (*page.added, *page.modified)]
            observations += [Observation(_id(r, TRANSACTION, item_id), r, "sync", deleted=True) for r in page.removed]
            yield Page(observations)
            cursor = page.next_cursor
            if not page.has_more:
                return cursor


def _positions(position: str | None) -> dict[str, dict[str, str]]:
    """The saved per-item cursors; anything but what this module saves is refused, not guessed."""
    if position is None:
        return {}
    try:
        saved = json.loads(position)
    except ValueError:
        saved = None
    if not isinstance(saved, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("cursor"), str) for v in saved.values()
    ):
        raise ValueError(f"the Plaid transaction cursor's position {position[:80]!r} is not what this sync saved")
    return saved


def _id(obj: dict[str, Any], entity: PlaidEntity, item_id: str) -> str:
    value = obj.get(entity.id_field)
    if not isinstance(value, str) or not value:
        raise PlaidMalformedResponse(item_id, None, f"a {entity.name} without a {entity.id_field} came from Plaid")
    return value


__all__ = ["MAX_RESTARTS", "PlaidError", "PlaidSession"]
