"""One business, the bank's window: Plaid's transactions follow the QBO books and the Stripe payouts, pending
turns into posted the way Plaid does it, and balances move by exactly what posted."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from ledger_pipeline.rails.plaid.sandbox import PlaidSandbox, access_token_for
from ledger_pipeline.rails.qbo.sandbox.history import GENESIS_SEC
from ledger_pipeline.rails.qbo.sandbox.render_txn import payout_id

from .conftest import BANK, CARD, COMPANIES, OTHER, apply, build, client, post, sync_all

REALM = COMPANIES[0].realm_id
DAY = 86_400


def _cents(value: float) -> int:
    return int(Decimal(str(value)) * 100)


@pytest.fixture(scope="module")
def walk() -> tuple[PlaidSandbox, list[tuple[int, list[dict]]]]:
    """A sandbox whose clock went from day 6 to day 36 a day at a time, synced incrementally after each step
    with small pages: [(clock, pages)]; the first entry is the full read at day 6."""
    sb = build(days=6)
    http = client(sb)
    pages, cursor = sync_all(http, count=50)
    steps = [(int(sb.qbo.now.timestamp()), pages)]
    for _ in range(30):
        sb.qbo.advance(timedelta(days=1))
        pages, cursor = sync_all(http, cursor=cursor, count=7)
        steps.append((int(sb.qbo.now.timestamp()), pages))
    return sb, steps


def test_pending_becomes_a_new_posted_transaction_and_goes_in_the_same_sync(walk) -> None:
    _, steps = walk
    seen = apply({}, steps[0][1])
    pairs = split = 0
    for _, pages in steps[1:]:
        removed = {r["transaction_id"]: i for i, p in enumerate(pages) for r in p["removed"]}
        for i, page in enumerate(pages):
            for txn in page["added"]:
                pending_id = txn["pending_transaction_id"]
                if pending_id is not None and pending_id in seen:  # (one that came and went unseen: nothing)
                    assert txn["pending"] is False and pending_id in removed, txn
                    pending = seen[pending_id]
                    assert pending["pending"] is True and pending["account_id"] == txn["account_id"]
                    pairs += 1
                    split += removed[pending_id] != i
        apply(seen, pages)
    assert pairs > 20 and split > 0  # pairs cut by a page boundary too (count=7)


def test_cancelled_pendings_are_removed_and_never_post() -> None:
    ahead = build(days=20)
    cancelled = []
    for item in (BANK, OTHER):
        with ahead.world(item.item_id) as (feed, _):
            cancelled += [(m, item) for m in feed.movements if m.pending_at is not None and m.posted_at is None
                          and m.pending_at > GENESIS_SEC + DAY]
    assert cancelled, "~5 % of debit-card pendings (and payments voided in QBO before posting) are cancelled"
    m, item = cancelled[0]
    pending_id = ahead._cache(item).txn_id(m.key, "pending")
    token = access_token_for(item.item_id)
    sb = build(days=0)
    http = client(sb)
    sb.qbo.set_clock(datetime.fromtimestamp(m.pending_at, tz=timezone.utc))
    pages, cursor = sync_all(http, token)
    assert pending_id in apply({}, pages)
    sb.qbo.set_clock(datetime.fromtimestamp(m.ended_at, tz=timezone.utc))
    pages, cursor = sync_all(http, token, cursor=cursor, count=3)
    assert pending_id in {r["transaction_id"] for p in pages for r in p["removed"]}
    sb.qbo.advance(timedelta(days=10))
    later = [t for p in sync_all(http, token, cursor=cursor)[0] for t in p["added"]]
    assert later and pending_id not in {t["pending_transaction_id"] for t in later}


def test_the_card_bank_sends_no_pending(world: PlaidSandbox, http: httpx.Client) -> None:
    pages, _ = sync_all(http, access_token_for(CARD.item_id))
    txns = [t for p in pages for t in p["added"]]
    assert len(txns) > 10 and not any(t["pending"] or t["pending_transaction_id"] for t in txns)
    purchases = [t for t in txns if t["amount"] > 0]
    payments = [t for t in txns if t["amount"] < 0]
    assert purchases and payments and all(t["name"] == "PAYMENT - THANK YOU" for t in payments)
    bank = [t for p in sync_all(http)[0] for t in p["added"]]
    for payment in payments:  # the card's monthly payment is a debit on Checking the same day
        assert any(t["amount"] == -payment["amount"] and t["date"] == payment["date"] for t in bank)


def test_late_modifications_enrich_but_never_change_amounts(walk) -> None:
    _, steps = walk
    state: dict[str, dict] = {}
    modified = 0
    for _, pages in steps:
        for page in pages:
            for txn in page["modified"]:
                before = state[txn["transaction_id"]]
                assert txn["amount"] == before["amount"] and txn["date"] == before["date"]
                assert before["personal_finance_category"]["confidence_level"] == "LOW"
                assert txn != before and txn["personal_finance_category"]["confidence_level"] == "VERY_HIGH"
                modified += 1
            apply(state, [page])
    posted = sum(1 for t in state.values() if not t["pending"])
    assert 0 < modified < posted * 0.2


def test_stripe_payouts_arrive_as_credits_after_their_arrival_date(world: PlaidSandbox, http: httpx.Client) -> None:
    pages, _ = sync_all(http, options={"include_original_description": True})
    txns = [t for p in pages for t in p["added"]]
    now = int(world.qbo.now.timestamp())
    with world.qbo.lock:
        company = world.qbo.searcher(REALM, world.qbo.store.view().clock_us).company
        payouts = [(payout_id(company, p.index), p.amount, p.arrival) for p in company.world.payouts]
    posted = pending = 0
    for pid, amount, arrival in payouts:
        found = [t for t in txns if f"ST-{pid[3:15]}" in (t["original_description"] or "")]
        if arrival + DAY * 4 < now:
            assert len(found) == 1 and found[0]["pending"] is False, pid
        for txn in found:
            assert txn["amount"] == -amount / 100 and txn["name"] == "STRIPE TRANSFER"
            assert txn["counterparties"] == [] or txn["counterparties"][0]["name"] == "Stripe"
            assert txn["authorized_date"] == _date(arrival)
            assert txn["pending"] or txn["date"] > _date(arrival)
            posted += not txn["pending"]
            pending += txn["pending"]
    assert posted > 10 and pending >= 0
    plain = post(http, "/transactions/sync", count=5).json()["added"]
    assert all(t["original_description"] is None for t in plain)


def _date(sec: int) -> str:
    return datetime.fromtimestamp(sec, tz=timezone.utc).date().isoformat()


def test_bill_payments_are_debits_with_their_check_numbers(world: PlaidSandbox, http: httpx.Client) -> None:
    txns = [t for p in sync_all(http)[0] for t in p["added"]]
    checks = {(t["check_number"], t["amount"]): t for t in txns if t["name"].startswith("CHECK #")}
    ramp = {(t["amount"], t["name"]) for t in txns if t["name"].startswith("RAMP BILL PAY ")}  # tests/ramp
    now = world.qbo.now.isoformat()[:10]
    matched = 0
    for bp in world.qbo.live_objects(REALM, "BillPayment").values():
        number, created = bp.get("DocNumber"), bp["MetaData"]["CreateTime"]
        if number is None or created < "2026-09-15" or bp.get("PrivateNote") == "Voided" or bp["TotalAmt"] == 0:
            continue
        if (bp["TotalAmt"], f"RAMP BILL PAY {bp['VendorRef']['name'].upper()}") in ramp:
            continue  # it settled a bill run through Ramp bill pay: Ramp's ACH debit, not a check
        if created[:10] < _date(int(world.qbo.now.timestamp()) - 11 * DAY):
            txn = checks[(number, bp["TotalAmt"])]
            assert txn["amount"] == bp["TotalAmt"] and txn["pending"] is False and txn["check_number"] == number
            assert txn["date"] > created[:10] and txn["date"] <= now
            matched += 1
    assert matched > 5
    assert all(t["amount"] > 0 for t in checks.values())


def test_current_moves_by_exactly_what_posted(walk) -> None:
    _, steps = walk
    accounts = {a["account_id"]: a for a in steps[0][1][-1]["accounts"]}
    for _, pages in steps[1:]:
        flows: dict[str, int] = {}
        for page in pages:
            for txn in page["added"]:
                if not txn["pending"]:
                    flows[txn["account_id"]] = flows.get(txn["account_id"], 0) + _cents(txn["amount"])
        now = {a["account_id"]: a for a in pages[-1]["accounts"]}
        for account_id, account in now.items():
            moved = _cents(account["balances"]["current"]) - _cents(accounts[account_id]["balances"]["current"])
            assert moved == -flows.get(account_id, 0), account_id
            assert account["balances"]["available"] <= account["balances"]["current"]
        accounts = now


def test_card_balance_is_the_amount_owed(world: PlaidSandbox, http: httpx.Client) -> None:
    pages, _ = sync_all(http, access_token_for(CARD.item_id))
    owed = sum(_cents(t["amount"]) for p in pages for t in p["added"])
    card = post(http, "/accounts/get", access_token_for(CARD.item_id)).json()["accounts"][0]["balances"]
    assert _cents(card["current"]) == owed and _cents(card["available"]) == _cents(card["limit"]) - owed


def test_two_sandboxes_built_alike_answer_byte_identical_bodies() -> None:
    a, b = client(build(days=9)), client(build(days=9))
    for path, body in (("/transactions/sync", {"count": 500}), ("/accounts/balance/get", {}), ("/item/get", {}),
                       ("/transactions/sync", {"count": 3, "options": {"include_original_description": True}})):
        assert post(a, path, **body).content == post(b, path, **body).content, path


def test_an_incremental_sync_equals_a_full_reread() -> None:
    sb = build(days=8)
    http = client(sb)
    pages, cursor = sync_all(http, count=100)
    state = apply({}, pages)
    for step in (timedelta(hours=7), timedelta(days=3), timedelta(days=9)):
        sb.qbo.advance(step)
        pages, cursor = sync_all(http, cursor=cursor, count=11)
        apply(state, pages)
        full = apply({}, sync_all(http, count=500)[0])
        assert state == full and len(full) > 100
    jumped = build(days=20)
    jumped.qbo.advance(timedelta(hours=7))
    assert apply({}, sync_all(client(jumped), count=500)[0]) == state  # stepping the clock = jumping
