"""What Ramp knows of one business at the clock, from the shared world: people, cards, card transactions,
statements and reimbursements from the card spend (ledger_pipeline/world/card_spend.py), bills and vendors from
the QBO books (the bills world/bill_pay.py puts through Ramp).

A `RampView` is one business at one instant; each list is built on first use and kept while the clock and the
books stay. What never changes about an object (a bill's dates and vendor, its delays) is kept across clocks in
the `BusinessCache`, computed from the object's own seeded RNG, so any process at any clock agrees.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from typing import Any, Generic, TypeVar

from ledger_pipeline.rails.qbo.sandbox.books import DELETED, INACTIVE, VOIDED, Table
from ledger_pipeline.rails.qbo.sandbox.history import Company
from ledger_pipeline.rails.qbo.sandbox.render import edit_push_days
from ledger_pipeline.rails.qbo.sandbox.render_txn import render_bill
from ledger_pipeline.world.bill_pay import own_payment, through_ramp
from ledger_pipeline.world.calendar import DAY, seeded_rng
from ledger_pipeline.world.card_spend import CardSpend, CardTransaction, Statement

from .spec import RampBusiness, ramp_uuid

HOUR = 3600
T = TypeVar("T")


@dataclass(frozen=True)
class Listing(Generic[T]):
    """Objects in ascending order of their sort key (ties by id), with each id's position (keyset paging)."""

    items: list[T]
    ids: dict[str, int]

    @classmethod
    def of(cls, items: list[T], key: Callable[[T], tuple], ident: Callable[[T], str]) -> Listing[T]:
        ordered = sorted(items, key=key)
        return cls(ordered, {ident(item): i for i, item in enumerate(ordered)})

    def get(self, object_id: str) -> T | None:
        position = self.ids.get(object_id)
        return None if position is None else self.items[position]


@dataclass(frozen=True, slots=True)
class BillFacts:
    """What never changes about a Ramp bill: it mirrors the QBO Bill in `slot`."""

    slot: int
    bill_id: str
    created: int  # in Ramp: a few hours after the QBO bill
    approve_at: int  # approved 1-2 days after that (or when paid, if sooner)
    issued: int  # the invoice date (QBO TxnDate), UTC midnight
    due: int  # the due date as entered (QBO DueDate before any edit moved it)
    invoice_number: str | None
    memo: str | None
    vendor_slot: int
    cents: int


@dataclass(frozen=True, slots=True)
class BillState:
    facts: BillFacts
    archived_at: int | None  # the QBO bill was voided or deleted
    paid_at: int | None  # Ramp paid it whole: when the first QBO BillPayment touching it was made (or on Ramp's date)
    payment_slot: int | None  # that BillPayment (None for a bill paid on Ramp's date: the books never record it)
    approved: bool

    @property
    def bill_id(self) -> str:
        return self.facts.bill_id


@dataclass(frozen=True, slots=True)
class VendorState:
    vendor_id: str
    slot: int  # the QBO Vendor's
    created: int  # with its first Ramp bill
    active: bool
    paid: tuple[tuple[int, int], ...]  # (paid_at, cents) of its paid Ramp bills


class BusinessCache:
    """The parts of one business's Ramp data that never change, kept across clocks."""

    def __init__(self, seed: int, business: RampBusiness) -> None:
        self.seed, self.business = seed, business
        self.bills: dict[int, BillFacts | None] = {}  # QBO Bill slot -> its Ramp bill (None: not through Ramp)
        self.static: dict[str, dict[str, Any]] = {}  # object id -> the static part of its JSON (render.py)

    def bill(self, company: Company, table: Table, slot: int) -> BillFacts | None:
        if slot in self.bills:
            return self.bills[slot]
        created, realm = table.created[slot], company.spec.realm_id
        facts = None
        if through_ramp(self.seed, realm, slot, created, company.card_spend.start):
            rng = seeded_rng(self.seed, realm, "ramp bill facts", slot)
            in_ramp = created + rng.randrange(2 * HOUR, 6 * HOUR)
            qbo = render_bill(company, table, slot)
            issued = date.fromisoformat(qbo["TxnDate"])
            due = date.fromisoformat(qbo["DueDate"]) - timedelta(days=edit_push_days(table, slot))
            memo = next((line["Description"] for line in qbo["Line"] if "Description" in line), None)
            facts = BillFacts(slot, ramp_uuid(self.seed, realm, "bill", slot), in_ramp,
                              in_ramp + rng.randrange(DAY, 2 * DAY), _midnight(issued), _midnight(due),
                              qbo.get("DocNumber"), memo, table.party[slot], table.total[slot])  # fmt: skip
        self.bills[slot] = facts
        return facts


def _midnight(day: date) -> int:
    return (day - date(1970, 1, 1)).days * DAY


class RampView:
    """One business as Ramp shows it at `now` (epoch seconds); the QBO books must stay at `now` while it is used."""

    def __init__(self, business: RampBusiness, cache: BusinessCache, company: Company, now: int) -> None:
        self.business, self.cache, self.company, self.now = business, cache, company, now
        self.spend: CardSpend = company.card_spend

    # --- the card spend ------------------------------------------------------------------------------
    @cached_property
    def users(self) -> Listing:
        return Listing.of(self.spend.users(self.now), lambda u: (u.created, u.user_id), lambda u: u.user_id)

    @cached_property
    def cards(self) -> Listing:
        return Listing.of(self.spend.cards(self.now), lambda c: (c.created, c.card_id), lambda c: c.card_id)

    @cached_property
    def transactions(self) -> Listing[CardTransaction]:
        return Listing.of(self.spend.transactions(self.now), lambda t: (t.authorized, t.transaction_id),
                          lambda t: t.transaction_id)

    @cached_property
    def transactions_by_amount(self) -> Listing[CardTransaction]:
        now = self.now
        return Listing.of(self.transactions.items, lambda t: (t.cents_at(now), t.transaction_id),
                          lambda t: t.transaction_id)

    @cached_property
    def statements(self) -> Listing[Statement]:
        issued = [s for s in self.spend.statements(self.now) if s.issued <= self.now]
        return Listing.of(issued, lambda s: (s.end, s.statement_id), lambda s: s.statement_id)

    @cached_property
    def statement_of(self) -> dict[str, Statement]:
        """Transaction id -> the issued statement it is a line of."""
        return {tid: s for s in self.statements.items for tid in s.transaction_ids}

    @cached_property
    def balances(self) -> dict[str, tuple[int, int, int, list[tuple[str, int]]]]:
        """Statement id -> (opening, payments, ending, [(payment line id, paid at)]): each statement is paid in
        full on its `paid` instant, inside the next statement's period."""
        out, ending = {}, 0
        items = self.statements.items
        for i, s in enumerate(items):
            lines = [(ramp_uuid("statement payment", p.statement_id), p.paid) for p in items[:i]
                     if s.start <= p.paid < s.end and p.charges_cents > 0]
            payments = sum(p.charges_cents for p in items[:i] if s.start <= p.paid < s.end)
            out[s.statement_id] = (ending, payments, ending + s.charges_cents - payments, lines)
            ending = ending + s.charges_cents - payments
        return out

    @cached_property
    def reimbursements(self) -> Listing:
        return Listing.of(self.spend.reimbursements(self.now), lambda r: (r.created, r.reimbursement_id),
                          lambda r: r.reimbursement_id)

    def updated(self, txn: CardTransaction) -> int:
        """When the transaction last changed as of now: authorised, cleared or declined, put on a statement,
        synced to the books."""
        now, statement = self.now, self.statement_of.get(txn.transaction_id)
        times = [txn.changed_at(now), statement.issued if statement is not None else 0]
        if txn.booked is not None and txn.booked <= now:
            times.append(txn.booked)
        return max(times)

    # --- bill pay, from the QBO books ----------------------------------------------------------------
    @cached_property
    def bills(self) -> Listing[BillState]:
        """Ramp pays a bill whole when the first QBO bill payment touching it is made, and a paid bill stays paid
        whatever the books do later (a payment voided in QBO afterwards is a break between the rails, not an
        unpaid bill); a bill voided or deleted in QBO before that is archived. A bill the books hold open Ramp pays
        on its own date."""
        books, now = self.company.books, self.now
        table, pays = books.tables["Bill"], books.tables["BillPayment"]
        first: dict[int, int] = {}  # bill slot -> the earliest payment that paid it (voided ones included)
        for pay, docs in pays.paid.items():
            for doc in docs:
                if doc not in first or (pays.created[pay], pay) < (pays.created[first[doc]], first[doc]):
                    first[doc] = pay
        out = []
        for slot in range(_first_slot(table, self.spend.start), len(table)):
            facts = self.cache.bill(self.company, table, slot)
            if facts is None or facts.created > now:
                continue
            pay = first.get(slot)
            paid_at = None if pay is None else max(pays.created[pay], facts.created)
            if slot in books.ap.held:  # Ramp pays it on its own date, the books never (world/breaks.py)
                paid_at = own_payment(self.cache.seed, self.company.spec.realm_id, slot, table.created[slot])[0]
                paid_at = paid_at if paid_at <= now else None
            # Archived when the books first voided or deleted it (a later delete of a voided bill moves `updated`).
            gone = max(table.cancelled.get(slot, table.updated[slot]), facts.created) \
                if table.flags[slot] & (VOIDED | DELETED) else None
            archived = gone if gone is not None and (paid_at is None or gone < paid_at) else None
            if archived is not None:
                paid_at = pay = None
            out.append(BillState(facts, archived, paid_at, pay, paid_at is not None or now >= facts.approve_at))
        return Listing.of(out, lambda b: (b.facts.issued, b.facts.bill_id), lambda b: b.facts.bill_id)

    @cached_property
    def vendors(self) -> Listing[VendorState]:
        found: dict[int, tuple[int, list[tuple[int, int]]]] = {}
        for bill in self.bills.items:
            created, paid = found.get(bill.facts.vendor_slot, (bill.facts.created, []))
            if bill.paid_at is not None:
                paid.append((bill.paid_at, bill.facts.cents))
            found[bill.facts.vendor_slot] = (min(created, bill.facts.created), paid)
        table = self.company.books.tables["Vendor"]
        realm = self.company.spec.realm_id
        out = [VendorState(ramp_uuid(self.cache.seed, realm, "vendor", slot), slot, created,
                           not table.flags[slot] & (INACTIVE | DELETED), tuple(sorted(paid)))
               for slot, (created, paid) in found.items()]  # fmt: skip
        return Listing.of(out, lambda v: (v.created, v.vendor_id), lambda v: v.vendor_id)

    def vendor_of(self, bill: BillState) -> VendorState:
        realm = self.company.spec.realm_id
        found = self.vendors.get(ramp_uuid(self.cache.seed, realm, "vendor", bill.facts.vendor_slot))
        assert found is not None
        return found


def _first_slot(table: Table, since: int) -> int:
    """The first slot created at or after `since` (slots are created in time order)."""
    return bisect_left(table.created, since)
