"""The card money of one business: charges, fees, refunds, disputes and daily automatic payouts.

Derived from the business's card payments (recorded by its books as they happen, in time order), so
every rail renders the same money. Every choice about a charge (refund, dispute) or a customer comes
from an RNG seeded by that object alone, never from the books' own replay RNG. `advance(sec)` applies
every happening at or before `sec` in time order; moving forward only applies new ones (a business
whose books go back in time is rebuilt by its owner). `moments` is the chronological log of what
happened, which rails turn into their own change feeds.

Timing follows Stripe's US standard: card funds become available 2 days after the charge (at 00:00
UTC), a daily automatic payout (01:00 UTC) sweeps everything available, it is in transit 6 hours
later and paid on its arrival date, 2 business days later; the books record the deposit during the
next business day's working hours, in the business's own time zone.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from ledger_pipeline.world.calendar import DAY, business_days_after, midnight, seeded_rng

AVAILABLE_DAYS = 2
ARRIVAL_BUSINESS_DAYS = 2
PAYOUT_SECOND = 3600  # automatic payouts are created at 01:00 UTC
IN_TRANSIT_AFTER = 6 * 3600
REFUND_SHARE, DISPUTE_SHARE = 0.04, 0.008
CUSTOMER_UPDATE_SHARE, CUSTOMER_DELETE_SHARE = 0.2, 0.05
DISPUTE_FEE = 1500
# The order of happenings within one second.
_RANK = {"customer.created": 0, "charge": 1, "customer.updated": 2, "refund": 3, "dispute": 3,
         "customer.deleted": 4, "payout.created": 5, "payout.in_transit": 6, "payout.paid": 6, "deposit": 7}


def stripe_fee(cents: int) -> int:
    """Card processing fee: 2.9 % (rounded half up to the cent) + 30 cents."""
    return (cents * 29 + 500) // 1000 + 30


@dataclass(slots=True)
class CardPayment:
    """A customer payment taken by card, as the books recorded it when it was created."""

    created: int
    payment_slot: int
    customer_slot: int
    cents: int


@dataclass(slots=True)
class Customer:
    index: int
    qbo_slot: int
    generation: int  # 0, then 1, ... when a deleted customer pays again
    created: int
    updated: int | None = None
    deleted: int | None = None


@dataclass(slots=True)
class Charge:
    index: int
    created: int
    payment_slot: int
    customer: int
    amount: int
    fee: int
    available_on: int
    refund: int | None = None  # set when the refund happens
    dispute: int | None = None
    payout: int | None = None

    @property
    def net(self) -> int:
        return self.amount - self.fee


@dataclass(slots=True)
class Refund:
    index: int
    charge: int
    created: int
    amount: int
    payout: int | None = None

    @property
    def net(self) -> int:
        return -self.amount


@dataclass(slots=True)
class Dispute:
    index: int
    charge: int
    created: int
    amount: int
    fee: int = DISPUTE_FEE
    payout: int | None = None

    @property
    def net(self) -> int:
        return -self.amount - self.fee


@dataclass(slots=True)
class Payout:
    index: int
    created: int
    amount: int
    in_transit: int
    arrival: int  # UTC midnight of the arrival date; the payout is paid then
    deposit: int  # when the books record it
    items: list[tuple[str, int]] = field(default_factory=list)  # ("charge" | "refund" | "dispute", index)

    def status(self, sec: int) -> str:
        return "paid" if sec >= self.arrival else "in_transit" if sec >= self.in_transit else "pending"


class Flows:
    """One business's card money, advanced with its books' clock."""

    def __init__(self, seed: int, key: str, offset_minutes: int, cards: list[CardPayment], start: int) -> None:
        self.seed, self.key, self.offset = seed, key, offset_minutes
        self.cards = cards  # appended to by the books, in time order
        self.customers: list[Customer] = []
        self.charges: list[Charge] = []
        self.refunds: list[Refund] = []
        self.disputes: list[Dispute] = []
        self.payouts: list[Payout] = []
        self.txns: list[tuple[str, int]] = []  # balance transactions, oldest first: (kind, index)
        self.moments: list[tuple[int, str, int]] = []  # (sec, kind, index), oldest first
        self.deposits: list[tuple[int, int]] = []  # (sec, payout index): when the books record a payout
        self.net_total = 0  # net of every balance transaction so far
        self.until = start - 1
        self._ingested = 0
        self._current: dict[int, int] = {}  # QBO customer slot -> current customer index
        self._heap: list[tuple[int, int, int, str, tuple]] = []
        self._seq = 0
        self._unpaid: list[tuple[str, int]] = []
        self._next_payout = midnight(start) + PAYOUT_SECOND

    def _push(self, sec: int, kind: str, *data: object) -> None:
        heapq.heappush(self._heap, (sec, _RANK[kind], self._seq, kind, data))
        self._seq += 1

    def payout_fees(self, index: int) -> int:
        """The processing and dispute fees payout `index` took out: its gross (what the customers paid, net of
        refunds and disputed amounts) less what arrived."""
        fees = 0
        for kind, item in self.payouts[index].items:
            if kind == "charge":
                fees += self.charges[item].fee
            elif kind == "dispute":
                fees += self.disputes[item].fee
        return fees

    def obj(self, kind: str, index: int) -> Charge | Refund | Dispute | Payout:
        return {"charge": self.charges, "refund": self.refunds, "dispute": self.disputes,
                "payout": self.payouts}[kind][index]

    # --- advancing --------------------------------------------------------------------------
    def advance(self, sec: int) -> None:
        if sec <= self.until:
            return
        while self._ingested < len(self.cards):
            self._ingest(self.cards[self._ingested])
            self._ingested += 1
        while self._next_payout <= sec:
            self._push(self._next_payout, "payout.created")
            self._next_payout += DAY
        while self._heap and self._heap[0][0] <= sec:
            at, _, _, kind, data = heapq.heappop(self._heap)
            self._apply(at, kind, data)
        self.until = sec

    def _ingest(self, card: CardPayment) -> None:
        customer = self._customer_for(card)
        rng = seeded_rng(self.seed, self.key, "charge", card.payment_slot)
        index = len(self.charges)
        available = midnight(card.created) + AVAILABLE_DAYS * DAY
        self.charges.append(Charge(index, card.created, card.payment_slot, customer, card.cents,
                                   stripe_fee(card.cents), available))
        self._push(card.created, "charge", index)
        draw = rng.random()
        if draw < REFUND_SHARE:
            full = rng.random() < 0.5 or card.cents < 200
            amount = card.cents if full else max(100, round(card.cents * rng.uniform(0.1, 0.9)))
            self._push(card.created + rng.randrange(DAY, 12 * DAY), "refund", index, amount)
        elif draw < REFUND_SHARE + DISPUTE_SHARE:
            self._push(card.created + rng.randrange(3 * DAY, 30 * DAY), "dispute", index)

    def _customer_for(self, card: CardPayment) -> int:
        index = self._current.get(card.customer_slot)
        if index is not None and (self.customers[index].deleted is None
                                  or self.customers[index].deleted > card.created):
            return index
        generation = 0 if index is None else self.customers[index].generation + 1
        rng = seeded_rng(self.seed, self.key, "customer", card.customer_slot, generation)
        customer = Customer(len(self.customers), card.customer_slot, generation, card.created)
        if rng.random() < CUSTOMER_UPDATE_SHARE:
            customer.updated = card.created + rng.randrange(DAY, 20 * DAY)
        if rng.random() < CUSTOMER_DELETE_SHARE:
            customer.deleted = card.created + rng.randrange(25 * DAY, 40 * DAY)
        self.customers.append(customer)
        self._current[card.customer_slot] = customer.index
        self._push(customer.created, "customer.created", customer.index)
        if customer.updated is not None:
            self._push(customer.updated, "customer.updated", customer.index)
        if customer.deleted is not None:
            self._push(customer.deleted, "customer.deleted", customer.index)
        return customer.index

    def _apply(self, at: int, kind: str, data: tuple) -> None:
        index = data[0] if data else -1
        if kind == "charge":
            self._balance("charge", index)
        elif kind == "refund":
            charge = self.charges[index]
            index = len(self.refunds)
            self.refunds.append(Refund(index, charge.index, at, data[1]))
            charge.refund = index
            self._balance("refund", index)
        elif kind == "dispute":
            charge = self.charges[index]
            index = len(self.disputes)
            self.disputes.append(Dispute(index, charge.index, at, charge.amount))
            charge.dispute = index
            self._balance("dispute", index)
        elif kind == "payout.created":
            index = self._payout(at)
            if index is None:
                return
        elif kind == "deposit":
            self.deposits.append((at, index))
        self.moments.append((at, kind, index))

    def _balance(self, kind: str, index: int) -> None:
        self.txns.append((kind, index))
        self._unpaid.append((kind, index))
        self.net_total += self.obj(kind, index).net

    def _available_on(self, kind: str, index: int) -> int:
        return self.charges[index].available_on if kind == "charge" else self.obj(kind, index).created

    def _payout(self, at: int) -> int | None:
        """Sweep everything available into a payout, unless that would pay out nothing or less."""
        ready = [item for item in self._unpaid if self._available_on(*item) <= at]
        amount = sum(self.obj(*item).net for item in ready)
        if amount <= 0:
            return None
        index = len(self.payouts)
        arrival = business_days_after(midnight(at), ARRIVAL_BUSINESS_DAYS)
        payout = Payout(index, at, amount, at + IN_TRANSIT_AFTER, arrival, self._deposit_time(index, arrival), ready)
        self.payouts.append(payout)
        for item in ready:
            self.obj(*item).payout = index
        self._unpaid = [item for item in self._unpaid if self.obj(*item).payout is None]
        self.txns.append(("payout", index))
        self.net_total -= amount
        self._push(payout.in_transit, "payout.in_transit", index)
        self._push(payout.arrival, "payout.paid", index)
        self._push(payout.deposit, "deposit", index)
        return index

    def _deposit_time(self, index: int, arrival: int) -> int:
        """During the working day (09:00-16:00 local) of the business day after the arrival date."""
        day = business_days_after(arrival, 1)
        rng = seeded_rng(self.seed, self.key, "deposit", index)
        return day - self.offset * 60 + 9 * 3600 + rng.randrange(7 * 3600)

    # --- reading ---------------------------------------------------------------------------
    def balance(self, sec: int) -> tuple[int, int]:
        """(available, pending) cents at `sec` (at most `self.until`): the net of every balance transaction,
        split by whether it is available yet. Only charges of the last days can still be pending."""
        pending = 0
        for charge in reversed(self.charges):
            if charge.created < sec - (AVAILABLE_DAYS + 1) * DAY:
                break
            if charge.created <= sec < charge.available_on:
                pending += charge.net
        return self.net_total - pending, pending
