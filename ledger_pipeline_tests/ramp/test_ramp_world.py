"""One business, the card and bill-pay window: Ramp's transactions move from pending to cleared or declined with
the clock, statements add up and chain, bills follow the QBO books, and the bank (Plaid) shows each statement
paid and each Ramp bill payment."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from ledger_pipeline.rails.plaid.sandbox import CLIENT_ID as PLAID_ID
from ledger_pipeline.rails.plaid.sandbox import SECRET as PLAID_SECRET
from ledger_pipeline.rails.plaid.sandbox import PlaidSandbox, access_token_for
from ledger_pipeline.rails.plaid.sandbox.spec import bank_item
from ledger_pipeline.rails.ramp.sandbox import RampSandbox

from .conftest import COMPANY, build, client, own_token, read_all

REALM = COMPANY.realm_id
DAY = 86_400


def _at(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def _everything(sb: RampSandbox) -> dict[str, list[dict]]:
    http = client(sb)
    token = own_token(http)
    return {"transactions": read_all(http, token, "transactions", state="ALL"),
            "bills": read_all(http, token, "bills") + read_all(http, token, "bills", is_archived="true"),
            "statements": read_all(http, token, "statements"), "vendors": read_all(http, token, "vendors"),
            "reimbursements": read_all(http, token, "reimbursements")}


@pytest.fixture(scope="module")
def walk() -> tuple[RampSandbox, dict[str, list[dict]], dict[str, list[dict]]]:
    """A sandbox read at the clock, then four days later: (sandbox, before, after)."""
    sb = build()
    before = _everything(sb)
    sb.qbo.advance(timedelta(days=4))
    return sb, before, _everything(sb)


def test_pending_transactions_clear_or_are_declined_as_the_clock_moves(walk) -> None:
    _, before, after = walk
    now = {t["id"]: t for t in after["transactions"]}
    pending = [t for t in before["transactions"] if t["state"] == "PENDING"]
    assert pending and all(t["settlement_date"] is None and t["statement_id"] is None for t in pending)
    for t in pending:
        later = now[t["id"]]
        assert later["state"] in ("CLEARED", "DECLINED")
        assert later["user_transaction_time"] == t["user_transaction_time"]
        if later["state"] == "CLEARED":
            assert later["settlement_date"] > t["user_transaction_time"] and later["amount"] >= t["amount"]
            assert later["original_transaction_amount"]["amount"] == round(later["amount"] * 100)
        else:
            assert later["decline_details"]["reason"] and later["settlement_date"] is None
    declined = [t for t in after["transactions"] if t["state"] == "DECLINED"]
    assert declined and all(t["decline_details"] and t["statement_id"] is None for t in declined)


def test_statements_add_up_and_chain(world: RampSandbox, http: httpx.Client, token: str) -> None:
    statements = list(reversed(read_all(http, token, "statements")))  # oldest first
    txns = read_all(http, token, "transactions", state="ALL")
    previous = None
    for s in statements:
        mine = [t for t in txns if t["statement_id"] == s["id"]]
        lines = [line for line in s["statement_lines"] if line["type"] == "CARD_TRANSACTION"]
        assert mine and {t["id"] for t in mine} == {line["id"] for line in lines}
        assert s["charges"]["amount"] == sum(t["original_transaction_amount"]["amount"] for t in mine)
        assert all(t["state"] == "CLEARED" and s["start_date"] <= t["settlement_date"] < s["end_date"] for t in mine)
        money = {k: s[k]["amount"] for k in ("opening_balance", "charges", "payments", "credits", "ending_balance")}
        assert money["ending_balance"] == money["opening_balance"] + money["charges"] - money["payments"]
        assert s["balance_sections"][0]["ending_balance"]["amount"] == money["ending_balance"]
        if previous is not None:  # the previous statement was paid in full inside this one's period
            assert s["preceding_statement_id"] == previous["id"] and s["start_date"] == previous["end_date"]
            assert money["opening_balance"] == previous["ending_balance"]["amount"]
            assert money["payments"] == previous["charges"]["amount"]
            paid = [line for line in s["statement_lines"] if line["type"] == "TRANSFER_PAYMENT"]
            assert len(paid) == 1 and s["start_date"] <= paid[0]["created_at"] < s["end_date"]
        previous = s


def test_bills_follow_the_qbo_books(world: RampSandbox, http: httpx.Client, token: str) -> None:
    ramp = read_all(http, token, "bills") + read_all(http, token, "bills", is_archived="true")
    live = world.qbo.live_objects(REALM, "Bill")
    deleted = world.qbo.deleted_ids(REALM, "Bill")
    payments = world.qbo.live_objects(REALM, "BillPayment")
    start = world.qbo.searcher(REALM, world.qbo.store.view().clock_us).company.card_spend.start
    since = [b for b in live.values() if _at(b["MetaData"]["CreateTime"]) >= start]
    assert 0.2 < len(ramp) / (len(since) + len(deleted)) < 0.4  # about 30 % of the bills since Ramp
    vendors = {v["id"]: v for v in read_all(http, token, "vendors")}
    counts = {"PAID": 0, "archived": 0}
    for b in ramp:
        qbo = live.get(b["remote_id"])
        gone = qbo is None or qbo.get("PrivateNote") == "Voided"
        assert (b["archived_at"] is not None) == gone and (qbo is not None or b["remote_id"] in deleted)
        if gone:
            counts["archived"] += 1
            continue
        assert b["amount"]["amount"] == round(qbo["TotalAmt"] * 100)
        assert b["vendor"]["remote_id"] == qbo["VendorRef"]["value"]
        assert b["issued_at"][:10] == qbo["TxnDate"] and _at(b["created_at"]) > _at(qbo["MetaData"]["CreateTime"])
        assert vendors[b["vendor"]["id"]]["accounting_vendor_remote_id"] == qbo["VendorRef"]["value"]
        # Ramp pays a bill whole when the first QBO payment touching it is made, and it stays paid: a bill the books
        # closed is PAID no later than its first payment; one still open in the books may be PAID on Ramp (paid
        # in part in QBO, or its payment voided since: a difference between the rails), or OPEN, never paid.
        if b["status"] == "PAID":
            assert b["approval_status"] == "APPROVED" and b["payment"]["payment_method"] == "ACH"
            assert b["payment"]["amount"] == b["amount"] and b["paid_at"] == b["payment"]["payment_date"]
        else:
            assert b["status"] == "OPEN" and b["payment"] is None and b["paid_at"] is None
        if qbo["Balance"] == 0:
            counts["PAID"] += 1
            first = min(_at(payments[link["TxnId"]]["MetaData"]["CreateTime"]) for link in qbo["LinkedTxn"])
            assert b["status"] == "PAID" and _at(b["paid_at"]) <= first
    assert counts["PAID"] > 5 and counts["archived"] >= 1
    assert {b["vendor"]["id"] for b in ramp} == set(vendors)


def test_bills_are_approved_then_paid_as_the_clock_moves(walk) -> None:
    sb, before, after = walk
    now, later = int(sb.now.timestamp()), {b["id"]: b for b in after["bills"]}
    waiting = [b for b in before["bills"] if b["approval_status"] == "PENDING"]
    assert waiting and all(later[b["id"]]["approval_status"] == "APPROVED" for b in waiting)
    assert any(b["status"] == "OPEN" and later[b["id"]]["status"] == "PAID" for b in before["bills"])
    recent = [b for b in after["bills"] if b["status"] == "OPEN" and _at(b["created_at"]) > now - DAY]
    assert recent and all(b["approval_status"] == "PENDING" for b in recent)


def _bank(sb: RampSandbox) -> list[dict]:
    """Every transaction of the business's Checking at First Platypus Bank, as of the clock (Plaid)."""
    item = bank_item(REALM)
    plaid = PlaidSandbox(sb.qbo, (item,), rate_limit=None)
    http = httpx.Client(transport=plaid.transport(), base_url="http://plaid.test")
    body = {"client_id": PLAID_ID, "secret": PLAID_SECRET, "access_token": access_token_for(item.item_id),
            "count": 500, "options": {"include_original_description": True}}
    txns, cursor = {}, ""
    while True:
        page = http.post("/transactions/sync", json={**body, "cursor": cursor}).json()
        txns.update({t["transaction_id"]: t for t in page["added"] + page["modified"]})
        for gone in page["removed"]:
            txns.pop(gone["transaction_id"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return list(txns.values())


def test_the_bank_shows_each_statement_paid(world: RampSandbox, http: httpx.Client, token: str) -> None:
    bank = [t for t in _bank(world) if t["name"] == "RAMP CARD PAYMENT"]
    statements = {s["id"]: s for s in read_all(http, token, "statements")}
    now = int(world.now.timestamp())
    paid = [(line["created_at"], statements[s["preceding_statement_id"]]) for s in statements.values()
            for line in s["statement_lines"] if line["type"] == "TRANSFER_PAYMENT"]
    assert len(paid) >= 4
    for at, statement in paid:
        reference = statement["id"].replace("-", "")[:12].upper()
        found = [t for t in bank if reference in t["original_description"]]
        if _at(at) < now - 4 * DAY:
            assert len(found) == 1 and not found[0]["pending"], statement["id"]
        for t in found:
            assert t["amount"] == statement["charges"]["amount"] / 100 and t["authorized_date"] == at[:10]
            assert t["counterparties"] == [] or t["counterparties"][0]["name"] == "Ramp"
    assert len(bank) == len({t["original_description"] for t in bank})


def test_the_bank_shows_ramp_bill_payments_as_ramp_ach_debits(world: RampSandbox, http: httpx.Client,
                                                               token: str) -> None:
    bank = _bank(world)
    ramp_debits = {t["original_description"]: t for t in bank if t["name"].startswith("RAMP BILL PAY ")}
    checks = {(t["check_number"], t["amount"]) for t in bank if t["name"].startswith("CHECK #")}
    now = int(world.now.timestamp())
    bills, payments = world.qbo.live_objects(REALM, "Bill"), world.qbo.live_objects(REALM, "BillPayment")
    checked = 0
    for b in read_all(http, token, "bills", payment_status="PAID"):
        for link in bills[b["remote_id"]]["LinkedTxn"]:  # no bill payment of a Ramp bill is a paper check
            bp = payments[link["TxnId"]]
            assert (bp.get("DocNumber"), bp["TotalAmt"]) not in checks
        if _at(b["paid_at"]) > now - 3 * DAY:
            continue
        single = http.get(f"/developer/v1/bills/{b['id']}", headers={"Authorization": f"Bearer {token}"}).json()
        trace = single["payment"]["trace_id"]["trace_id"]
        found = [t for d, t in ramp_debits.items() if f"ID:{trace} " in d]
        assert len(found) == 1 and not found[0]["pending"], b["id"]
        assert found[0]["name"] == f"RAMP BILL PAY {b['vendor']['name'].upper()}"
        # The debit is the first QBO payment that touched the bill (it may pay several bills), posted even if the
        # books voided that payment since: Ramp moved the money.
        first = min((payments[link["TxnId"]] for link in bills[b["remote_id"]]["LinkedTxn"]),
                    key=lambda bp: (_at(bp["MetaData"]["CreateTime"]), int(bp["Id"])), default=None)
        if first is not None and _at(first["MetaData"]["CreateTime"]) == _at(b["paid_at"]):
            assert found[0]["amount"] == first["TotalAmt"]
        checked += 1
    assert checked > 5


def test_the_same_instant_renders_the_same_everywhere(walk) -> None:
    """A sandbox that walked to an instant and one built there answer the same (caches change nothing)."""
    walked, _, after = walk
    fresh = build(timedelta(days=34, hours=20))
    assert fresh.now == walked.now and _everything(fresh) == after
    assert sorted(t["original_description"] for t in _bank(fresh) if t["name"].startswith("RAMP")) == \
        sorted(t["original_description"] for t in _bank(walked) if t["name"].startswith("RAMP"))  # fmt: skip
