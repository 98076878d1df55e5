"""A Plaid sync SIGKILLed in the middle of its /transactions/sync loop, its pages staged in DuckDB but not
committed: nothing of the loop is kept, the cursor stays where it was, and the next sync logs exactly what an
uninterrupted one did. First syncs and incremental ones alike."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import httpx

from ledger_pipeline.lib import cursors, warehouse
from ledger_pipeline.lib.sync import sync_entity
from ledger_pipeline.lib.verify import verify
from ledger_pipeline.rails.plaid.client import PlaidClient
from ledger_pipeline.rails.plaid.entities import TRANSACTION
from ledger_pipeline.rails.plaid.rail import PlaidConnection, PlaidItemLink
from ledger_pipeline.rails.plaid.sandbox import CLIENT_ID, SANDBOX_BASE_URL, SECRET, access_token_for
from ledger_pipeline.rails.plaid.sync import PlaidSession

from .conftest import BANK, CARD, DAYS, build

COUNT = 25  # transactions a page: a loop of many pages
SYNC_PATH = "/transactions/sync"


class _KilledAt(httpx.BaseTransport):
    """The sandbox's transport until the `dies_at`-th /transactions/sync request: then the process is SIGKILLed."""

    def __init__(self, inner: httpx.BaseTransport, dies_at: int) -> None:
        self.inner, self.dies_at, self.asked = inner, dies_at, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == SYNC_PATH:
            self.asked += 1
            if self.asked == self.dies_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.handle_request(request)


def _sync(db: Path, days: int, dies_at: int | None = None) -> None:
    """One sync of the bank's transactions on the sandbox world at GENESIS + `days` (built alike in every process)."""
    sandbox = build(days)
    transport = sandbox.transport() if dies_at is None else _KilledAt(sandbox.transport(), dies_at)
    tokens = {i.item_id: access_token_for(i.item_id) for i in (BANK, CARD)}
    client = PlaidClient(CLIENT_ID, SECRET, tokens, base_url=SANDBOX_BASE_URL, transport=transport)
    session = PlaidSession(client, PlaidConnection((PlaidItemLink(BANK.item_id), PlaidItemLink(CARD.item_id))),
                           count=COUNT)  # fmt: skip
    conn = warehouse.connect(db)
    try:
        sync_entity(conn, session, "bank", TRANSACTION, run_id="r", observed_at=datetime.now(UTC), batch_size=10)
    finally:
        session.close()
        conn.close()


def _killed_sync(db: Path, days: int, dies_at: int) -> None:
    """The sync in a child process (spawned: this one has DuckDB's threads), SIGKILLed at its `dies_at`-th sync
    request, rows already inserted by tens into its open transaction."""
    child = multiprocessing.get_context("spawn").Process(target=_sync, args=(db, days, dies_at))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL


def _state(db: Path) -> tuple[list[tuple], dict[str, str]]:
    """The transactions' versions and each item's saved Plaid cursor (the times a cursor also keeps differ)."""
    conn = warehouse.connect(db)
    try:
        assert verify(conn).ok
        versions = conn.execute(
            "select entity_id, op, payload_hash from raw.entity_log where entity_type = 'transaction' order by all"
        ).fetchall()
        position = cursors.load(conn, "bank", "plaid", TRANSACTION.name).position
        return versions, {item: saved["cursor"] for item, saved in json.loads(position or "{}").items()}
    finally:
        conn.close()


def test_a_sync_killed_inside_its_loop_keeps_nothing_of_it_and_the_next_logs_what_an_uninterrupted_one_did(tmp_path):
    whole, killed = tmp_path / "whole.duckdb", tmp_path / "killed.duckdb"
    _sync(whole, DAYS)
    first_versions, first_cursor = _state(whole)
    assert len(first_versions) > 4 * COUNT

    _killed_sync(killed, DAYS, dies_at=4)  # the bank's fourth page: three pages of the loop staged
    versions, cursor = _state(killed)
    assert versions == [] and cursor == {}
    _sync(killed, DAYS)
    assert _state(killed) == (first_versions, first_cursor)

    _sync(whole, DAYS + 6)
    moved_versions, moved_cursor = _state(whole)
    assert len(moved_versions) - len(first_versions) > 2 * COUNT  # the incremental loop has pages to kill in
    _killed_sync(killed, DAYS + 6, dies_at=2)
    assert _state(killed) == (first_versions, first_cursor)
    _sync(killed, DAYS + 6)
    assert _state(killed) == (moved_versions, moved_cursor)
