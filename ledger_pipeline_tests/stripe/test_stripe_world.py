"""One business, two windows: Stripe's charges and payouts agree with QBO's card payments and Deposits."""

from __future__ import annotations

from datetime import timedelta

import httpx

from ledger_pipeline.rails.qbo.sandbox.history import GENESIS_SEC
from ledger_pipeline.rails.stripe.sandbox import StripeSandbox
from ledger_pipeline.world.flows import stripe_fee

from .conftest import ACCOUNT, ACCOUNTS, COMPANIES, build, client
from .test_stripe_wire import _all

REALM = COMPANIES[0].realm_id


def test_charges_are_the_books_card_payments(world: StripeSandbox, http: httpx.Client) -> None:
    with world.qbo.lock:
        cards = list(world.qbo.searcher(REALM, world.qbo.store.view().clock_us).company.books.card_payments)
    charges = {c["metadata"]["qbo_payment_id"]: c for c in _all(http, "/v1/charges", **{"expand[]": "data.customer"})}
    assert len(charges) == len(cards) > 30
    payments = world.qbo.live_objects(REALM, "Payment")
    for card in cards:
        charge = charges[str(card.payment_slot + 1)]
        assert charge["amount"] == card.cents and charge["created"] == card.created
        assert charge["metadata"]["qbo_customer_id"] == str(card.customer_slot + 1)
        customer = charge["customer"]
        assert customer.get("deleted") or customer["metadata"]["qbo_customer_id"] == str(card.customer_slot + 1)
        payment = payments.get(str(card.payment_slot + 1))
        if payment is not None and payment.get("PrivateNote") != "Voided":
            assert round(payment["TotalAmt"] * 100) == charge["amount"]
            assert payment["CustomerRef"]["value"] == charge["metadata"]["qbo_customer_id"]
    share = len(cards) / sum(1 for p in payments.values() if p["MetaData"]["CreateTime"] >= "2026-08")
    assert 0.2 < share < 0.7  # about 40 % of customer payments are card payments


def test_fees_refunds_and_disputes_reach_the_balance_transactions(http: httpx.Client) -> None:
    txns = {t["source"]: t for t in _all(http, "/v1/balance_transactions")}
    charges = _all(http, "/v1/charges")
    for charge in charges:
        txn = txns[charge["id"]]
        assert txn["fee"] == stripe_fee(charge["amount"]) and txn["net"] == charge["amount"] - txn["fee"]
        assert txn["available_on"] >= charge["created"] + 86400 and txn["type"] == "charge"
    refunds = _all(http, "/v1/refunds")
    assert refunds, "a few percent of charges are refunded"
    by_id = {c["id"]: c for c in charges}
    for refund in refunds:
        charge = by_id[refund["charge"]]
        assert charge["amount_refunded"] == refund["amount"]
        assert charge["refunded"] == (refund["amount"] == charge["amount"])
        assert txns[refund["id"]]["net"] == -refund["amount"] and refund["created"] > charge["created"]


def test_each_paid_payout_sums_its_transactions_and_has_a_qbo_deposit(world: StripeSandbox,
                                                                       http: httpx.Client) -> None:
    payouts = _all(http, "/v1/payouts")
    paid = [p for p in payouts if p["status"] == "paid"]
    assert paid and {p["status"] for p in payouts} <= {"pending", "in_transit", "paid"}
    deposits = {d["PrivateNote"].split()[-1]: d for d in world.qbo.live_objects(REALM, "Deposit").values()}
    now = int(world.qbo.now.timestamp())
    for payout in payouts:
        txns = _all(http, "/v1/balance_transactions", payout=payout["id"])
        assert sum(t["net"] for t in txns if t["type"] != "payout") == payout["amount"] > 0
        assert all(t["available_on"] <= payout["created"] for t in txns)
        assert payout["arrival_date"] - payout["created"] >= 2 * 86400 - 3600 and payout["automatic"] is True
        deposit = deposits.get(payout["id"])
        if deposit is not None:
            assert round(deposit["TotalAmt"] * 100) == payout["amount"] and payout["status"] == "paid"
            assert deposit["Line"][0]["DetailType"] == "DepositLineDetail"
            assert deposit["DepositToAccountRef"]["name"] == "Checking"
        elif payout["status"] == "paid":
            assert now - payout["arrival_date"] < 4 * 86400  # booked the next business day, during working hours
    assert len(deposits) > len(paid) // 2


def test_balance_is_the_transactions_not_yet_paid_out(world: StripeSandbox, http: httpx.Client) -> None:
    txns = _all(http, "/v1/balance_transactions")
    balance = http.get("/v1/balance").json()
    available = sum(t["net"] for t in txns if t["status"] == "available")
    pending = sum(t["net"] for t in txns if t["status"] == "pending")
    assert balance["available"][0]["amount"] == available and balance["pending"][0]["amount"] == pending > 0
    paid_out = {t["id"] for p in _all(http, "/v1/payouts")
                for t in _all(http, "/v1/balance_transactions", payout=p["id"])}
    assert sum(t["net"] for t in txns if t["id"] not in paid_out) == available + pending


def test_qbo_serves_deposits_by_query_read_and_cdc(world: StripeSandbox) -> None:
    from ledger_pipeline.rails.qbo.sandbox import SANDBOX_BASE_URL, SANDBOX_TOKEN_URL, sandbox_credentials
    qbo = world.qbo
    with httpx.Client(transport=qbo.transport(), base_url=SANDBOX_BASE_URL) as http:
        client_id, secret, refresh = sandbox_credentials(REALM)
        token = http.post(SANDBOX_TOKEN_URL, auth=(client_id, secret),
                          data={"grant_type": "refresh_token", "refresh_token": refresh}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        count = http.get(f"/v3/company/{REALM}/query", headers=auth,
                         params={"query": "SELECT COUNT(*) FROM Deposit"}).json()["QueryResponse"]["totalCount"]
        assert count == len(qbo.live_objects(REALM, "Deposit")) > 3
        page = http.get(f"/v3/company/{REALM}/query", headers=auth, params={
            "query": "SELECT * FROM Deposit WHERE MetaData.LastUpdatedTime >= '2026-10-01T00:00:00Z' "
                     "ORDERBY MetaData.LastUpdatedTime"}).json()["QueryResponse"]["Deposit"]
        assert page and all(d["PrivateNote"].startswith("Stripe payout po_") for d in page)
        one = http.get(f"/v3/company/{REALM}/deposit/{page[0]['Id']}", headers=auth).json()["Deposit"]
        assert one == page[0]
        body = http.get(f"/v3/company/{REALM}/cdc", headers=auth, params={
            "entities": "Deposit,Payment", "changedSince": "2026-10-05T00:00:00Z"}).json()
        sections = body["CDCResponse"][0]["QueryResponse"]
        deposits = sections[0]["Deposit"]
        assert deposits and all(d["MetaData"]["CreateTime"] >= "2026-10-04" for d in deposits)


def test_two_sandboxes_with_one_seed_answer_the_same() -> None:
    a, b = client(build(days=12)), client(build(days=12))
    for path in ("/v1/charges?limit=100", "/v1/payouts?limit=100", "/v1/events?limit=100", "/v1/balance",
                 "/v1/balance_transactions?limit=100", "/v1/customers?limit=100"):
        assert a.get(path).content == b.get(path).content, path
    other = client(build(days=12), account=ACCOUNTS[1].account_id)
    assert other.get("/v1/charges?limit=100").content != a.get("/v1/charges?limit=100").content


def test_stepping_the_clock_gives_the_same_world_as_jumping() -> None:
    stepped = build(days=4)
    for _ in range(6):
        client(stepped).get("/v1/events")
        stepped.qbo.advance(timedelta(hours=17))
    jumped = build(days=4)
    jumped.qbo.advance(timedelta(hours=17 * 6))
    for path in ("/v1/charges?limit=100", "/v1/events?limit=100", "/v1/payouts?limit=100", "/v1/balance"):
        assert client(stepped).get(path).content == client(jumped).get(path).content, path
    assert int(stepped.qbo.now.timestamp()) > GENESIS_SEC


def test_account_ids_are_stable() -> None:
    from ledger_pipeline.rails.stripe.sandbox import DEMO_ACCOUNTS
    from ledger_pipeline.rails.stripe.sandbox.spec import account_id_for
    for account in DEMO_ACCOUNTS:
        word = account.account_id[6:6 + len(account.business_name.split()[0])]
        assert account.account_id == account_id_for(account.realm_id, word) and len(account.account_id) == 21
    assert ACCOUNT.startswith("acct_1Small")
