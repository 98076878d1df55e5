"""The business's own money at the bank, from the shared world: Stripe payouts arriving, customer checks and
ACH credits, the checks and ACH debits that pay vendor bills (Ramp's ACH debit when the payment settled a bill the
business runs through Ramp bill pay, world/bill_pay.py, and Ramp's ACH debit for a bill it paid on its own date),
and each Ramp card statement paid in full, all on the Checking account.

Everything about one payment that never changes (its delays, its check number) comes from an RNG seeded by
the payment alone and is cached; only the QBO flags (voided, deleted) and their time are read at each clock:
a payment voided or deleted before the bank posted it never posts (its pending is removed at that moment); one
voided or deleted after it posted stays, because the money moved, and the bank returns it (a bounced check or
deposit, an ACH return: `RETURN ...` naming the same payment) the next business day, so clean books and their
bank still agree. Ramp's bill-pay ACH leaves the bank whatever the books do next, and is returned alike.

A business with breaks (world/breaks.py) also shows what its bank gets wrong on purpose: payouts and payments that
never arrive, a customer payment for another amount, and ACH debits nobody accounts for.
"""

from __future__ import annotations

from typing import Iterator

from ledger_pipeline.rails.qbo.sandbox import names as N
from ledger_pipeline.rails.qbo.sandbox.books import Table
from ledger_pipeline.rails.qbo.sandbox.history import CARDS_SINCE, Company
from ledger_pipeline.rails.qbo.sandbox.render import customer_display
from ledger_pipeline.rails.qbo.sandbox.render_txn import payout_id, render_bill_payment, render_payment
from ledger_pipeline.world.bill_pay import ach_trace, own_payment, through_ramp
from ledger_pipeline.world.calendar import DAY, business_days_after, midnight, seeded_rng

from .movements import Look, Movement

BANK_SINCE = CARDS_SINCE  # the bank history starts when the card history does: 180 days before GENESIS
HOUR = 3600
UNEXPLAINED_PAYEES = ("NORTHGATE SERVICES", "ACH WDRL ONLINE PMT", "BRIGHTLINE HOLDINGS", "PAYSAFE ADJ")


def world_movements(company: Company, account: int, static: dict, now: int) -> Iterator[Movement]:
    """Every movement the books and the card money put on Checking, as known at `now` (cancellations applied).

    `static` caches the parts of each that never change, per (source, index)."""
    yield from _payouts(company, account, static)
    cards = {card.payment_slot for card in company.books.card_payments}
    yield from _payments(company, account, static, company.books.tables["Payment"], cards)
    yield from _bill_payments(company, account, static, company.books.tables["BillPayment"])
    yield from _held_bills(company, account, static)
    yield from _ramp_statements(company, account, static, now)
    yield from unexplained_debits(company, account, now)


def _payouts(company: Company, account: int, static: dict) -> Iterator[Movement]:
    seed, realm = company.seed, company.spec.realm_id
    business = company.spec.name.upper()
    for payout in company.world.payouts:
        if company.breaks.payout(payout.index) == "payout_not_in_bank":
            continue
        base = static.get(("payout", payout.index))
        if base is None:
            rng = seeded_rng(seed, realm, "bank payout", payout.index)
            pid = payout_id(company, payout.index)
            pending = payout.arrival + rng.randrange(2 * HOUR, 9 * HOUR)
            posted = business_days_after(payout.arrival, rng.choice((1, 2))) + rng.randrange(5 * HOUR, 12 * HOUR)
            look = Look("STRIPE TRANSFER", "payout", merchant="Stripe",
                        counterparty=("Stripe", "financial_institution"),
                        original=f"STRIPE DES:TRANSFER ID:ST-{pid[3:15]} INDN:{business} CO ID:ST-{pid[15:21]} CCD")
            base = static[("payout", payout.index)] = (pending, posted, look)
        pending, posted, look = base
        yield Movement(f"payout|{payout.index}", account, -payout.amount, payout.arrival, look, pending_at=pending,
                       pending_amount=-payout.amount, posted_at=posted)


def _first_slot(table: Table) -> int:
    """The first slot created at or after BANK_SINCE (slots are created in time order)."""
    lo, hi = 0, len(table)
    while lo < hi:
        mid = (lo + hi) // 2
        if table.created[mid] < BANK_SINCE:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _cancelled(table: Table, slot: int) -> int | None:
    """When the payment was first voided or deleted in QBO, or None."""
    return table.cancelled.get(slot)


def _apply_cancel(m: Movement, cancelled: int | None) -> Movement | None:
    """A payment cancelled before the bank posted it never posts; cancelled before its pending, never shows."""
    if cancelled is None or m.posted_at is None or cancelled >= m.posted_at:
        return m
    if m.pending_at is None or cancelled < m.pending_at:
        return None
    m.posted_at, m.ended_at = None, cancelled
    return m


def _settled(company: Company, m: Movement | None, cancelled: int | None) -> Iterator[Movement]:
    """The movement as the bank shows it, and its return when the books cancelled the payment after it posted."""
    if m is None:
        return
    yield m
    if cancelled is not None and m.posted_at is not None:
        rng = seeded_rng(company.seed, company.spec.realm_id, "bank return", m.key)
        at = max(cancelled, m.posted_at)
        posted = business_days_after(midnight(at), 1) + rng.randrange(5 * HOUR, 13 * HOUR)
        look = Look(f"RETURN {m.look.name}"[:80], m.look.kind, merchant=m.look.merchant,
                    counterparty=m.look.counterparty, check_number=m.look.check_number,
                    original=None if m.look.original is None else f"RETURN OF {m.look.original}")
        yield Movement(f"{m.key}|return", m.account, -m.amount, at, look, posted_at=posted)


def _payments(company: Company, account: int, static: dict, table: Table, cards: set[int]) -> Iterator[Movement]:
    seed, realm = company.seed, company.spec.realm_id
    for slot in range(_first_slot(table), len(table)):
        if slot in cards or table.total[slot] <= 0:
            continue
        broken = company.breaks.payment(slot)
        if broken == "payment_recorded_not_in_bank":
            continue
        base = static.get(("payment", slot))
        if base is None:
            created = table.created[slot]
            rng = seeded_rng(seed, realm, "bank payment", slot)
            by_check = rng.random() < 0.5
            posted = business_days_after(midnight(created), rng.randint(1, 3)) + rng.randrange(5 * HOUR, 13 * HOUR)
            payer = customer_display(company, table.party[slot])
            if by_check:
                number = render_payment(company, table, slot).get("PaymentRefNum") or str(rng.randrange(1000, 99999))
                look = Look(f"DEPOSITED CHECK #{number}", "deposit_check", check_number=number,
                            original=f"REMOTE DEPOSIT CHECK {number}")
                pending = None
            else:
                look = Look(f"ACH CREDIT {payer.upper()}", "ach_credit", merchant=payer,
                            counterparty=(payer, "merchant"),
                            original=f"{payer.upper()} DES:PAYMENT ID:{slot + 1:08d} CCD")
                pending = min(created + rng.randrange(HOUR, 6 * HOUR), posted - HOUR)
            base = static[("payment", slot)] = (created, pending, posted, look)
        created, pending, posted, look = base
        cents = table.total[slot]
        if broken == "amount_mismatch" and look.kind == "ach_credit":  # an ACH names the payment: a check may not
            cents = company.breaks.bank_amount(slot, cents)
        m = Movement(f"payment|{slot}", account, -cents, created, look, pending_at=pending, pending_amount=-cents,
                     posted_at=posted)
        cancelled = _cancelled(table, slot)
        yield from _settled(company, _apply_cancel(m, cancelled), cancelled)


def _bill_payments(company: Company, account: int, static: dict, table: Table) -> Iterator[Movement]:
    seed, realm = company.seed, company.spec.realm_id
    for slot in range(_first_slot(table), len(table)):
        if table.total[slot] <= 0:
            continue
        base = static.get(("bill_payment", slot))
        if base is None:
            created = table.created[slot]
            rng = seeded_rng(seed, realm, "bank bill payment", slot)
            number = render_bill_payment(company, table, slot).get("DocNumber")
            vendor = N.vendor_name(table.party[slot] + 1)
            ramp = _through_ramp(company, static, table.paid.get(slot, ()))
            if ramp:  # Ramp's ACH debit, whatever QBO says
                posted = midnight(created) + rng.randint(1, 2) * DAY + rng.randrange(5 * HOUR, 13 * HOUR)
                look = _ramp_bill_pay(vendor, ach_trace(seed, realm, slot))
                pending = min(created + rng.randrange(HOUR, 5 * HOUR), posted - HOUR)
            elif number is not None:  # a paper check: it clears 3-10 days later, with no pending phase
                posted = midnight(created) + rng.randint(3, 10) * DAY + rng.randrange(5 * HOUR, 13 * HOUR)
                look = Look(f"CHECK #{number}", "check", check_number=number, original=f"CHECK {number}")
                pending = None
            else:
                posted = midnight(created) + rng.randint(1, 2) * DAY + rng.randrange(5 * HOUR, 13 * HOUR)
                look = Look(f"ACH DEBIT {vendor.upper()}", "ach_debit", merchant=vendor,
                            counterparty=(vendor, "merchant"),
                            original=f"{vendor.upper()} DES:BILL PAY ID:{slot + 1:08d}")
                pending = min(created + rng.randrange(HOUR, 5 * HOUR), posted - HOUR)
            base = static[("bill_payment", slot)] = (created, pending, posted, look, ramp)
        created, pending, posted, look, ramp = base
        if not ramp and company.breaks.bill_payment(slot) == "payment_recorded_not_in_bank":
            continue
        m = Movement(f"bill_payment|{slot}", account, table.total[slot], created, look, pending_at=pending,
                     pending_amount=table.total[slot], posted_at=posted)
        cancelled = _cancelled(table, slot)
        if not ramp:  # Ramp moved the money when the payment was made: a later void is a return, not a cancel
            m = _apply_cancel(m, cancelled)
        yield from _settled(company, m, cancelled)


def _ramp_bill_pay(vendor: str, trace: str) -> Look:
    return Look(f"RAMP BILL PAY {vendor.upper()}", "ach_debit", merchant=vendor, counterparty=(vendor, "merchant"),
                original=f"RAMP DES:BILL PAY ID:{trace} INDN:{vendor.upper()[:22]} CCD")


def _held_bills(company: Company, account: int, static: dict) -> Iterator[Movement]:
    """Ramp's ACH debit for each bill it paid on its own date while the books hold the bill open (world/breaks.py):
    it leaves the bank once, as any Ramp bill payment does."""
    seed, realm, table = company.seed, company.spec.realm_id, company.books.tables["Bill"]
    for slot in sorted(company.books.ap.held):
        base = static.get(("held bill", slot))
        if base is None:
            paid, trace = own_payment(seed, realm, slot, table.created[slot])
            rng = seeded_rng(seed, realm, "bank held bill", slot)
            posted = midnight(paid) + rng.randint(1, 2) * DAY + rng.randrange(5 * HOUR, 13 * HOUR)
            pending = min(paid + rng.randrange(HOUR, 5 * HOUR), posted - HOUR)
            look = _ramp_bill_pay(N.vendor_name(table.party[slot] + 1), trace)
            base = static[("held bill", slot)] = (paid, pending, posted, look)
        paid, pending, posted, look = base
        yield Movement(f"held_bill|{slot}", account, table.total[slot], paid, look, pending_at=pending,
                       pending_amount=table.total[slot], posted_at=posted)


def _through_ramp(company: Company, static: dict, bills: tuple[int, ...]) -> bool:
    """Whether a bill payment (the bills it paid when made) settled a bill the business runs through Ramp."""
    table, since = company.books.tables["Bill"], company.card_spend.start
    for bill in bills:
        found = static.get(("ramp bill", bill))
        if found is None:
            found = static[("ramp bill", bill)] = through_ramp(company.seed, company.spec.realm_id, bill,
                                                               table.created[bill], since)  # fmt: skip
        if found:
            return True
    return False


def _ramp_statements(company: Company, account: int, static: dict, now: int) -> Iterator[Movement]:
    """Each Ramp card statement with charges, debited in full by Ramp's ACH on the statement's `paid` instant:
    pending within the hour, posted the next business day."""
    seed, realm = company.seed, company.spec.realm_id
    business = company.spec.name.upper()[:22]
    for statement in company.card_spend.statements(now):
        if statement.charges_cents <= 0 or statement.paid > now:
            continue
        base = static.get(("ramp statement", statement.start))
        if base is None:
            rng = seeded_rng(seed, realm, "bank ramp statement", statement.start)
            reference = statement.statement_id.replace("-", "")[:12].upper()
            look = Look("RAMP CARD PAYMENT", "card_payment_out", merchant="Ramp",
                        counterparty=("Ramp", "financial_institution"),
                        original=f"RAMP DES:RAMP PMT ID:{reference} INDN:{business} CCD")
            pending = statement.paid + rng.randrange(5 * 60, HOUR)
            posted = business_days_after(midnight(statement.paid), 1) + rng.randrange(5 * HOUR, 13 * HOUR)
            base = static[("ramp statement", statement.start)] = (pending, posted, look)
        pending, posted, look = base
        yield Movement(f"ramp_statement|{statement.start}", account, statement.charges_cents, statement.paid, look,
                       pending_at=pending, pending_amount=statement.charges_cents, posted_at=posted)


def unexplained_debits(company: Company, account: int, now: int) -> Iterator[Movement]:
    """The ACH debits no rail and no book accounts for (world/breaks.py), one on each broken day: pending within
    the hour, posted the next business day."""
    seed, realm = company.seed, company.spec.realm_id
    for day in range(midnight(BANK_SINCE), midnight(now) + DAY, DAY):
        cents = company.breaks.unexplained(day)
        if cents is None:
            continue
        rng = seeded_rng(seed, realm, "bank unexplained", day)
        payee = rng.choice(UNEXPLAINED_PAYEES)
        authorized = day + rng.randrange(13 * HOUR, 20 * HOUR)
        look = Look(f"ACH DEBIT {payee}", "ach_debit", merchant=payee.title(), counterparty=(payee.title(), "merchant"),
                    original=f"{payee} DES:DEBIT ID:{rng.randrange(10**9, 10**10)} CCD")
        posted = business_days_after(day, 1) + rng.randrange(5 * HOUR, 13 * HOUR)
        yield Movement(f"unexplained|{day}", account, cents, authorized, look, pending_at=authorized + HOUR,
                       pending_amount=cents, posted_at=posted)
