"""The real client over real sockets: the sandbox's HTTP server, resets, timeouts and concurrent clients."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Iterator

import pytest

from ledger_pipeline.rails.qbo.oauth import FileTokenStore
from ledger_pipeline.rails.qbo.sandbox import CompanySpec, Fault, QboSandbox
from ledger_pipeline.rails.qbo.sandbox.auth import refresh_token as sandbox_refresh_token
from ledger_pipeline.rails.qbo.sandbox.server import RunningServer, start_in_thread
from ledger_pipeline_tests.qbo.test_client_fakes import SleepRecorder, dedupe, sandbox_client

REALM = "9130350000000101"
BIG = CompanySpec("9130350000000302", "Socket Supply Co.", size=10_000, change_rate=0.02, utc_offset="-05:00")


@pytest.fixture
def served_big() -> Iterator[RunningServer]:
    server = start_in_thread(QboSandbox((BIG,), seed=9, rate_limit=None), "127.0.0.1", 0)
    try:
        yield server
    finally:
        server.stop()


def test_client_pages_a_big_company_over_http(served_big):
    sb = served_big.sandbox
    with sandbox_client(sb, BIG.realm_id, base_url=served_big.base_url) as client:
        pages = list(client.pages("Bill"))
        live = sb.live_objects(BIG.realm_id, "Bill")
        assert len(live) > 2500 and len(pages) >= 3
        assert dedupe(pages) == live
        assert client.count("Bill") == len(live)


def test_client_survives_faults_over_real_sockets(served_sandbox):
    sb = served_sandbox.sandbox
    sleep = SleepRecorder()
    client = sandbox_client(sb, REALM, base_url=served_sandbox.base_url, sleep=sleep, page_size=50)
    sb.inject(REALM, Fault("reset", endpoint="query", after=1, count=2))
    sb.inject(REALM, Fault("throttle", endpoint="query", after=2, count=1, retry_after=3))
    sb.inject(REALM, Fault("server_error", endpoint="query", after=3, count=1, status=502, retry_after=0.5))
    assert set(dedupe(client.pages("Bill"))) == set(sb.live_objects(REALM, "Bill"))
    assert sorted(d for d in sleep.delays if d in (3.0, 0.5)) == [0.5, 3.0]
    assert len(sleep.delays) == 4
    client.close()


def test_client_times_out_a_slow_answer_and_retries(served_sandbox):
    sb = served_sandbox.sandbox
    sleep = SleepRecorder()
    client = sandbox_client(sb, REALM, base_url=served_sandbox.base_url, sleep=sleep, timeout=0.2)
    client.count("Bill")  # token first, so the slow fault hits the query
    sb.inject(REALM, Fault("slow", endpoint="query", delay=0.6))
    assert client.count("Bill") == len(sb.live_objects(REALM, "Bill"))
    assert len(sleep.delays) == 1
    client.close()


def test_client_concurrent_clients_share_one_file_store_over_http(served_sandbox, tmp_path):
    sb = served_sandbox.sandbox
    store = FileTokenStore(tmp_path)
    clients = [
        sandbox_client(sb, REALM, base_url=served_sandbox.base_url, store=store, page_size=40, clock=None)
        for _ in range(4)
    ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(clients))

    def work(client, name: str) -> None:
        try:
            barrier.wait(5)
            list(client.pages(name))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    for _ in range(2):
        names = ("Bill", "Invoice", "Vendor", "Payment")
        threads = [threading.Thread(target=work, args=(c, n)) for c, n in zip(clients, names)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert errors == []
        sb.advance(timedelta(hours=1, minutes=1))  # every access token dies between the rounds
    # one refresh for the first round and one after the expiry, whichever client got there first
    assert store.load(REALM).refresh_token == sandbox_refresh_token(REALM, 2)
    for client in clients:
        client.close()
