"""The books' view of the corporate card spend: one Purchase per cleared Ramp transaction, booked by the clock.

The expected bookings come from the world module itself (a pure function of seed, realm and instant), not from
the sandbox, so these tests hold the sandbox to the same story the card rail tells.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx

from ledger_pipeline.rails.qbo.sandbox import CompanySpec, QboSandbox
from ledger_pipeline.rails.qbo.sandbox.history import CARDS_SINCE
from ledger_pipeline.rails.qbo.sandbox.names import CARD_EXPENSE_ACCOUNTS
from ledger_pipeline.rails.qbo.sandbox.timefmt import iso_seconds, local_date
from ledger_pipeline.world.card_spend import MERCHANTS, CardSpend, CardTransaction

REALM = "9130350000000101"


def card_spend(sb: QboSandbox, realm: str = REALM) -> CardSpend:
    spec = sb.specs[realm]
    return CardSpend(sb.seed, spec.realm_id, spec.size, spec.offset_minutes, CARDS_SINCE)


def now_sec(sb: QboSandbox) -> int:
    return int(sb.now.timestamp())


def ramp_id(purchase: dict) -> str:
    note = purchase["PrivateNote"]
    assert note.startswith("Ramp txn "), note
    return note.removeprefix("Ramp txn ")


def query(api: httpx.Client, text: str) -> dict:
    response = api.get(f"/v3/company/{REALM}/query", params={"query": text})
    assert response.status_code == 200, response.text
    return response.json()["QueryResponse"]


def test_one_purchase_per_cleared_transaction_the_books_recorded_none_for_declined_or_pending(sandbox) -> None:
    sandbox.advance(timedelta(hours=54))  # an instant with declined, pending and cleared-but-unbooked spend
    spend, now = card_spend(sandbox), now_sec(sandbox)
    states: dict[str, list[CardTransaction]] = {}
    for txn in spend.transactions(now):
        state = txn.state(now)
        states.setdefault("UNBOOKED" if state == "CLEARED" and txn.booked > now else state, []).append(txn)
    counts = {state: len(found) for state, found in states.items()}
    assert all(counts.get(s) for s in ("CLEARED", "DECLINED", "PENDING", "UNBOOKED")), counts

    purchases = sandbox.live_objects(REALM, "Purchase")
    by_ramp = {ramp_id(p): p for p in purchases.values()}
    booked = spend.bookings(now)
    assert len(by_ramp) == len(purchases) == len(booked) == len(states["CLEARED"])
    assert [ramp_id(purchases[str(i)]) for i in range(1, len(purchases) + 1)] == [t.transaction_id for t in booked]
    unbooked = states["DECLINED"] + states["PENDING"] + states["UNBOOKED"]
    assert not {t.transaction_id for t in unbooked} & by_ramp.keys()

    accounts = sandbox.live_objects(REALM, "Account")
    offset = sandbox.specs[REALM].offset_minutes
    for txn in booked:
        purchase = by_ramp[txn.transaction_id]
        assert Decimal(str(purchase["TotalAmt"])) == Decimal(txn.cents).scaleb(-2)
        assert purchase["PaymentType"] == "CreditCard" and purchase["Credit"] is False
        assert purchase["TxnDate"] == local_date(txn.authorized, offset).isoformat()
        assert purchase["MetaData"]["CreateTime"] == iso_seconds(txn.booked, offset)
        assert purchase["SyncToken"] == "0" and purchase["CurrencyRef"]["value"] == "USD"
        (line,) = purchase["Line"]
        merchant, _, kind, _, _ = MERCHANTS[txn.merchant]
        assert line["Amount"] == purchase["TotalAmt"] and line["Description"] == merchant
        assert line["DetailType"] == "AccountBasedExpenseLineDetail"
        assert line["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] == str(CARD_EXPENSE_ACCOUNTS[kind])
        card = accounts[purchase["AccountRef"]["value"]]
        assert (card["Name"], card["AccountType"], card["Classification"]) == ("Ramp Card", "Credit Card", "Liability")
    assert any(t.cents != t.pending_cents for t in booked), "no tipped restaurant spend: the cleared amount is untested"


def test_the_ramp_card_account_is_the_last_and_the_replay_never_touches_it(sandbox) -> None:
    sandbox.advance(timedelta(days=20))
    accounts = sandbox.live_objects(REALM, "Account")
    last = str(max(map(int, accounts)))
    assert accounts[last]["Name"] == "Ramp Card" and accounts[last]["Active"] is True
    assert accounts[last]["SyncToken"] == "0"
    assert {p["AccountRef"]["value"] for p in sandbox.live_objects(REALM, "Purchase").values()} == {last}


def test_advancing_the_clock_books_new_purchases_through_query_and_cdc(sandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    before, mark = sandbox.live_objects(REALM, "Purchase"), now_sec(sandbox)
    assert query(api, "SELECT COUNT(*) FROM Purchase")["totalCount"] == len(before) > 0

    sandbox.advance(timedelta(days=6))
    api = qbo_api(sandbox, REALM)  # the first token expired with the clock
    fresh = card_spend(sandbox).bookings_between(mark, now_sec(sandbox))
    assert fresh, "six days and nothing booked"
    after = sandbox.live_objects(REALM, "Purchase")
    assert after.keys() - before.keys() == {str(len(before) + i) for i in range(1, len(fresh) + 1)}
    assert all(after[i] == before[i] for i in before), "a booked Purchase never changes"

    since = iso_seconds(mark + 1, sandbox.specs[REALM].offset_minutes)
    where = f"FROM Purchase WHERE MetaData.LastUpdatedTime >= '{since}'"
    paged: list[dict] = []
    while page := query(api, f"SELECT * {where} ORDERBY MetaData.LastUpdatedTime "
                             f"STARTPOSITION {len(paged) + 1} MAXRESULTS 2").get("Purchase"):
        paged += page
    assert [ramp_id(p) for p in paged] == [t.transaction_id for t in fresh]
    assert query(api, f"SELECT COUNT(*) {where}")["totalCount"] == len(fresh)
    newest = query(api, f"SELECT * {where} ORDERBY MetaData.LastUpdatedTime DESC MAXRESULTS 1")["Purchase"]
    assert newest == [after[str(len(after))]]
    by_id = query(api, f"SELECT * FROM Purchase WHERE Id IN ('1', '{len(after)}') ORDERBY Id")["Purchase"]
    assert by_id == [after["1"], after[str(len(after))]]
    read = api.get(f"/v3/company/{REALM}/purchase/{len(after)}")
    assert read.json()["Purchase"] == after[str(len(after))]

    cdc = api.get(f"/v3/company/{REALM}/cdc", params={"entities": "Purchase,Deposit", "changedSince": since})
    sections = cdc.json()["CDCResponse"][0]["QueryResponse"]
    assert [ramp_id(p) for p in sections[0]["Purchase"]] == [t.transaction_id for t in fresh]


def test_booking_position_by_position_equals_booking_everything_at_once() -> None:
    """The books read the card spend a window at a time; whatever the windows and the offset, nothing is missed
    or booked twice."""
    for offset in ("-08:00", "+00:00", "-12:00", "+14:00"):
        spec = CompanySpec("9130350000000107", "Windows Co", size=4000, utc_offset=offset)
        spend = CardSpend(3, spec.realm_id, spec.size, spec.offset_minutes, CARDS_SINCE)
        end = CARDS_SINCE + 220 * 86400
        cuts = [CARDS_SINCE - 1, *range(CARDS_SINCE + 3600, end, 86400 * 3 // 7), end]
        pieces = [t for a, b in zip(cuts, cuts[1:]) for t in spend.bookings_between(a, b)]
        assert pieces == spend.bookings(end), offset


def test_purchases_are_the_same_in_every_replay(sandbox) -> None:
    """Going back replays the books from scratch: the Purchases come back identical, the later ones gone."""
    sandbox.advance(timedelta(days=2))
    at_two_days = sandbox.live_objects(REALM, "Purchase")
    sandbox.advance(timedelta(days=5))
    assert len(sandbox.live_objects(REALM, "Purchase")) > len(at_two_days)
    sandbox.set_clock(sandbox.now - timedelta(days=5))
    assert sandbox.live_objects(REALM, "Purchase") == at_two_days
    twin = QboSandbox(sandbox.companies, seed=11, rate_limit=None)
    twin.set_clock(sandbox.now)
    assert twin.live_objects(REALM, "Purchase") == at_two_days
