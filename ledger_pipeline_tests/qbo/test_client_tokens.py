"""Token stores and refresh coordination: rotation persisted, shared stores, races, file hygiene."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from ledger_pipeline.rails.qbo.oauth import FileTokenStore, MemoryTokenStore, StoredTokens, TokenStore
from ledger_pipeline_tests.qbo.test_client_fakes import REALM, FakeQbo, make_client

COUNT = httpx.Response(200, json={"QueryResponse": {"totalCount": 3}})


def test_client_file_token_store_roundtrip_permissions_and_atomicity(tmp_path):
    store = FileTokenStore(tmp_path / "tokens")
    assert isinstance(store, TokenStore) and isinstance(MemoryTokenStore(), TokenStore)
    assert store.load(REALM) is None
    expires = datetime(2026, 10, 1, 13, 0, tzinfo=timezone.utc)
    store.save(REALM, StoredTokens("rt-1", "at-1", expires))
    store.save(REALM, StoredTokens("rt-2", "at-2", expires))
    assert store.load(REALM) == StoredTokens("rt-2", "at-2", expires)
    path = store.path(REALM)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    assert json.loads(path.read_text())["refresh_token"] == "rt-2"
    with pytest.raises(ValueError, match="realm id"):
        store.path("../etc")


def test_client_file_token_store_reports_a_corrupt_file_without_its_content(tmp_path):
    store = FileTokenStore(tmp_path)
    store.path(REALM).write_text('{"refresh_token": 12, "secret": "leaky-value"}')
    with pytest.raises(ValueError, match="unreadable") as info:
        store.load(REALM)
    assert "leaky-value" not in str(info.value) and info.value.__context__ is None
    store.path(REALM).write_text('{"refresh_token": "leaky-value"')  # truncated JSON
    with pytest.raises(ValueError, match="unreadable") as info:
        store.load(REALM)
    assert info.value.__context__ is None  # a JSONDecodeError would carry the whole document


def test_client_file_token_store_lock_excludes_other_holders(tmp_path):
    store = FileTokenStore(tmp_path)
    order: list[str] = []
    holding = threading.Event()

    def other() -> None:
        holding.wait()
        with store.lock(REALM):
            order.append("other")

    thread = threading.Thread(target=other)
    thread.start()
    with store.lock(REALM):
        holding.set()
        time.sleep(0.05)
        order.append("first")
    thread.join(5)
    assert order == ["first", "other"]


def test_client_rotated_token_persisted_and_reused_by_a_new_client(tmp_path):
    fake = FakeQbo(default=COUNT)
    store = FileTokenStore(tmp_path)
    assert make_client(fake, store=store).count("Bill") == 3
    saved = store.load(REALM)
    assert saved.refresh_token == fake.current_refresh and saved.access_token == fake.current_access
    # a second client (think: the next run) uses the stored access token without refreshing
    assert make_client(fake, store=store).count("Bill") == 3
    assert fake.token_requests == 1


def test_client_two_clients_sharing_a_store_do_not_invalidate_each_other(tmp_path):
    fake = FakeQbo(default=COUNT, check_access=True)  # only the newest access token works
    store = FileTokenStore(tmp_path)
    start = datetime(2026, 10, 1, 12, 0, tzinfo=timezone.utc)
    clock_a, clock_b = {"now": start}, {"now": start}  # B's clock lags: it learns of expiry by a 401
    a = make_client(fake, store=store, clock=lambda: clock_a["now"])
    b = make_client(fake, store=store, clock=lambda: clock_b["now"])
    assert a.count("Bill") == 3 and b.count("Bill") == 3
    assert fake.token_requests == 1  # B adopted A's token
    for hour in range(1, 4):
        clock_a["now"] = start + timedelta(hours=hour)
        assert a.count("Bill") == 3  # A's token expired by its clock: A refreshes and rotates
        assert b.count("Bill") == 3  # B's token is refused: B re-reads the store and adopts A's
    assert fake.token_requests == 4  # one refresh per hour, never one by B with a stale refresh token
    assert store.load(REALM).refresh_token == fake.current_refresh


def test_client_concurrent_first_use_refreshes_once(tmp_path):
    fake = FakeQbo(default=COUNT, check_access=True, token_delay=0.05)
    store = FileTokenStore(tmp_path)
    clients = [make_client(fake, store=store) for _ in range(4)]
    errors: list[BaseException] = []

    def run(client) -> None:
        try:
            client.count("Bill")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [] and fake.token_requests == 1


def test_client_refreshes_early_when_the_stored_token_is_about_to_expire():
    fake = FakeQbo(default=COUNT)
    now = datetime(2026, 10, 1, 12, 0, tzinfo=timezone.utc)
    clock = {"now": now}
    store = MemoryTokenStore()
    store.save(REALM, StoredTokens(fake.current_refresh, "old-access", now + timedelta(seconds=30)))
    client = make_client(fake, store=store, clock=lambda: clock["now"])
    assert client.count("Bill") == 3
    assert fake.token_requests == 1  # 30 s left is inside the 60 s skew: refreshed first
    assert store.load(REALM).access_expires_at == now + timedelta(seconds=3600)
    clock["now"] = now + timedelta(minutes=30)
    client.count("Bill")
    assert fake.token_requests == 1
    clock["now"] = now + timedelta(minutes=59, seconds=30)
    client.count("Bill")
    assert fake.token_requests == 2


def test_client_file_token_store_lock_excludes_another_process(tmp_path):
    ready = tmp_path / "ready"
    code = (
        "import sys, time, pathlib\n"
        "from ledger_pipeline.rails.qbo.oauth import FileTokenStore\n"
        f"store = FileTokenStore({str(tmp_path)!r})\n"
        f"with store.lock({REALM!r}):\n"
        f"    pathlib.Path({str(ready)!r}).touch()\n"
        "    time.sleep(0.4)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ready.exists()
        began = time.monotonic()
        with FileTokenStore(tmp_path).lock(REALM):
            waited = time.monotonic() - began
        assert waited > 0.2
    finally:
        child.wait(10)
