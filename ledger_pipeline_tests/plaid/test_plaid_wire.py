"""Plaid's wire format as plain httpx sees it: auth, request ids, bounds, errors, rate limit, faults, the login
switch and /transactions/sync paging and cursors, in-process and over HTTP."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import httpx
import pytest

from ledger_pipeline.rails.plaid.sandbox import CLIENT_ID, SECRET, Fault, RateLimit, access_token_for
from ledger_pipeline.rails.plaid.sandbox.server import RunningServer

from .conftest import BANK, CARD, OTHER, TOKEN, build, client, post, sync_all

PLAID_ERROR_KEYS = {"error_type", "error_code", "error_message", "display_message", "request_id"}


def _error(response: httpx.Response, status: int, error_type: str, code: str) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert PLAID_ERROR_KEYS <= set(body) and body["display_message"] is None
    assert (body["error_type"], body["error_code"]) == (error_type, code), body
    assert isinstance(body["request_id"], str) and len(body["request_id"]) == 15
    assert response.headers["content-type"] == "application/json"
    return body


def test_keys_in_body_or_headers_and_request_ids(http: httpx.Client) -> None:
    in_body = post(http, "/accounts/get")
    in_headers = http.post("/accounts/get", json={"access_token": TOKEN},
                           headers={"PLAID-CLIENT-ID": CLIENT_ID, "PLAID-SECRET": SECRET})
    assert in_body.status_code == in_headers.status_code == 200
    assert in_body.json()["accounts"] == in_headers.json()["accounts"]
    ids = {r.json()["request_id"] for r in (in_body, in_headers)}
    assert len(ids) == 2 and all(len(i) == 15 and i.isalnum() for i in ids)
    for keys in ({"client_id": CLIENT_ID, "secret": "0" * 30}, {"client_id": CLIENT_ID}, {}):
        bad = http.post("/accounts/get", json={"access_token": TOKEN, **keys})
        assert _error(bad, 400, "INVALID_INPUT", "INVALID_API_KEYS")["error_message"]


def test_tokens_paths_and_bodies(http: httpx.Client) -> None:
    assert TOKEN.startswith("access-sandbox-") and len(TOKEN) == 51 and TOKEN[15:][14] == "4"
    _error(post(http, "/accounts/get", token="access-sandbox-00000000-0000-4000-8000-000000000000"), 400,
           "INVALID_INPUT", "INVALID_ACCESS_TOKEN")
    _error(post(http, "/accounts/get", token=None), 400, "INVALID_REQUEST", "MISSING_FIELDS")
    unknown = _error(post(http, "/accounts/get", colour="blue"), 400, "INVALID_REQUEST", "UNKNOWN_FIELDS")
    assert "colour" in unknown["error_message"]
    nested = _error(post(http, "/transactions/sync", options={"colour": 1}), 400, "INVALID_REQUEST", "UNKNOWN_FIELDS")
    assert "options.colour" in nested["error_message"]
    _error(post(http, "/transactions/get"), 404, "INVALID_REQUEST", "NOT_FOUND")
    _error(http.get("/accounts/get"), 404, "INVALID_REQUEST", "NOT_FOUND")
    _error(http.post("/accounts/get", content=b"{not json", headers={"content-type": "application/json"}), 400,
           "INVALID_REQUEST", "INVALID_BODY")


@pytest.mark.parametrize("count", [0, 501, "ten", 2.5])
def test_count_outside_1_to_500_is_invalid_field(http: httpx.Client, count) -> None:
    body = _error(post(http, "/transactions/sync", count=count), 400, "INVALID_REQUEST", "INVALID_FIELD")
    assert "count" in body["error_message"]


def test_count_bounds_accepted(http: httpx.Client) -> None:
    one = post(http, "/transactions/sync", count=1).json()
    assert len(one["added"]) == 1 and one["has_more"] is True
    assert len(post(http, "/transactions/sync", count=500).json()["added"]) <= 500
    default = post(http, "/transactions/sync").json()
    assert len(default["added"]) == 100 and default["transactions_update_status"] == "HISTORICAL_UPDATE_COMPLETE"


def test_cursors_of_another_item_or_unreadable_are_refused(http: httpx.Client) -> None:
    other = post(http, "/transactions/sync", token=access_token_for(CARD.item_id), count=5).json()["next_cursor"]
    refused = _error(post(http, "/transactions/sync", cursor=other), 400, "INVALID_REQUEST", "INVALID_FIELD")
    assert refused["error_message"] == "cursor not associated with access_token"
    forged = base64.urlsafe_b64encode(json.dumps({"v": 1, "i": BANK.item_id, "p": "x"}).encode()).decode()
    for cursor in ("not-a-cursor!", forged, "e30"):
        _error(post(http, "/transactions/sync", cursor=cursor), 400, "INVALID_REQUEST", "INVALID_FIELD")


def test_paging_has_more_and_repeating_a_cursor(http: httpx.Client) -> None:
    whole = post(http, "/transactions/sync", count=500).json()
    assert not whole["has_more"] and len(whole["added"]) > 150
    pages, last = sync_all(http, count=37)
    assert len(pages) > 3 and all(p["has_more"] for p in pages[:-1]) and not pages[-1]["has_more"]
    assert all(len(p["added"]) + len(p["modified"]) + len(p["removed"]) <= 37 for p in pages)
    assert [t["transaction_id"] for p in pages for t in p["added"]] == [t["transaction_id"] for t in whole["added"]]
    assert last == whole["next_cursor"]
    again = post(http, "/transactions/sync", cursor=last).json()
    assert (again["added"], again["modified"], again["removed"], again["has_more"]) == ([], [], [], False)
    assert again["next_cursor"] == last
    middle = post(http, "/transactions/sync", cursor=pages[0]["next_cursor"], count=37).json()
    assert middle["added"] == pages[1]["added"] and middle["next_cursor"] == pages[1]["next_cursor"]


def test_mutation_during_pagination_when_the_clock_moves() -> None:
    sb = build(days=5)
    http = client(sb)
    first = post(http, "/transactions/sync", count=10).json()
    assert first["has_more"]
    sb.qbo.advance(timedelta(days=2))
    moved = post(http, "/transactions/sync", cursor=first["next_cursor"], count=10)
    body = _error(moved, 400, "TRANSACTIONS_ERROR", "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION")
    assert body["error_message"].startswith("Underlying transaction data changed")
    pages, _ = sync_all(http, count=200)  # restarting from the last update (here: the beginning) works
    assert pages[-1]["has_more"] is False


def test_mutation_fault_fires_only_mid_pagination() -> None:
    sb = build(days=3)
    http = client(sb)
    sb.inject(BANK.item_id, Fault("mutation"))
    first = post(http, "/transactions/sync", count=10)
    assert first.status_code == 200  # no cursor: not watched
    _error(post(http, "/transactions/sync", cursor=first.json()["next_cursor"], count=10), 400,
           "TRANSACTIONS_ERROR", "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION")
    assert post(http, "/transactions/sync", cursor=first.json()["next_cursor"], count=10).status_code == 200


def test_rate_limit_429_per_item() -> None:
    sb = build(days=1, rate_limit=RateLimit(per_item_per_minute=3))
    http = client(sb)
    answers = [post(http, "/accounts/get") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    _error(answers[3], 429, "RATE_LIMIT_EXCEEDED", "ACCOUNTS_LIMIT")
    assert post(http, "/accounts/get", token=access_token_for(OTHER.item_id)).status_code == 200


def test_faults_per_item() -> None:
    sb = build(days=1)
    http = client(sb)
    sb.inject(BANK.item_id, Fault("server_error", status=503, after=1))
    assert post(http, "/accounts/get").status_code == 200
    assert post(http, "/accounts/get", token=access_token_for(OTHER.item_id)).status_code == 200
    _error(post(http, "/accounts/get"), 503, "API_ERROR", "INTERNAL_SERVER_ERROR")
    assert post(http, "/accounts/get").status_code == 200
    sb.inject(BANK.item_id, Fault("malformed"))
    cut = post(http, "/transactions/sync")
    assert cut.status_code == 200 and cut.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        cut.json()
    sb.inject(BANK.item_id, Fault("reset"))
    with pytest.raises(httpx.ReadError):
        post(http, "/accounts/get")
    sb.inject(BANK.item_id, Fault("slow", delay=0.3))
    with pytest.raises(httpx.ReadTimeout):
        http.post("/accounts/get", json={"client_id": CLIENT_ID, "secret": SECRET, "access_token": TOKEN},
                  timeout=httpx.Timeout(5, read=0.05))
    sb.inject(BANK.item_id, Fault("server_error", count=-1))
    assert post(http, "/accounts/get").status_code == post(http, "/accounts/get").status_code == 500
    sb.clear_faults(BANK.item_id)
    assert post(http, "/accounts/get").status_code == 200


def test_login_required_until_relogin_and_item_get_still_works() -> None:
    sb = build(days=1)
    http = client(sb)
    sb.require_login(BANK.item_id)
    assert sb.login_required(BANK.item_id) and not sb.login_required(CARD.item_id)
    for path in ("/accounts/get", "/accounts/balance/get", "/transactions/sync"):
        _error(post(http, path), 400, "ITEM_ERROR", "ITEM_LOGIN_REQUIRED")
    item = post(http, "/item/get").json()
    assert item["item"]["error"]["error_code"] == "ITEM_LOGIN_REQUIRED" and item["status"]["transactions"]
    assert post(http, "/accounts/get", token=access_token_for(CARD.item_id)).status_code == 200
    sb.relogin(BANK.item_id)
    assert post(http, "/accounts/get").status_code == 200 and post(http, "/item/get").json()["item"]["error"] is None


def test_login_switch_is_shared_through_the_state_file(tmp_path) -> None:
    from ledger_pipeline.rails.plaid.sandbox import PlaidSandbox
    from ledger_pipeline.rails.qbo.sandbox import QboSandbox
    from ledger_pipeline.rails.qbo.sandbox.state import SharedState

    from .conftest import COMPANIES, ITEMS
    one = PlaidSandbox(QboSandbox(COMPANIES, seed=5, state_path=tmp_path / "s.json", rate_limit=None), ITEMS)
    two = PlaidSandbox(QboSandbox(COMPANIES, seed=5, state_path=tmp_path / "s.json", rate_limit=None), ITEMS)
    one.require_login(BANK.item_id)
    assert two.login_required(BANK.item_id)
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["plaid_login_required"] == [BANK.item_id]
    two.relogin(BANK.item_id)
    assert not one.login_required(BANK.item_id)
    assert "plaid_login_required" not in json.loads((tmp_path / "s.json").read_text())  # old readers see no change
    assert SharedState.from_json({k: v for k, v in saved.items() if k != "plaid_login_required"}) \
        .plaid_login_required == set()


def test_over_http(served: RunningServer) -> None:
    with httpx.Client(base_url=served.base_url) as http:
        accounts = post(http, "/accounts/balance/get").json()
        assert [a["account_id"] for a in accounts["accounts"]] == [a.account_id for a in BANK.accounts]
        assert accounts["accounts"][0]["balances"]["last_updated_datetime"].endswith("Z")
        pages, _ = sync_all(http, count=250)
        assert len(pages) >= 1 and pages[-1]["has_more"] is False
        _error(post(http, "/accounts/get", token="access-sandbox-nope"), 400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN")
    sb = build(days=1)
    from ledger_pipeline.rails.plaid.sandbox.server import start_in_thread
    server = start_in_thread(sb)
    try:
        sb.inject(BANK.item_id, Fault("reset"))
        with httpx.Client(base_url=server.base_url) as http, pytest.raises(httpx.TransportError):
            post(http, "/accounts/get")
    finally:
        server.stop()


def test_one_account_ids_and_shapes(http: httpx.Client) -> None:
    savings = BANK.accounts[1].account_id
    pages, cursor = sync_all(http, options={"account_id": savings})
    txns = [t for p in pages for t in p["added"]]
    assert txns and {t["account_id"] for t in txns} == {savings}
    assert {t["name"] for t in txns} <= {"ONLINE TRANSFER FROM CHECKING", "INTEREST PAYMENT"}
    _error(post(http, "/transactions/sync", cursor=cursor), 400, "INVALID_REQUEST", "INVALID_FIELD")
    _error(post(http, "/transactions/sync", options={"account_id": "nope"}), 400, "INVALID_INPUT", "INVALID_ACCOUNT_ID")
    everything = [t for p in sync_all(http)[0] for t in p["added"]]
    ids = [t["transaction_id"] for t in everything] + [BANK.item_id] + [a.account_id for a in BANK.accounts]
    assert all(len(i) == 37 and i.isalnum() for i in ids) and len(set(ids)) == len(ids)
    one = post(http, "/accounts/get", options={"account_ids": [savings]}).json()["accounts"]
    assert [a["account_id"] for a in one] == [savings] and one[0]["subtype"] == "savings"


def test_demo_items_credentials_and_serve_line() -> None:
    import io
    from types import SimpleNamespace

    from ledger_pipeline.rails.plaid.sandbox import DEMO_ITEMS, credentials, demo_accounts, items_for
    from ledger_pipeline.rails.plaid.sandbox.server import serve
    assert [len(items_for(f"913035000000000{n}")) for n in (1, 2, 3)] == [2, 1, 2]
    assert set(demo_accounts()) == {i.item_id for i in DEMO_ITEMS}
    assert demo_accounts()[DEMO_ITEMS[1].item_id] == "Acme Plumbing LLC (Tartan Bank)"
    creds = credentials(SimpleNamespace(item_ids=(DEMO_ITEMS[0].item_id,)), None)
    assert creds == {"rail": "plaid", "client_id": CLIENT_ID, "secret": SECRET, "base_url": "http://127.0.0.1:12112",
                     "access_tokens": {DEMO_ITEMS[0].item_id: access_token_for(DEMO_ITEMS[0].item_id)}}
    with pytest.raises(ValueError):
        serve(build(days=0), "0.0.0.0", 0, out=io.StringIO())
