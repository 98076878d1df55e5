"""Ramp's wire, as a client written for the real API meets it: the token grants and strict refresh rotation,
keyset pages and `page.next`, units, default filters, date filters, errors with `x-trace-id`, 429 and faults."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ledger_pipeline.rails.ramp.sandbox import (CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, SCOPES, Fault, RampBusiness,
                                                RampSandbox, RateLimit, authorization_code_for,
                                                client_credentials_for, initial_refresh_token)
from ledger_pipeline.rails.ramp.sandbox.server import start_in_thread

from .conftest import BUSINESS, COMPANY, TOKEN_PATH, build, client, get, own_token, read_all

APP = (CLIENT_ID, CLIENT_SECRET)
BID = BUSINESS.business_id


def _code(http: httpx.Client, code: str | None = None, redirect: str = REDIRECT_URI) -> httpx.Response:
    return http.post(TOKEN_PATH, auth=APP, data={"grant_type": "authorization_code", "redirect_uri": redirect,
                                                 "code": code or authorization_code_for(BID)})


def _refresh(http: httpx.Client, refresh_token: str) -> httpx.Response:
    return http.post(TOKEN_PATH, auth=APP, data={"grant_type": "refresh_token", "refresh_token": refresh_token})


def _error(response: httpx.Response, status: int, code: str) -> dict:
    """The data API's error body, checked for Ramp's shape."""
    assert response.status_code == status, response.text
    assert response.headers["x-trace-id"]
    body = response.json()
    assert body["error_v2"]["error_code"] == code and body["error_v2"]["message"]
    assert set(body["error_v2"]) == {"error_code", "message", "additional_info", "notes"} and "error" in body
    return body


def _oauth(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code and response.json()["error_description"]
    assert response.headers["x-trace-id"]


# --- tokens -------------------------------------------------------------------------------------------
def test_client_credentials_grant_answers_a_token_of_the_scopes_asked(http: httpx.Client) -> None:
    response = http.post(TOKEN_PATH, auth=client_credentials_for(BID),
                         data={"grant_type": "client_credentials", "scope": "transactions:read cards:read"})
    assert response.status_code == 200 and response.headers["x-trace-id"]
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 864_000 and "refresh_token" not in body
    assert body["access_token"].startswith("ramp_tok_") and body["scope"] == "cards:read transactions:read"
    assert get(http, body["access_token"], "cards").status_code == 200
    body = _error(get(http, body["access_token"], "bills"), 403, "DEVELOPER_7100")
    assert body["error_v2"]["additional_info"]["required_scopes"] == ["bills:read"]


def test_token_endpoint_refusals(http: httpx.Client) -> None:
    own = client_credentials_for(BID)
    grant = {"grant_type": "client_credentials", "scope": "bills:read"}
    _oauth(http.post(TOKEN_PATH, auth=(own[0], "wrong"), data=grant), 401, "invalid_client")
    _oauth(http.post(TOKEN_PATH, data=grant), 401, "invalid_client")
    _oauth(http.post(TOKEN_PATH, auth=own, data={**grant, "scope": "bills:read bills:write"}), 400, "invalid_scope")
    _oauth(http.post(TOKEN_PATH, auth=own, data={"grant_type": "client_credentials"}), 400, "invalid_request")
    _oauth(http.post(TOKEN_PATH, auth=own, data={"grant_type": "password"}), 400, "unsupported_grant_type")
    _oauth(http.post(TOKEN_PATH, auth=APP, data=grant), 400, "unauthorized_client")
    _oauth(http.post(TOKEN_PATH, auth=own, data={"grant_type": "refresh_token", "refresh_token": "x"}), 400,
           "unauthorized_client")
    _oauth(_code(http, code="not-a-code"), 400, "invalid_grant")
    _oauth(_code(http, redirect="https://elsewhere.example/cb"), 400, "invalid_grant")
    _oauth(_refresh(http, "ramp_tok_forged"), 400, "invalid_grant")
    _oauth(http.post(TOKEN_PATH, auth=APP, json={"grant_type": "refresh_token"}), 400, "invalid_request")


def test_refresh_rotation_is_strict_and_shared_by_every_process(tmp_path) -> None:
    """Each refresh answers a new refresh token and the one used is refused at once, in every process sharing
    the QBO sandbox's state file; a code exchange starts a new generation; reconnect forgets them all."""
    one = build(timedelta(0), state_path=tmp_path / "qbo.json")
    two = build(timedelta(0), state_path=tmp_path / "qbo.json")
    a, b = client(one), client(two)
    first = _refresh(a, initial_refresh_token(BID)).json()
    assert first["token_type"] == "Bearer" and first["expires_in"] == 3600 and first["scope"] == " ".join(SCOPES)
    _oauth(_refresh(b, initial_refresh_token(BID)), 400, "invalid_grant")  # used once: gone, in the other process
    second = _refresh(b, first["refresh_token"]).json()
    _oauth(_refresh(a, first["refresh_token"]), 400, "invalid_grant")
    assert two.current_refresh_token(BID) == second["refresh_token"] == one.current_refresh_token(BID)
    exchanged = _code(a).json()  # a new authorisation: the chain moves on, the code may be exchanged again
    assert exchanged["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    _oauth(_refresh(b, second["refresh_token"]), 400, "invalid_grant")
    assert _code(b).status_code == 200
    assert get(a, exchanged["access_token"], "users").status_code == 200
    one.reconnect(BID)
    assert _refresh(b, initial_refresh_token(BID)).status_code == 200


def test_access_tokens_expire_on_the_simulated_clock() -> None:
    sb = build(timedelta(days=1))
    http = client(sb)
    app = _code(http).json()["access_token"]
    own = own_token(http)
    assert get(http, app, "users").status_code == 200
    sb.qbo.advance(timedelta(seconds=3599))
    assert get(http, app, "users").status_code == 200
    sb.qbo.advance(timedelta(seconds=1))
    body = _error(get(http, app, "users"), 401, "DEVELOPER_7028")
    assert isinstance(body["error"], str)
    sb.qbo.advance(timedelta(days=10))
    _error(get(http, own, "users"), 401, "DEVELOPER_7028")
    _error(http.get("/developer/v1/users"), 401, "DEVELOPER_7002")
    _error(get(http, "ramp_tok_garbage", "users"), 401, "DEVELOPER_7002")


def test_revocation_refuses_the_app_until_the_business_authorises_again() -> None:
    sb = build(timedelta(days=1))
    http = client(sb)
    tokens = _refresh(http, initial_refresh_token(BID)).json()
    own = own_token(http)
    sb.revoke(BID)
    assert sb.is_revoked(BID)
    _error(get(http, tokens["access_token"], "users"), 401, "DEVELOPER_7002")
    _oauth(_refresh(http, tokens["refresh_token"]), 400, "invalid_grant")
    assert get(http, own, "users").status_code == 200  # the business's own API client is not the app
    again = _code(http).json()
    assert not sb.is_revoked(BID) and get(http, again["access_token"], "users").status_code == 200


# --- pages ------------------------------------------------------------------------------------------
def test_page_size_bounds_and_default(http: httpx.Client, token: str) -> None:
    first = get(http, token, "transactions", state="ALL").json()
    assert len(first["data"]) == 20 and parse_qs(urlsplit(first["page"]["next"]).query)["page_size"] == ["20"]
    for bad, message in (("1", "Value must be between 2 and 100"), ("101", "Value must be between 2 and 100"),
                         ("ten", "Not a valid integer.")):
        body = _error(get(http, token, "transactions", page_size=bad), 422, "DEVELOPER_7001")
        assert body["error_v2"]["additional_info"] == {"page_size": [message]} == body["error"]
    assert len(get(http, token, "transactions", page_size=2).json()["data"]) == 2
    assert len(get(http, token, "transactions", page_size=100).json()["data"]) == 100


def test_next_carries_every_filter_and_reads_everything_exactly_once(http: httpx.Client, token: str) -> None:
    everything = read_all(http, token, "transactions", state="ALL")
    since = everything[len(everything) // 2]["user_transaction_time"]
    params = {"state": "ALL", "from_date": since, "page_size": 7}
    response, seen, nexts = get(http, token, "transactions", **params), [], 0
    while True:
        body = response.json()
        seen += [t["id"] for t in body["data"]]
        if body["page"]["next"] is None:
            break
        query = parse_qs(urlsplit(body["page"]["next"]).query)
        assert query["state"] == ["ALL"] and query["from_date"] == [since] and query["page_size"] == ["7"]
        assert query["start"] == [body["data"][-1]["id"]]  # Ramp's keyset: the last id of the page
        response, nexts = http.get(body["page"]["next"], headers={"Authorization": f"Bearer {token}"}), nexts + 1
    wanted = [t["id"] for t in everything if t["user_transaction_time"] >= since]
    assert seen == wanted and len(set(seen)) == len(seen) and nexts >= 5
    times = [t["user_transaction_time"] for t in everything]
    assert times == sorted(times, reverse=True)  # newest first
    oldest = read_all(http, token, "transactions", state="ALL", order_by_date_asc="true")
    assert [t["id"] for t in oldest] == [t["id"] for t in reversed(everything)]
    by_amount = [t["amount"] for t in read_all(http, token, "transactions", order_by_amount_desc="true")]
    assert by_amount == sorted(by_amount, reverse=True)
    _error(get(http, token, "transactions", order_by_date_asc="true", order_by_amount_asc="true"), 400,
           "DEVELOPER_7001")
    _error(get(http, token, "transactions", start="0b2f6a3e-0000-4000-8000-000000000000"), 422, "DEVELOPER_7001")


# --- objects ----------------------------------------------------------------------------------------
def test_units_major_and_minor(http: httpx.Client, token: str) -> None:
    txns = read_all(http, token, "transactions", state="ALL")
    for t in txns:
        cents = t["original_transaction_amount"]["amount"]
        assert isinstance(cents, int) and t["amount"] == cents / 100 and t["currency_code"] == "USD"
        assert t["line_items"][0]["amount"] == {"amount": cents, "currency_code": "USD"}
    assert any(t["amount"] != int(t["amount"]) for t in txns)
    for b in read_all(http, token, "bills"):
        assert isinstance(b["amount"]["amount"], int) and b["amount"]["currency_code"] == "USD"
    for r in read_all(http, token, "reimbursements"):
        assert r["amount"] == r["original_reimbursement_amount"]["amount"] / 100
    for s in read_all(http, token, "statements"):
        assert all(isinstance(s[k]["amount"], int) for k in ("charges", "opening_balance", "ending_balance"))


def test_default_filters_hide_declined_archived_terminated_and_unactivated(http: httpx.Client, token: str) -> None:
    every = {t["id"]: t["state"] for t in read_all(http, token, "transactions", state="ALL")}
    default = {t["id"] for t in read_all(http, token, "transactions")}
    declined = {t["id"] for t in read_all(http, token, "transactions", state="DECLINED")}
    pending = {t["id"] for t in read_all(http, token, "transactions", state="PENDING")}
    assert declined and pending and default.isdisjoint(declined) and default | declined == set(every)
    assert all(every[i] == "PENDING" for i in pending)
    active, archived = read_all(http, token, "bills"), read_all(http, token, "bills", is_archived="true")
    assert archived and all(b["archived_at"] is None for b in active) and all(b["archived_at"] for b in archived)
    states = {name: {c["state"] for c in read_all(http, token, "cards", **params)}
              for name, params in (("default", {}), ("terminated", {"is_terminated": "true"}),
                                   ("unactivated", {"is_activated": "false"}))}
    assert states == {"default": {"ACTIVE"}, "terminated": {"TERMINATED"}, "unactivated": {"UNACTIVATED"}}
    _error(get(http, token, "cards", is_terminated="maybe"), 422, "DEVELOPER_7001")
    _error(get(http, token, "transactions", state="SETTLED"), 422, "DEVELOPER_7001")


def test_date_filters(http: httpx.Client, token: str) -> None:
    txns = read_all(http, token, "transactions", state="ALL")
    low, high = txns[-10]["user_transaction_time"], txns[10]["user_transaction_time"]
    window = read_all(http, token, "transactions", state="ALL", from_date=low, to_date=high)
    assert [t["id"] for t in window] == [t["id"] for t in txns if low <= t["user_transaction_time"] < high]
    bills = read_all(http, token, "bills")
    day = bills[len(bills) // 2]["issued_at"]
    same_day = read_all(http, token, "bills", from_issued_date=day, to_issued_date=day)
    assert same_day and {b["id"] for b in same_day} == {b["id"] for b in bills if b["issued_at"] == day}
    statements = read_all(http, token, "statements")
    end = statements[1]["end_date"]
    assert [s["end_date"] for s in read_all(http, token, "statements", to_date=end)] == \
        [s["end_date"] for s in statements if s["end_date"] <= end]  # fmt: skip
    reimbursements = read_all(http, token, "reimbursements")
    middle = reimbursements[len(reimbursements) // 2]["created_at"]
    assert [r["id"] for r in read_all(http, token, "reimbursements", from_date=middle)] == \
        [r["id"] for r in reimbursements if r["created_at"] >= middle]  # fmt: skip
    _error(get(http, token, "transactions", from_date="yesterday"), 422, "DEVELOPER_7001")


def test_updated_after(http: httpx.Client, token: str) -> None:
    reimbursements = read_all(http, token, "reimbursements")
    stamp = sorted(r["updated_at"] for r in reimbursements)[len(reimbursements) // 2]
    later = read_all(http, token, "reimbursements", updated_after=stamp)
    assert later and {r["id"] for r in later} == {r["id"] for r in reimbursements if r["updated_at"] > stamp}
    txns = read_all(http, token, "transactions", state="ALL")
    since = txns[5]["user_transaction_time"]
    changed = {t["id"] for t in read_all(http, token, "transactions", state="ALL", updated_after=since)}
    assert {t["id"] for t in txns if t["user_transaction_time"] > since} <= changed


def test_one_object_by_id_and_404(http: httpx.Client, token: str) -> None:
    for path in ("transactions", "users", "cards", "reimbursements", "statements", "vendors"):
        first = read_all(http, token, path)[0]
        assert get(http, token, f"{path}/{first['id']}").json() == first
    paid = [b for b in read_all(http, token, "bills") if b["status"] == "PAID"]
    assert paid and paid[0]["payment"]["trace_id"] is None  # only the single bill says its trace
    single = get(http, token, f"bills/{paid[0]['id']}").json()
    assert single["payment"]["trace_id"]["descriptor"] == "ACH Trace ID"
    _error(get(http, token, "bills/0b2f6a3e-0000-4000-8000-000000000000"), 404, "DEVELOPER_7002")
    _error(get(http, token, "ledgers"), 404, "DEVELOPER_7002")
    assert http.get("/elsewhere").headers["x-trace-id"]


# --- the rate limit and faults ---------------------------------------------------------------------------
def test_past_the_rate_limit_answers_429_per_business() -> None:
    other = RampBusiness("0b2f6a3e-0000-4000-8000-000000000001", COMPANY.realm_id, "Another business")
    sb = build(timedelta(0), rate_limit=RateLimit(5, 10.0), businesses=(BUSINESS, other))
    http = client(sb)
    token, token2 = own_token(http), own_token(http, business_id=other.business_id)
    assert all(get(http, token, "users").status_code == 200 for _ in range(5))
    body = _error(response := get(http, token, "users"), 429, "DEVELOPER_7429")
    assert 1 <= int(response.headers["Retry-After"]) <= 10 and body["error_v2"]["message"]
    assert get(http, token2, "users").status_code == 200


def test_faults_switched_on_for_a_business() -> None:
    sb = build(timedelta(0))
    http = client(sb)
    token = own_token(http)
    sb.inject(BID, Fault("server_error", after=1, status=503))
    assert get(http, token, "users").status_code == 200
    _error(get(http, token, "users"), 503, "DEVELOPER_7500")
    assert get(http, token, "users").status_code == 200
    sb.inject(BID, Fault("malformed"))
    with pytest.raises(json.JSONDecodeError):
        json.loads(get(http, token, "users").content)
    sb.inject(BID, Fault("reset", count=2))
    with pytest.raises(httpx.ReadError):
        get(http, token, "users")
    with pytest.raises(httpx.RemoteProtocolError):
        get(http, token, "users")
    sb.inject(BID, Fault("slow", delay=5.0))
    with pytest.raises(httpx.ReadTimeout):
        http.get("/developer/v1/users", headers={"Authorization": f"Bearer {token}"}, timeout=0.05)
    assert get(http, token, "users").status_code == 200


def test_over_http(world: RampSandbox, token: str) -> None:
    server = start_in_thread(world)
    try:
        with httpx.Client(base_url=server.base_url) as http:
            assert own_token(http)
            first = get(http, token, "transactions", page_size=50).json()
            assert first["page"]["next"].startswith(f"{server.base_url}/developer/v1/transactions?")
            assert [t["id"] for t in read_all(http, token, "transactions")] == \
                [t["id"] for t in read_all(client(world), token, "transactions")]  # fmt: skip
            world.inject(BID, Fault("reset"))
            with pytest.raises(httpx.TransportError):
                get(http, token, "users")
    finally:
        world.clear_faults()
        server.stop()
