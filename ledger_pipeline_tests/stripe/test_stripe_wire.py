"""Stripe's wire format as plain httpx sees it: envelope, limits, order, cursors, filters, errors, events."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from ledger_pipeline.rails.stripe.sandbox import Fault, RateLimit, StripeSandbox

from .conftest import ACCOUNT, ACCOUNTS, build, client


def _all(http: httpx.Client, path: str, **params) -> list[dict]:
    out, after = [], None
    while True:
        body = http.get(path, params={"limit": 100, **params, **({"starting_after": after} if after else {})}).json()
        out += body["data"]
        if not body["has_more"]:
            return out
        after = body["data"][-1]["id"]


def test_list_envelope_default_limit_and_request_id(http: httpx.Client) -> None:
    response = http.get("/v1/charges")
    body = response.json()
    assert response.status_code == 200 and set(body) == {"object", "url", "has_more", "data"}
    assert body["object"] == "list" and body["url"] == "/v1/charges" and body["has_more"] is True
    assert len(body["data"]) == 10 and all(c["object"] == "charge" for c in body["data"])
    assert response.headers["Request-Id"].startswith("req_")
    assert response.headers["Request-Id"] != http.get("/v1/charges").headers["Request-Id"]


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_limit_outside_1_to_100_is_a_400_naming_the_param(http: httpx.Client, limit: str) -> None:
    response = http.get("/v1/charges", params={"limit": limit})
    error = response.json()["error"]
    assert response.status_code == 400 and error["type"] == "invalid_request_error" and error["param"] == "limit"
    assert response.headers["Stripe-Should-Retry"] == "false"


def test_newest_first_and_cursors_both_ways(http: httpx.Client) -> None:
    charges = _all(http, "/v1/charges")
    keys = [(c["created"], c["id"]) for c in charges]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys) > 30
    page = http.get("/v1/charges", params={"limit": 5, "starting_after": charges[9]["id"]}).json()
    assert [c["id"] for c in page["data"]] == [c["id"] for c in charges[10:15]]
    back = http.get("/v1/charges", params={"limit": 5, "ending_before": charges[9]["id"]}).json()
    assert [c["id"] for c in back["data"]] == [c["id"] for c in charges[4:9]] and back["has_more"] is True
    top = http.get("/v1/charges", params={"limit": 5, "ending_before": charges[3]["id"]}).json()
    assert [c["id"] for c in top["data"]] == [c["id"] for c in charges[:3]] and top["has_more"] is False


def test_unknown_cursor_and_unknown_id_are_resource_missing(http: httpx.Client) -> None:
    cursor = http.get("/v1/charges", params={"starting_after": "ch_nope"})
    assert cursor.status_code == 404 and cursor.json()["error"]["code"] == "resource_missing"
    assert cursor.json()["error"]["param"] == "starting_after"
    read = http.get("/v1/charges/ch_nope")
    assert read.status_code == 404 and read.json()["error"] == {
        "code": "resource_missing", "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "message": "No such charge: 'ch_nope'", "param": "id", "type": "invalid_request_error"}


def test_a_payouts_balance_transactions_are_what_the_world_swept_into_it(world: StripeSandbox,
                                                                          http: httpx.Client) -> None:
    """`?payout=po_...` lists, as any list, the transactions the world's sweep put in the payout and its own."""
    payouts = _all(http, "/v1/payouts")
    biggest = max(payouts, key=lambda p: len(_all(http, "/v1/balance_transactions", payout=p["id"])))
    listed = _all(http, "/v1/balance_transactions", payout=biggest["id"])
    with world.world(ACCOUNT) as (view, index, _):
        payout = index.find(biggest["id"], "payout")
        swept = {view.txn_id(*item) for item in (*view.flows.payouts[payout].items, ("payout", payout))}
    assert {t["id"] for t in listed} == swept and len(listed) > 3
    assert all(t["object"] == "balance_transaction" for t in listed)
    assert [t["source"] for t in listed if t["type"] == "payout"] == [biggest["id"]]
    keys = [(t["created"], t["id"]) for t in listed]
    assert keys == sorted(keys, reverse=True)
    first = http.get("/v1/balance_transactions", params={"payout": biggest["id"], "limit": 2}).json()
    assert (first["object"], first["url"], first["has_more"]) == ("list", "/v1/balance_transactions", True)
    after = http.get("/v1/balance_transactions",
                     params={"payout": biggest["id"], "limit": 2, "starting_after": first["data"][-1]["id"]}).json()
    assert [t["id"] for t in first["data"] + after["data"]] == [t["id"] for t in listed[:4]]
    newest = listed[0]["created"]
    since = _all(http, "/v1/balance_transactions", payout=biggest["id"], **{"created[gte]": str(newest)})
    assert since == [t for t in listed if t["created"] >= newest]
    missing = http.get("/v1/balance_transactions", params={"payout": "po_nope"})
    assert missing.status_code == 404 and missing.headers["Stripe-Should-Retry"] == "false"
    assert missing.json()["error"] == {
        "code": "resource_missing", "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "message": "No such payout: 'po_nope'", "param": "payout", "type": "invalid_request_error"}


def test_created_filters(http: httpx.Client) -> None:
    charges = _all(http, "/v1/charges")
    pivot = charges[len(charges) // 2]["created"]
    for params, want in (({"created[gte]": pivot}, lambda t: t >= pivot),
                         ({"created[gt]": pivot}, lambda t: t > pivot),
                         ({"created[lt]": pivot}, lambda t: t < pivot), ({"created[lte]": pivot}, lambda t: t <= pivot),
                         ({"created": pivot}, lambda t: t == pivot)):
        got = _all(http, "/v1/charges", **params)
        assert [c["id"] for c in got] == [c["id"] for c in charges if want(c["created"])], params
    bad = http.get("/v1/charges", params={"created[gte]": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "created[gte]"


def test_expand_retrieve_and_unknown_params(http: httpx.Client) -> None:
    charge = http.get("/v1/charges", params={"limit": 1, "expand[]": "data.customer"}).json()["data"][0]
    assert charge["customer"]["object"] == "customer"
    one = http.get(f"/v1/charges/{charge['id']}", params={"expand[0]": "balance_transaction"}).json()
    assert one["balance_transaction"]["source"] == charge["id"] and one["balance_transaction"]["amount"] == one["amount"]
    assert http.get("/v1/charges", params={"expand[]": "data.refunds"}).status_code == 400
    unknown = http.get("/v1/charges", params={"colour": "blue"}).json()["error"]
    assert unknown["param"] == "colour"


def test_deleted_customers_vanish_from_lists_and_read_as_stubs() -> None:
    sb = build(days=60)  # customer deletions happen 25-40 days after creation
    http = client(sb)
    with sb.world(ACCOUNT) as (view, _, now):
        gone = [c.index for c in view.flows.customers if c.deleted is not None and c.deleted <= now]
        gone_ids = {view.id_of("customer", i) for i in gone}
    assert gone_ids
    listed = {c["id"] for c in _all(http, "/v1/customers")}
    assert listed and not listed & gone_ids
    some = sorted(gone_ids)[0]
    assert http.get(f"/v1/customers/{some}").json() == {"id": some, "object": "customer", "deleted": True}
    events = _all(http, "/v1/events", type="customer.deleted")
    assert {e["data"]["object"]["id"] for e in events} <= gone_ids and events


def test_auth_account_and_method_errors() -> None:
    sb = build(days=1)
    missing = client(sb, key=None).get("/v1/charges")
    assert missing.status_code == 401 and "API key" in missing.json()["error"]["message"]
    wrong = client(sb, key="sk_test_wrong1234").get("/v1/charges")
    assert wrong.status_code == 401 and wrong.json()["error"]["message"].startswith("Invalid API Key provided")
    assert "wrong1234" not in wrong.json()["error"]["message"]
    other = client(sb, account="acct_1Nobody000000000").get("/v1/charges")
    assert other.status_code == 403 and other.json()["error"]["code"] == "account_invalid"
    assert client(sb, account=None).get("/v1/charges").status_code == 400
    assert client(sb).post("/v1/charges").status_code == 404
    assert all(r.headers["Stripe-Should-Retry"] == "false" for r in (missing, wrong, other))


def test_rate_limit_429_then_recovers() -> None:
    sb = build(days=1, rate_limit=RateLimit(per_second=3))
    http = client(sb)
    answers = [http.get("/v1/balance") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    error = answers[3].json()["error"]
    assert error["code"] == "rate_limit" and answers[3].headers["Stripe-Should-Retry"] == "true"
    other = client(sb, account=ACCOUNTS[1].account_id)
    assert other.get("/v1/balance").status_code == 200  # the limit is per account


def test_faults_per_account() -> None:
    sb = build(days=1)
    http = client(sb)
    sb.inject(ACCOUNT, Fault("lock_timeout"))
    sb.inject(ACCOUNT, Fault("server_error", status=503, after=1))
    locked = http.get("/v1/charges")
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "lock_timeout"
    assert locked.headers["Stripe-Should-Retry"] == "true"
    assert client(sb, account=ACCOUNTS[1].account_id).get("/v1/charges").status_code == 200
    down = http.get("/v1/charges")
    assert down.status_code == 503 and down.json()["error"]["type"] == "api_error"
    assert down.headers["Stripe-Should-Retry"] == "true"
    assert http.get("/v1/charges").status_code == 200
    sb.inject(ACCOUNT, Fault("malformed"))
    cut = http.get("/v1/charges")
    assert cut.status_code == 200 and cut.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        cut.json()
    sb.inject(ACCOUNT, Fault("reset"))
    with pytest.raises(httpx.ReadError):
        http.get("/v1/charges")


def test_events_keep_30_days_and_refuse_older_cursors() -> None:
    sb = build(days=45)
    http = client(sb)
    with sb.world(ACCOUNT) as (_, index, now):
        old = [e for e in index.entries["event"] if e[0] < now - 30 * 86400]
    assert old
    events = _all(http, "/v1/events")
    assert events and min(e["created"] for e in events) >= int(sb.qbo.now.timestamp()) - 30 * 86400
    aged = http.get("/v1/events", params={"starting_after": old[-1][1]})
    assert aged.status_code == 404 and aged.json()["error"]["code"] == "resource_missing"
    assert http.get(f"/v1/events/{old[-1][1]}").status_code == 404
    assert http.get("/v1/events", params={"ending_before": "evt_unknown"}).status_code == 404


def test_events_filters_and_previous_attributes(http: httpx.Client) -> None:
    events = _all(http, "/v1/events")
    kinds = {e["type"] for e in events}
    assert {"charge.succeeded", "customer.created", "payout.created", "payout.updated", "payout.paid"} <= kinds
    only = _all(http, "/v1/events", type="payout.*")
    assert only and {e["type"] for e in only} <= {"payout.created", "payout.updated", "payout.paid"}
    both = _all(http, "/v1/events", **{"types[]": ["charge.succeeded", "payout.paid"]})
    assert {e["type"] for e in both} == {"charge.succeeded", "payout.paid"}
    updates = [e for e in events if e["type"] == "payout.updated"]
    assert all(e["data"]["previous_attributes"]["status"] in ("pending", "in_transit") for e in updates)
    paid = [e for e in events if e["type"] == "payout.paid"]
    assert all(e["data"]["object"]["status"] == "paid" for e in paid)
    created = [e for e in events if e["type"] == "payout.created"]
    assert all(e["data"]["object"]["status"] == "pending" for e in created)


def test_moving_the_clock_adds_objects_and_events() -> None:
    sb = build(days=5)
    http = client(sb)
    charges, events = len(_all(http, "/v1/charges")), len(_all(http, "/v1/events"))
    sb.qbo.advance(timedelta(days=3))
    assert len(_all(http, "/v1/charges")) > charges and len(_all(http, "/v1/events")) > events
