"""Client behaviour against a scripted QBO: input validation, query text, retries, errors, secrets."""

from __future__ import annotations

import logging
import pickle
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from ledger_pipeline.rails.qbo.client import QboClient, QboCredentials
from ledger_pipeline.rails.qbo.errors import (
    QboAuthError,
    QboCdcWindowError,
    QboError,
    QboMalformedResponse,
    QboQueryError,
    QboThrottledError,
)
from ledger_pipeline.rails.qbo.oauth import MemoryTokenStore, StoredTokens
from ledger_pipeline.rails.qbo.retry import parse_retry_after
from ledger_pipeline.rails.qbo.wire import parse_qbo_time, qbo_literal
from ledger_pipeline_tests.qbo.test_client_fakes import (
    CLIENT_ID,
    CLIENT_SECRET,
    FIRST_REFRESH,
    REALM,
    FakeQbo,
    SleepRecorder,
    bill,
    fault,
    make_client,
    query_page,
)

T0 = "2026-10-07T11:21:10-07:00"


@pytest.mark.parametrize("realm", ["", "abc", "123a", "1" * 21, "１２３", " 123", "12 3", None, 123])
def test_client_rejects_malformed_realm_id(realm):
    with pytest.raises(ValueError, match="realm id"):
        QboClient(realm, QboCredentials(CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH), token_store=MemoryTokenStore())


def test_client_rejects_unknown_entity_before_any_request():
    fake = FakeQbo()
    client = make_client(fake)
    since = datetime(2026, 10, 1, tzinfo=timezone.utc)
    for call in (
        lambda: client.count("Bills"),
        lambda: client.pages("Bill; DROP"),
        lambda: client.ids("Employee"),
        lambda: client.changes("Estimate", since=since),
    ):
        with pytest.raises(ValueError, match="unknown QBO entity"):
            call()
    assert fake.requests == [] and fake.token_requests == 0


def test_client_rejects_naive_datetimes_and_bad_settings():
    fake = FakeQbo()
    client = make_client(fake)
    with pytest.raises(ValueError, match="timezone-aware"):
        client.pages("Bill", updated_since=datetime(2026, 10, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        client.changes("Bill", since=datetime(2026, 10, 1))
    with pytest.raises(ValueError, match="page_size"):
        make_client(fake, page_size=1001)
    with pytest.raises(QboAuthError, match="client secret"):
        make_client(fake, credentials=QboCredentials(CLIENT_ID, "", FIRST_REFRESH))
    assert fake.requests == []


def test_client_time_parsing_and_literals():
    parsed = parse_qbo_time(T0)
    assert parsed == datetime(2026, 10, 7, 18, 21, 10, tzinfo=timezone.utc)
    assert parsed.tzinfo is timezone.utc
    assert parse_qbo_time("2026-10-07T18:21:10Z") == parsed
    assert qbo_literal(datetime(2026, 10, 7, 11, 21, 10, 999_000, tzinfo=timezone(timedelta(hours=-7)))) == (
        "2026-10-07T18:21:10Z"
    )


def test_client_query_text_for_name_lists_and_transactions():
    fake = FakeQbo()
    client = make_client(fake, overlap=timedelta(minutes=5))
    since = datetime(2026, 10, 1, 12, 0, 0, tzinfo=timezone.utc)
    list(client.pages("Vendor", updated_since=since))
    list(client.pages("Bill"))
    fake.default = httpx.Response(200, json={"QueryResponse": {"totalCount": 42}, "time": "x"})
    assert client.count("Customer") == 42
    queries = fake.queries()
    assert queries[0] == (
        "SELECT * FROM Vendor WHERE Active IN (true,false) AND MetaData.LastUpdatedTime >= '2026-10-01T11:55:00Z' "
        "ORDERBY MetaData.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 1000"
    )
    assert queries[1] == "SELECT * FROM Bill ORDERBY MetaData.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 1000"
    assert queries[2] == "SELECT COUNT(*) FROM Customer WHERE Active IN (true,false)"
    for request in fake.requests:
        assert request.url.path == f"/v3/company/{REALM}/query"
        assert request.url.params["minorversion"] == "75"
        assert request.headers["accept"] == "application/json"
        assert request.headers["authorization"].startswith("Bearer ")


def test_client_retry_after_is_honoured_for_json_and_xml_429():
    xml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse time="x">'
        '<Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; errorCode=003001; '
        "statusCode=429</Message></Error></Fault></IntuitResponse>"
    )
    fake = FakeQbo(
        script=[
            fault(429, "3001", headers={"Retry-After": "7"}),
            httpx.Response(429, content=xml, headers={"content-type": "application/xml", "Retry-After": "3"}),
            fault(503, "10000", headers={"Retry-After": "1.5"}),
            query_page("Bill", [bill("1", T0)]),
        ]
    )
    sleep = SleepRecorder()
    pages = list(make_client(fake, sleep).pages("Bill"))
    assert [o["Id"] for p in pages for o in p.objects] == ["1"]
    assert sleep.delays == [7.0, 3.0, 1.5]


def test_client_backoff_uses_full_jitter_under_the_cap():
    fake = FakeQbo(script=[fault(500, "x")] * 6 + [query_page("Bill", [])])
    sleep = SleepRecorder()
    list(make_client(fake, sleep, backoff_base=1.0, backoff_cap=8.0).pages("Bill"))
    assert len(sleep.delays) == 6
    for attempt, delay in enumerate(sleep.delays):
        assert 0.0 <= delay <= min(8.0, 2.0**attempt)


def test_client_throttle_exhausted_names_realm_entity_and_code():
    fake = FakeQbo(default=fault(429, "3001", "message=ThrottleExceeded; errorCode=003001; statusCode=429"))
    sleep = SleepRecorder()
    with pytest.raises(QboThrottledError) as info:
        list(make_client(fake, sleep, max_retries=3).pages("Invoice"))
    err = info.value
    assert (err.realm_id, err.entity, err.code, err.status) == (REALM, "Invoice", "3001", 429)
    assert str(err).startswith(f"QBO realm {REALM}, entity Invoice: throttled after 3 retries")
    assert "(QBO error code 3001, HTTP 429)" in str(err)
    assert len(fake.requests) == 4 and len(sleep.delays) == 3


def test_client_too_long_retry_after_fails_fast():
    fake = FakeQbo(default=fault(429, "3001", headers={"Retry-After": "86400"}))
    sleep = SleepRecorder()
    with pytest.raises(QboThrottledError, match="Retry-After 86400s is too long"):
        make_client(fake, sleep).count("Bill")
    assert sleep.delays == []


def test_client_malformed_bodies_are_retried_then_reported():
    fake = FakeQbo(
        script=[
            httpx.Response(200, content=b'{"QueryResponse": {"Bill": [', headers={"content-type": "application/json"}),
            httpx.Response(200, content=b"<html>oops</html>", headers={"content-type": "text/html"}),
            httpx.Response(200, json={"nope": 1}),
            httpx.Response(200, json={"QueryResponse": {"Bill": [{"Id": "1"}]}}),
        ]
    )
    sleep = SleepRecorder()
    with pytest.raises(QboMalformedResponse) as info:
        list(make_client(fake, sleep, max_retries=3).pages("Bill"))
    assert "malformed response after 3 retries" in str(info.value)
    assert "LastUpdatedTime" in str(info.value)
    assert len(sleep.delays) == 3


def test_client_validation_fault_is_a_query_error_with_detail_and_not_retried():
    detail = "QueryParserError: Encountered \"Foo\" at line 1"
    fake = FakeQbo(default=fault(400, "4000", "Error parsing query", detail, kind="ValidationFault"))
    sleep = SleepRecorder()
    with pytest.raises(QboQueryError) as info:
        make_client(fake, sleep).count("Bill")
    assert info.value.detail == detail and info.value.code == "4000"
    assert detail in str(info.value) and "entity Bill" in str(info.value)
    assert sleep.delays == [] and len(fake.requests) == 1


def test_client_transport_errors_are_retried():
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(200, json={"QueryResponse": {"totalCount": 5}})

    fake = FakeQbo(default=flaky)
    sleep = SleepRecorder()
    assert make_client(fake, sleep).count("Bill") == 5
    assert len(sleep.delays) == 2

    fake = FakeQbo(default=lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r)))
    with pytest.raises(QboError, match="connection failed after 2 retries: ConnectError") as info:
        make_client(fake, SleepRecorder(), max_retries=2).count("Bill")
    assert type(info.value) is QboError


def test_client_refreshes_once_on_401_and_persists_rotation():
    fake = FakeQbo()
    store = MemoryTokenStore()
    fake.script = [fault(401, "3200", "message=AuthenticationFailed", "Token expired"), query_page("Bill", [])]
    client = make_client(fake, store=store)
    list(client.pages("Bill"))
    assert fake.generation == 2  # first token at start, second after the 401
    assert store.load(REALM).refresh_token == fake.current_refresh
    assert fake.requests[-1].headers["authorization"] == f"Bearer {fake.current_access}"

    fake.default = fault(401, "3200", "message=AuthenticationFailed", "Token expired")
    with pytest.raises(QboAuthError, match="refused even after a refresh"):
        client.count("Bill")


def test_client_auth_failures_are_clear():
    fake = FakeQbo()
    fake.generation = 5  # the initial refresh token has been rotated away
    with pytest.raises(QboAuthError) as info:
        make_client(fake).count("Bill")
    assert info.value.code == "invalid_grant" and "rotated or revoked; reconnect the company" in str(info.value)

    with pytest.raises(QboAuthError, match="invalid_client"):
        make_client(FakeQbo(), credentials=QboCredentials(CLIENT_ID, "wrong-secret", FIRST_REFRESH)).count("Bill")

    with pytest.raises(QboAuthError, match="no refresh token"):
        make_client(FakeQbo(), credentials=QboCredentials(CLIENT_ID, CLIENT_SECRET, "")).count("Bill")


def test_client_token_endpoint_throttling_is_retried():
    fake = FakeQbo(token_script=[fault(429, "3001", headers={"Retry-After": "2"}), fault(502, "x")])
    sleep = SleepRecorder()
    fake.default = httpx.Response(200, json={"QueryResponse": {"totalCount": 1}})
    assert make_client(fake, sleep, backoff_base=0.0).count("Bill") == 1
    assert sleep.delays == [2.0, 0.0]


def test_client_stored_refresh_token_wins_over_credentials():
    fake = FakeQbo()
    fake.generation = 3
    store = MemoryTokenStore()
    store.save(REALM, StoredTokens(fake.current_refresh))
    fake.default = httpx.Response(200, json={"QueryResponse": {"totalCount": 1}})
    assert make_client(fake, store=store).count("Bill") == 1
    assert store.load(REALM).refresh_token == "refresh-token-gen-4"


def test_client_secrets_never_appear_in_errors_reprs_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    fake = FakeQbo()

    def echo_token(request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        return fault(400, "4000", "Error parsing query", f"bad token {token} / {CLIENT_SECRET}", kind="ValidationFault")

    fake.script = [fault(429, "3001")] * 2 + [echo_token]
    store = MemoryTokenStore()
    client = make_client(fake, store=store)
    with pytest.raises(QboQueryError) as info:
        client.count("Bill")
    secrets = [CLIENT_SECRET, FIRST_REFRESH, fake.current_access, fake.current_refresh]
    texts = [
        str(info.value),
        repr(info.value),
        str(info.value.detail),
        repr(client),
        repr(client._tokens),
        repr(QboCredentials(CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH)),
        repr(store.load(REALM)),
        repr(store),
        caplog.text,
    ]
    assert "[redacted]" in str(info.value)
    for text in texts:
        for secret in secrets:
            assert secret not in text, (secret, text)

    fake = FakeQbo()
    fake.generation = 2
    with pytest.raises(QboAuthError) as info:
        make_client(fake).count("Bill")
    for text in (str(info.value), repr(info.value), caplog.text):
        assert FIRST_REFRESH not in text and CLIENT_SECRET not in text


def test_client_cdc_window_checked_before_any_request():
    fake = FakeQbo()
    now = datetime(2026, 10, 31, tzinfo=timezone.utc)
    client = make_client(fake, clock=lambda: now)
    with pytest.raises(QboCdcWindowError, match="30-day change window") as info:
        client.changes("Bill", since=now - timedelta(days=30, seconds=1))
    assert info.value.entity == "Bill" and fake.requests == [] and fake.token_requests == 0


def test_client_parse_retry_after_forms():
    now = datetime(2026, 10, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("5", now) == 5.0
    assert parse_retry_after(" 2.5 ", now) == 2.5
    assert parse_retry_after("-3", now) == 0.0
    assert parse_retry_after("Thu, 01 Oct 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_client_errors_survive_pickling():
    err = QboThrottledError(REALM, "Bill", "throttled after 6 retries", status=429, code="3001", detail="d")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is QboThrottledError and str(back) == str(err)
    assert (back.realm_id, back.entity, back.status, back.code, back.detail) == (REALM, "Bill", 429, "3001", "d")


def test_client_errors_do_not_chain_http_requests_holding_credentials():
    fake = FakeQbo(default=lambda r: (_ for _ in ()).throw(httpx.ReadError("reset", request=r)))
    with pytest.raises(QboError) as info:
        make_client(fake, SleepRecorder(), max_retries=1).count("Bill")
    chain, exc = [], info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert chain == [info.value]  # nothing underneath that still holds the Authorization header
    assert "ReadError on query: reset" in str(info.value)


def test_client_reads_everything_when_updated_since_is_the_dawn_of_time():
    fake = FakeQbo()
    list(make_client(fake).pages("Bill", updated_since=datetime.min.replace(tzinfo=timezone.utc)))
    assert fake.queries() == ["SELECT * FROM Bill ORDERBY MetaData.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 1000"]
