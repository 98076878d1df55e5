"""The breaks a sandbox business holds at the sandbox's clock (world/breaks.py), named as the rails name them: the
ground truth the cross-rail reconciliation is measured against.

Each break: `kind`, `evidence` (the rail objects it is about, `{rail, entity_type, entity_id}` as the log names
them, the object the break is about first), `amount_minor` and `currency`, `occurred_at` (when the money should
have shown) and `reportable_from` (`occurred_at` + the kind's tolerance: from then on a reconciliation must
report it). A reported break finds an injected one when tenant and kind agree and every object of the injected
one's evidence is in the reported one's.

Only what has happened by the clock is listed: a payout not yet paid, a payment not yet made, is no break yet. A
payment the books voided or deleted since is no longer recorded, so its missing bank side is no break either.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from ledger_pipeline.rails.plaid.sandbox.movements import Movement
from ledger_pipeline.rails.plaid.sandbox.sources import BANK_SINCE, world_movements
from ledger_pipeline.rails.plaid.sandbox.spec import bank_item, plaid_id
from ledger_pipeline.rails.qbo.sandbox.books import DELETED, VOIDED
from ledger_pipeline.rails.qbo.sandbox.history import Company
from ledger_pipeline.rails.qbo.sandbox.render_txn import payout_id
from ledger_pipeline.rails.qbo.sandbox.sandbox import QboSandbox
from ledger_pipeline.rails.ramp.sandbox.spec import ramp_uuid
from ledger_pipeline.world.breaks import TOLERANCE
from ledger_pipeline.world.bill_pay import own_payment, through_ramp

CURRENCY = "USD"


def injected_breaks(sandbox: QboSandbox, realm_id: str, tenant_id: str) -> list[dict]:
    """Every break of the realm's business up to the sandbox's clock, oldest first."""
    with sandbox.lock:
        now_us = sandbox.store.view().clock_us
        company = sandbox.searcher(realm_id, now_us).company
        now = now_us // 1_000_000
        bank = {m.key: m for m in world_movements(company, 0, {}, now)}
        found = [*_payouts(company, now), *_card_bookings(company, now), *_payments(company, now, bank),
                 *_held_bills(company, now, bank), *_unexplained(company, now, bank)]  # fmt: skip
    found.sort(key=lambda b: (b[1], b[0], b[2][0]["entity_id"]))
    return [_row(tenant_id, kind, occurred, evidence, cents) for occurred, kind, evidence, cents in found]


Found = tuple[int, str, list[dict], int]  # (occurred_at, kind, evidence, amount_minor)


def _ref(rail: str, entity_type: str, entity_id: str) -> dict:
    return {"rail": rail, "entity_type": entity_type, "entity_id": entity_id}


def _row(tenant_id: str, kind: str, occurred: int, evidence: list[dict], cents: int) -> dict:
    return {"tenant_id": tenant_id, "kind": kind, "evidence": evidence, "amount_minor": cents, "currency": CURRENCY,
            "occurred_at": _iso(occurred), "reportable_from": _iso(occurred + TOLERANCE[kind])}  # fmt: skip


def _iso(sec: int) -> str:
    return datetime.fromtimestamp(sec, tz=UTC).isoformat()


def _payouts(company: Company, now: int) -> Iterator[Found]:
    """Paid payouts the books did not deposit, deposited gross, or the bank never showed: from the arrival on (the
    gross deposit: from its booking)."""
    deposit_of = {party: slot for slot, party in enumerate(company.books.tables["Deposit"].party)}
    for payout in company.world.payouts:
        kind = company.breaks.payout(payout.index)
        if kind is None or payout.arrival > now:
            continue
        stripe = _ref("stripe", "payout", payout_id(company, payout.index))
        if kind == "deposit_amount_mismatch":
            slot = deposit_of.get(payout.index)
            if slot is None:  # booked the next business day: not yet
                continue
            deposit = _ref("qbo", "Deposit", str(slot + 1))
            created = company.books.tables["Deposit"].created[slot]
            yield created, kind, [deposit, stripe], company.world.payout_fees(payout.index)
        else:
            yield payout.arrival, kind, [stripe], payout.amount


def _card_bookings(company: Company, now: int) -> Iterator[Found]:
    """Cleared card transactions the books never booked (from the clearing on) or booked twice (from the second
    booking on)."""
    purchases = company.books.tables["Purchase"]
    booked: dict[str, list[int]] = {}
    for slot, txn in enumerate(company.books.card_purchases):
        booked.setdefault(txn.transaction_id, []).append(slot)
    for txn in company.card_spend.transactions(now):
        kind = company.breaks.card(txn.transaction_id) if txn.cleared is not None else None
        if kind is None or txn.cleared > now:
            continue
        ramp = _ref("ramp", "transaction", txn.transaction_id)
        if kind == "card_spend_not_booked":
            yield txn.cleared, kind, [ramp], txn.cents
        elif len(booked.get(txn.transaction_id, ())) == 2:
            first, second = booked[txn.transaction_id]
            yield (purchases.created[second], kind,
                   [_ref("qbo", "Purchase", str(second + 1)), ramp, _ref("qbo", "Purchase", str(first + 1))],
                   txn.cents)  # fmt: skip


def _payments(company: Company, now: int, bank: dict[str, Movement]) -> Iterator[Found]:
    """Customer payments and bill payments the books record and the bank never shows, or shows for another amount:
    from the payment on (a missing one) or from the bank's posting (another amount)."""
    checking = bank_item(company.spec.realm_id)
    cards = {card.payment_slot for card in company.books.card_payments}
    payments = company.books.tables["Payment"]
    for slot in _recorded_since(payments, BANK_SINCE, now):
        kind = company.breaks.payment(slot)
        if kind is None or slot in cards or payments.total[slot] <= 0:
            continue
        qbo = _ref("qbo", "Payment", str(slot + 1))
        if kind == "payment_recorded_not_in_bank":
            yield payments.created[slot], kind, [qbo], payments.total[slot]
            continue
        movement = bank.get(f"payment|{slot}")
        posted_by_now = movement is not None and movement.posted_at is not None and movement.posted_at <= now
        if not posted_by_now or movement.look.kind != "ach_credit":
            continue  # not yet at the bank; or a check, which the world never shows for another amount
        posted = _bank_txn(company, checking.item_id, movement.key)
        yield movement.posted_at, kind, [posted, qbo], payments.total[slot] - abs(movement.amount)
    bill_payments, bills = company.books.tables["BillPayment"], company.books.tables["Bill"]
    for slot in _recorded_since(bill_payments, BANK_SINCE, now):
        if company.breaks.bill_payment(slot) is None or bill_payments.total[slot] <= 0:
            continue
        if any(through_ramp(company.seed, company.spec.realm_id, bill, bills.created[bill], company.card_spend.start)
               for bill in bill_payments.paid.get(slot, ())):  # Ramp's ACH always reaches the bank
            continue
        yield (bill_payments.created[slot], "payment_recorded_not_in_bank",
               [_ref("qbo", "BillPayment", str(slot + 1))], bill_payments.total[slot])  # fmt: skip


def _held_bills(company: Company, now: int, bank: dict[str, Movement]) -> Iterator[Found]:
    """Ramp bills Ramp paid on its own date while the books hold them open: from Ramp's payment on (the bank's
    debit is evidence once posted)."""
    checking, bills = bank_item(company.spec.realm_id), company.books.tables["Bill"]
    for slot in sorted(company.books.ap.held):
        paid, _ = own_payment(company.seed, company.spec.realm_id, slot, bills.created[slot])
        if paid > now:
            continue
        evidence = [_ref("ramp", "bill", ramp_uuid(company.seed, company.spec.realm_id, "bill", slot)),
                    _ref("qbo", "Bill", str(slot + 1))]
        posted = bank[f"held_bill|{slot}"].posted_at
        if posted is not None and posted <= now:
            evidence.append(_bank_txn(company, checking.item_id, f"held_bill|{slot}"))
        yield paid, "bill_paid_not_recorded", evidence, bills.total[slot]


def _recorded_since(table, since: int, now: int) -> Iterator[int]:  # noqa: ANN001 (books.Table)
    """Slots created in [since, now] and still recorded (neither voided nor deleted) at the clock."""
    for slot in range(len(table)):
        created = table.created[slot]
        if since <= created <= now and not table.flags[slot] & (VOIDED | DELETED):
            yield slot


def _unexplained(company: Company, now: int, bank: dict[str, Movement]) -> Iterator[Found]:
    """The bank's ACH debits nobody accounts for, from their posting on (a pending one is no evidence)."""
    checking = bank_item(company.spec.realm_id)
    for key, movement in bank.items():
        if key.startswith("unexplained|") and movement.posted_at is not None and movement.posted_at <= now:
            yield (movement.posted_at, "bank_txn_unexplained", [_bank_txn(company, checking.item_id, key)],
                   movement.amount)  # fmt: skip


def _bank_txn(company: Company, item_id: str, key: str) -> dict:
    """The bank's posted transaction of a movement (rails/plaid/sandbox/bank.py names it so)."""
    return _ref("plaid", "transaction", plaid_id(company.seed, item_id, "transaction", key, "posted"))


def score(reported: list[dict], injected: list[dict], now: str) -> tuple[list[dict], list[dict], list[dict]]:
    """(found, missed, false): the injected breaks due by `now` (ISO) that a report finds, those it misses, and the
    reported breaks no injected one accounts for. A report finds an injected break when tenant and kind agree and
    every object of the injected evidence is in the reported evidence; both are dicts with `tenant_id`, `kind`,
    `evidence`."""

    def refs(found: dict) -> set[tuple]:
        return {(e["rail"], e["entity_type"], e["entity_id"]) for e in found["evidence"]}

    def finds(report: dict, truth: dict) -> bool:
        same = (report["tenant_id"], report["kind"]) == (truth["tenant_id"], truth["kind"])
        return same and refs(truth) <= refs(report)

    due = [b for b in injected if b["reportable_from"] <= now]
    found = [b for b in due if any(finds(r, b) for r in reported)]
    missed = [b for b in due if not any(finds(r, b) for r in reported)]
    false = [r for r in reported if not any(finds(r, b) for b in injected)]
    return found, missed, false
