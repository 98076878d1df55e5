"""The real client against sandbox faults and OAuth: retries, Retry-After, exhaustion, refresh, secrets."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from ledger_pipeline.rails.qbo.client import QboCredentials
from ledger_pipeline.rails.qbo.errors import QboAuthError, QboCdcWindowError, QboMalformedResponse, QboThrottledError
from ledger_pipeline.rails.qbo.oauth import FileTokenStore, MemoryTokenStore
from ledger_pipeline.rails.qbo.sandbox import Fault, sandbox_credentials
from ledger_pipeline.rails.qbo.sandbox.auth import refresh_token as sandbox_refresh_token
from ledger_pipeline_tests.qbo.test_client_fakes import CountingTransport, SleepRecorder, dedupe, sandbox_client

REALM = "9130350000000101"
CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH = sandbox_credentials(REALM)


def read_bills(client) -> dict[str, dict]:
    return dedupe(client.pages("Bill"))


@pytest.mark.parametrize(
    "fault",
    [
        Fault("throttle", endpoint="query", after=1, count=2, retry_after=2.5),
        Fault("throttle_xml", endpoint="query", after=1, count=1, retry_after=4),
        Fault("server_error", endpoint="query", after=1, count=1, status=500, retry_after=1),
        Fault("server_error", endpoint="query", count=2, status=502, retry_after=0.25),
        Fault("server_error", endpoint="query", count=1, status=503, retry_after=3),
        Fault("xml_error", endpoint="query", count=1, status=500, retry_after=2),
    ],
    ids=lambda f: f"{f.kind}-{f.status}",
)
def test_client_recovers_from_throttling_and_server_errors_honouring_retry_after(sandbox, fault):
    sleep = SleepRecorder()
    client = sandbox_client(sandbox, REALM, sleep=sleep, page_size=100)
    sandbox.inject(REALM, fault)
    assert set(read_bills(client)) == set(sandbox.live_objects(REALM, "Bill"))
    assert sleep.delays == [fault.retry_after] * fault.count


def test_client_backs_off_with_jitter_when_retry_after_is_absent(sandbox):
    sleep = SleepRecorder()
    client = sandbox_client(sandbox, REALM, sleep=sleep, backoff_base=0.5, backoff_cap=1.5)
    sandbox.inject(REALM, Fault("throttle", endpoint="query", count=4))
    assert client.count("Bill") == len(sandbox.live_objects(REALM, "Bill"))
    assert len(sleep.delays) == 4
    assert all(0 <= d <= min(1.5, 0.5 * 2**n) for n, d in enumerate(sleep.delays))


def test_client_throttled_to_the_end_names_realm_entity_and_code(sandbox):
    sleep = SleepRecorder()
    counting = CountingTransport(sandbox.transport())
    client = sandbox_client(sandbox, REALM, sleep=sleep, transport=counting, max_retries=4)
    sandbox.inject(REALM, Fault("throttle", endpoint="query", count=-1, retry_after=1))
    with pytest.raises(QboThrottledError) as info:
        list(client.pages("Invoice"))
    err = info.value
    assert (err.realm_id, err.entity, err.code, err.status) == (REALM, "Invoice", "3001", 429)
    assert str(err).startswith(f"QBO realm {REALM}, entity Invoice: throttled after 4 retries")
    assert str(err).endswith("(QBO error code 3001, HTTP 429)")
    assert sleep.delays == [1.0] * 4 and counting.count("/query") == 5


def test_client_malformed_pages_are_retried_then_reported(sandbox):
    sleep = SleepRecorder()
    client = sandbox_client(sandbox, REALM, sleep=sleep, page_size=100, max_retries=2)
    sandbox.inject(REALM, Fault("malformed_page", endpoint="query", after=1, count=1))
    assert set(read_bills(client)) == set(sandbox.live_objects(REALM, "Bill"))  # one bad page: recovered
    assert len(sleep.delays) == 1

    sandbox.inject(REALM, Fault("malformed_page", endpoint="query", after=1, count=-1))
    with pytest.raises(QboMalformedResponse) as info:
        read_bills(client)
    assert info.value.entity == "Bill" and info.value.status == 200
    assert "malformed response after 2 retries" in str(info.value) and "not valid JSON" in str(info.value)


def test_client_recovers_from_connection_resets(sandbox):
    sleep = SleepRecorder()
    client = sandbox_client(sandbox, REALM, sleep=sleep, page_size=100)
    sandbox.inject(REALM, Fault("reset", endpoint="query", after=1, count=2))
    sandbox.inject(REALM, Fault("reset", endpoint="token", count=1))
    assert set(read_bills(client)) == set(sandbox.live_objects(REALM, "Bill"))
    assert len(sleep.delays) == 3
    sandbox.inject(REALM, Fault("reset", endpoint="cdc", count=1))
    assert list(client.changes("Bill", since=sandbox.now - timedelta(days=1))) is not None


def test_client_token_expiry_mid_paging_refreshes_and_persists_the_rotation(sandbox, tmp_path):
    store = FileTokenStore(tmp_path / "tokens")
    counting = CountingTransport(sandbox.transport())
    # the wall clock (default) does not see the sandbox hour pass: the expiry shows up as a 401
    client = sandbox_client(sandbox, REALM, store=store, transport=counting, page_size=50, clock=None)
    pages = client.pages("Bill")
    first = next(pages)
    assert store.load(REALM).refresh_token == sandbox_refresh_token(REALM, 1)
    sandbox.advance(timedelta(hours=1, minutes=1))
    got = dedupe([first, *pages])
    assert set(sandbox.live_objects(REALM, "Bill")) <= set(got)
    assert counting.count("/tokens/bearer") == 2
    saved = store.load(REALM)
    assert saved.refresh_token == sandbox_refresh_token(REALM, 2)
    assert oct(store.path(REALM).stat().st_mode & 0o777) == "0o600"

    # the client's own clock following the sandbox: refreshes before the token dies, no 401 at all
    proactive = sandbox_client(sandbox, REALM, store=store, transport=counting, page_size=50)
    sandbox.advance(timedelta(hours=2))
    proactive.count("Bill")
    assert counting.count("/tokens/bearer") == 3
    assert store.load(REALM).refresh_token == sandbox_refresh_token(REALM, 3)


def test_client_expired_token_fault_triggers_one_refresh(sandbox):
    counting = CountingTransport(sandbox.transport())
    client = sandbox_client(sandbox, REALM, transport=counting)
    sandbox.inject(REALM, Fault("expire_token", endpoint="query", count=1))
    assert client.count("Vendor") == len(sandbox.live_objects(REALM, "Vendor"))
    assert counting.count("/tokens/bearer") == 2


def test_client_old_refresh_token_is_refused_clearly(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    store = MemoryTokenStore()
    sandbox_client(sandbox, REALM, store=store).count("Bill")  # rotates the initial refresh token away
    fresh = store.load(REALM)
    stale_client = sandbox_client(sandbox, REALM)  # empty store: falls back to the initial, now rotated token
    with pytest.raises(QboAuthError) as info:
        stale_client.count("Bill")
    err = info.value
    assert err.code == "invalid_grant" and err.status == 400 and err.realm_id == REALM
    assert "refresh token was refused (invalid_grant): it was rotated or revoked; reconnect the company" in str(err)
    secrets = [CLIENT_SECRET, FIRST_REFRESH, fresh.refresh_token, fresh.access_token]
    for text in (str(err), repr(err), repr(stale_client), repr(store.load(REALM)), caplog.text):
        for secret in secrets:
            assert secret not in text


def test_client_wrong_or_missing_credentials_are_clear(sandbox):
    wrong = QboCredentials(CLIENT_ID, "not-the-secret", FIRST_REFRESH)
    with pytest.raises(QboAuthError, match="invalid_client") as info:
        sandbox_client(sandbox, REALM, credentials=wrong).count("Bill")
    assert "not-the-secret" not in str(info.value) and FIRST_REFRESH not in str(info.value)
    with pytest.raises(QboAuthError, match="no refresh token"):
        sandbox_client(sandbox, REALM, credentials=QboCredentials(CLIENT_ID, CLIENT_SECRET, "")).count("Bill")


def test_client_two_clients_sharing_a_file_store_keep_working(sandbox, tmp_path):
    store = FileTokenStore(tmp_path)
    counting = CountingTransport(sandbox.transport())
    a = sandbox_client(sandbox, REALM, store=store, transport=counting, page_size=100, clock=None)
    b = sandbox_client(sandbox, REALM, store=store, transport=counting, page_size=100, clock=None)
    pages_a, pages_b = a.pages("Bill"), b.pages("Invoice")
    next(pages_a), next(pages_b)
    for _ in range(3):
        sandbox.advance(timedelta(hours=1, minutes=5))
        assert a.count("Vendor") == b.count("Vendor")  # A refreshes; B adopts A's token from the store
    list(pages_a), list(pages_b)
    assert counting.count("/tokens/bearer") == 4  # the first, then one per expired hour, never a clash
    assert store.load(REALM).refresh_token == sandbox_refresh_token(REALM, 4)


def test_client_errors_and_logs_carry_no_secrets(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    store = MemoryTokenStore()
    client = sandbox_client(sandbox, REALM, store=store, max_retries=2)
    client.count("Bill")
    sandbox.inject(REALM, Fault("throttle", count=-1))
    with pytest.raises(QboThrottledError) as info:
        client.count("Bill")
    tokens = store.load(REALM)
    for text in (str(info.value), repr(info.value), repr(client), repr(tokens), caplog.text):
        for secret in (CLIENT_SECRET, FIRST_REFRESH, tokens.refresh_token, tokens.access_token):
            assert secret not in text
    assert "retry 1/2" in caplog.text and "HTTP 429" in caplog.text


def test_client_does_not_retry_an_unreadable_token_grant(sandbox):
    sleep = SleepRecorder()
    sandbox.inject(REALM, Fault("malformed_page", endpoint="token", count=1))
    with pytest.raises(QboMalformedResponse, match="refresh token may have been consumed") as info:
        sandbox_client(sandbox, REALM, sleep=sleep).count("Bill")
    assert sleep.delays == [] and info.value.status == 200
    # QBO did rotate: the initial token is gone, which the next attempt reports as such
    with pytest.raises(QboAuthError, match="invalid_grant"):
        sandbox_client(sandbox, REALM).count("Bill")


def test_client_judges_the_cdc_window_by_qbo_clock_once_it_has_heard_it(sandbox):
    skewed = sandbox_client(sandbox, REALM, clock=lambda: sandbox.now + timedelta(days=60))
    since = sandbox.now - timedelta(days=1)
    with pytest.raises(QboCdcWindowError):  # no response yet: only the (skewed) local clock to go by
        skewed.changes("Bill", since=since)
    skewed.count("Bill")  # every response carries QBO's `time`
    assert abs(skewed.server_now() - sandbox.now) < timedelta(seconds=5)
    assert isinstance(list(skewed.changes("Bill", since=since)), list)


def test_client_falls_back_to_the_configured_token_after_a_reconnect(sandbox, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    store = FileTokenStore(tmp_path)
    sandbox_client(sandbox, REALM, store=store).count("Bill")
    sandbox_client(sandbox, REALM, store=store).count("Bill")
    sandbox_client(sandbox, REALM, store=store).count("Bill")  # the stored token is used, no refresh
    assert store.load(REALM).refresh_token == sandbox_refresh_token(REALM, 1)
    sandbox.reconnect(REALM)  # reconnected: generation 1 is void, the configured initial token works again
    sandbox.advance(timedelta(hours=2))
    counting = CountingTransport(sandbox.transport())
    assert sandbox_client(sandbox, REALM, store=store, transport=counting).count("Bill") > 0
    assert counting.count("/tokens/bearer") == 2  # stored token refused, configured one accepted
    assert "stored refresh token refused; trying the configured one" in caplog.text
    assert store.load(REALM).refresh_token == sandbox_refresh_token(REALM, 1)


def test_client_reports_an_unreadable_token_store_as_an_auth_error(sandbox, tmp_path):
    store = FileTokenStore(tmp_path)
    store.path(REALM).write_text('{"refresh_token": "RT1-partial-secret"')
    with pytest.raises(QboAuthError, match="token store is unusable") as info:
        sandbox_client(sandbox, REALM, store=store).count("Bill")
    assert "RT1-partial-secret" not in str(info.value)
    exc = info.value
    while exc is not None:
        assert "RT1-partial-secret" not in repr(getattr(exc, "doc", ""))
        exc = exc.__cause__ or exc.__context__
