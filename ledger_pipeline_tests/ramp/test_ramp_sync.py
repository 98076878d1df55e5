"""The Ramp client and sync against the sandbox, without Dagster: rotating refresh tokens persisted before use
and shared through the store, a revoked grant failing clearly and changing nothing, and a sync SIGKILLed while
it pages keeping nothing of its transaction, the next one logging what an uninterrupted sync did."""

from __future__ import annotations

import multiprocessing
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ledger_pipeline.lib import cursors, warehouse
from ledger_pipeline.lib import sync as lib_sync
from ledger_pipeline.lib.oauth import OAuthCredentials
from ledger_pipeline.lib.sync import sync_entity
from ledger_pipeline.lib.verify import verify
from ledger_pipeline.rails.ramp.client import RampClient
from ledger_pipeline.rails.ramp.entities import BILL, TRANSACTION
from ledger_pipeline.rails.ramp.errors import RampAuthError
from ledger_pipeline.rails.ramp.rail import RampConnection
from ledger_pipeline.rails.ramp.sandbox import CLIENT_ID, CLIENT_SECRET, SANDBOX_BASE_URL, initial_refresh_token
from ledger_pipeline.rails.ramp import sync as ramp_sync
from ledger_pipeline.rails.ramp.sync import RampSession
from ledger_pipeline.rails.ramp.token_store import FileTokenStore

from .conftest import BUSINESS, CLOCK, build

PAGE = 10  # objects a page: a first sync of many pages
TOKENS = "ramp_tokens"


def _client(sandbox, store_dir: Path, transport: httpx.BaseTransport | None = None, **settings) -> RampClient:
    credentials = OAuthCredentials(CLIENT_ID, CLIENT_SECRET, initial_refresh_token(BUSINESS.business_id))
    return RampClient(BUSINESS.business_id, credentials, FileTokenStore(store_dir), base_url=SANDBOX_BASE_URL,
                      transport=transport or sandbox.transport(), page_size=PAGE, clock=lambda: sandbox.now,
                      **{"backoff_base": 0.0, **settings})  # fmt: skip


def test_refresh_tokens_rotate_are_saved_before_use_and_are_shared_through_the_store(tmp_path):
    sandbox = build(state_path=tmp_path / "state.json")
    store_dir = tmp_path / TOKENS
    with _client(sandbox, store_dir) as first:
        assert next(first.pages("users"))
    saved = FileTokenStore(store_dir).load(BUSINESS.business_id)
    assert saved is not None and saved.refresh_token == sandbox.current_refresh_token(BUSINESS.business_id)
    assert saved.refresh_token != initial_refresh_token(BUSINESS.business_id)  # rotated, and the rotation kept

    with _client(sandbox, store_dir) as second:  # adopts the stored access token: no refresh, no rotation
        assert next(second.pages("cards"))
        assert FileTokenStore(store_dir).load(BUSINESS.business_id) == saved

    sandbox.qbo.advance(timedelta(hours=2))  # the access token (an hour) expired on the sandbox's clock
    with _client(sandbox, store_dir) as third:
        assert next(third.pages("users"))
    renewed = FileTokenStore(store_dir).load(BUSINESS.business_id)
    assert renewed.refresh_token != saved.refresh_token
    assert renewed.refresh_token == sandbox.current_refresh_token(BUSINESS.business_id)


def test_a_revoked_grant_fails_the_sync_naming_the_cause_and_changes_nothing(tmp_path):
    sandbox = build(state_path=tmp_path / "state.json")
    sandbox.revoke(BUSINESS.business_id)
    conn = warehouse.connect(tmp_path / "ledger.duckdb")
    session = RampSession(_client(sandbox, tmp_path / TOKENS), RampConnection(BUSINESS.business_id))
    try:
        with pytest.raises(RampAuthError, match="invalid_grant.*reconnect the business") as failure:
            sync_entity(conn, session, "shop", TRANSACTION, run_id="r", observed_at=datetime.now(UTC))
        assert BUSINESS.business_id in str(failure.value) and CLIENT_SECRET not in str(failure.value)
        assert conn.execute("select count(*) from raw.entity_log").fetchone() == (0,)
        assert cursors.load(conn, "shop", "ramp", TRANSACTION.name) == cursors.Cursor()
    finally:
        session.close()
        conn.close()


class _KilledAt(httpx.BaseTransport):
    """The sandbox's transport until the `dies_at`-th list request: then the process is SIGKILLed."""

    def __init__(self, inner: httpx.BaseTransport, dies_at: int) -> None:
        self.inner, self.dies_at, self.asked = inner, dies_at, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.asked += 1
            if self.asked == self.dies_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.handle_request(request)


def _sync(folder: Path, clock: timedelta, dies_at: int | None = None, checkpoint_objects: int | None = None) -> None:
    """Transactions then bills of the business on the sandbox world at `clock` (built alike in every process; each
    sandbox starts from the first refresh token, which the client falls back to when its stored one is refused)."""
    if checkpoint_objects is not None:  # and a page read ahead at most, so that a kill finds pages committed
        ramp_sync.CHECKPOINT_OBJECTS, lib_sync.OBJECTS_AHEAD = checkpoint_objects, PAGE
    sandbox = build(clock)
    transport = sandbox.transport() if dies_at is None else _KilledAt(sandbox.transport(), dies_at)
    session = RampSession(_client(sandbox, folder / TOKENS, transport), RampConnection(BUSINESS.business_id))
    conn = warehouse.connect(folder / "ledger.duckdb")
    try:
        for entity in (TRANSACTION, BILL):
            sync_entity(conn, session, "shop", entity, run_id="r", observed_at=datetime.now(UTC), batch_size=10)
    finally:
        session.close()
        conn.close()


def _killed_sync(folder: Path, clock: timedelta, dies_at: int, checkpoint_objects: int | None = None) -> None:
    """The sync in a child process (spawned: this one has DuckDB's threads), SIGKILLed at its `dies_at`-th list
    request, rows already inserted by tens into its open transaction."""
    child = multiprocessing.get_context("spawn").Process(target=_sync,
                                                         args=(folder, clock, dies_at, checkpoint_objects))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL


def _state(folder: Path) -> tuple[list[tuple], list[tuple]]:
    """Every version logged (id, op, payload hash) and every cursor's position and high-water mark."""
    conn = warehouse.connect(folder / "ledger.duckdb")
    try:
        assert verify(conn).ok
        versions = conn.execute(
            "select entity_type, entity_id, op, payload_hash from raw.entity_log order by all").fetchall()
        saved = [(e.name, cursors.load(conn, "shop", "ramp", e.name)) for e in (TRANSACTION, BILL)]
        return versions, [(name, c.position, c.updated_since) for name, c in saved]
    finally:
        conn.close()


def test_a_sync_killed_while_it_pages_keeps_nothing_and_the_next_logs_what_an_uninterrupted_one_did(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    _sync(whole, CLOCK)
    first = _state(whole)
    assert len(first[0]) > 5 * PAGE

    _killed_sync(killed, CLOCK, dies_at=5)  # the transactions' fifth page: four pages staged, uncommitted
    assert _state(killed)[0] == []
    _sync(killed, CLOCK)
    assert _state(killed) == first

    _sync(whole, CLOCK + timedelta(days=6))
    moved = _state(whole)
    assert len(moved[0]) > len(first[0])
    _killed_sync(killed, CLOCK + timedelta(days=6), dies_at=3)
    assert _state(killed) == first
    _sync(killed, CLOCK + timedelta(days=6))
    assert _state(killed) == moved


def test_a_first_sync_commits_as_it_goes_and_one_killed_after_a_commit_ends_as_an_uninterrupted_one(tmp_path):
    """With a commit every two pages, a first sync killed at its eighth request keeps the pages it committed and a
    cursor saying to read every set whole again; the next sync logs the rest and nothing twice."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    _sync(whole, CLOCK)
    uninterrupted = _state(whole)

    _killed_sync(killed, CLOCK, dies_at=8, checkpoint_objects=2 * PAGE)
    kept, _ = _state(killed)
    conn = warehouse.connect(killed / "ledger.duckdb")
    try:
        resume = cursors.load(conn, "shop", "ramp", TRANSACTION.name).resume
    finally:
        conn.close()
    assert len(kept) in (2 * PAGE, 4 * PAGE, 6 * PAGE) and set(kept) < set(uninterrupted[0])
    assert resume == ramp_sync.RESUME_WHOLE
    _sync(killed, CLOCK, checkpoint_objects=2 * PAGE)
    assert _state(killed) == uninterrupted


def test_the_client_retries_what_is_worth_it_and_fails_naming_the_trace_when_ramp_keeps_failing(tmp_path, caplog):
    from ledger_pipeline.rails.ramp.errors import RampServerError
    from ledger_pipeline.rails.ramp.sandbox import Fault, RateLimit

    sandbox = build()
    for kind in ("server_error", "malformed", "reset"):
        sandbox.inject(BUSINESS.business_id, Fault(kind, after=1, count=1))
        with _client(sandbox, tmp_path / TOKENS) as client:
            pages = list(client.pages("transactions"))  # the faulty answer came in the middle and was retried
        assert sum(len(p) for p in pages) == len({t["id"] for p in pages for t in p}) > 2 * PAGE, kind
    throttled = build(rate_limit=RateLimit(requests=4, seconds=1.0))
    with caplog.at_level("INFO", logger="ledger_pipeline.rails.ramp.retry"), \
            _client(throttled, tmp_path / "throttled") as client:  # 4 a second: the client waits out Retry-After
        read = [o for path in ("vendors", "users", "cards") for page in client.pages(path) for o in page]
    assert len(read) > 4 * PAGE and "throttled (HTTP 429" in caplog.text
    sandbox.inject(BUSINESS.business_id, Fault("server_error", count=-1, status=503))
    with _client(sandbox, tmp_path / TOKENS, max_retries=2) as client, pytest.raises(RampServerError) as failure:
        next(client.pages("bills"))
    assert "/bills" in str(failure.value) and "x-trace-id" in str(failure.value) and "HTTP 503" in str(failure.value)
