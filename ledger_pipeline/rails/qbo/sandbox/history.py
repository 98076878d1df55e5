"""A company's history: its books as a pure function of (seed, spec, instant).

The past before GENESIS is generated in bulk from one RNG stream (a year of creations after a
data-conversion import, plus edits, voids, deletions and deactivations). From GENESIS on, history
runs in simulated hours: hour h draws its events from `random.Random(stable_seed(seed, realm, h))`,
busier in the company's business hours. Replaying to an instant applies every event at or before
it; the latest replay is kept, so moving forward only applies new events and moving backwards
replays from scratch. Touches (manual bumps from tests) are replayed at their instants.

Some customer payments are card payments (a choice seeded by the payment alone, so the replay's RNG
is untouched); the business's card money (ledger_pipeline.world) follows from them, and each paid
card payout comes back into the books as a Deposit. The staff's corporate card spend (Ramp) needs no
replay at all: each cleared card transaction is booked as a Purchase when the world says the books
recorded it, against a "Ramp Card" account that the replay's draws never reach. A Ramp bill broken as
`bill_paid_not_recorded` (world/breaks.py) is held open: no payment, void or deletion of the replay picks it.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from itertools import accumulate
import math
import random

from ledger_pipeline.world.bill_pay import through_ramp
from ledger_pipeline.world.breaks import Breaks
from ledger_pipeline.world.card_spend import CardSpend
from ledger_pipeline.world.flows import CardPayment, Flows

from .books import Books, Side
from .ledger import Ledger
from .names import card_account, chart_of_accounts
from .spec import GENESIS, CompanySpec
from .timefmt import epoch_us, local_hour_and_weekday

GENESIS_SEC = epoch_us(GENESIS) // 1_000_000
YEAR = 365 * 86400
MIX = {"Vendor": 0.07, "Customer": 0.09, "Bill": 0.27, "Invoice": 0.27, "BillPayment": 0.14, "Payment": 0.14}
CONVERSION_SHARE = 0.15  # objects imported at one instant when the company moved to QBO
CARD_SHARE = 0.4  # customer payments taken by card
CARDS_SINCE = GENESIS_SEC - 180 * 86400  # the business has taken cards (and had payouts) since then
_HOUR_WEIGHT = (0.15,) * 6 + (0.5, 1.2, 2.5, 2.5, 2.5, 2.5, 1.8, 2.5, 2.5, 2.5, 2.5, 1.5, 0.7, 0.7, 0.7, 0.3, 0.3, 0.3)
_WEEKEND = 0.25
_MEAN_DAY_WEIGHT = sum(_HOUR_WEIGHT) * (5 + 2 * _WEEKEND) / 7
# (event, weight): post-genesis mix; the genesis past uses only the modifications (no "new_").
EVENTS = (("new_bill", 20), ("new_invoice", 20), ("pay_bill", 12), ("pay_invoice", 12), ("edit_txn", 14),
          ("edit_party", 5), ("void", 5), ("delete", 5), ("new_party", 3), ("deactivate", 3),
          ("reactivate", 1), ("account", 1))
MODIFICATIONS = tuple((name, w) for name, w in EVENTS if not name.startswith(("new_", "pay_")))


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process (Python's hash() is salted per process)."""
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def entity_counts(size: int) -> dict[str, int]:
    counts = {name: max(3, round(size * share)) for name, share in MIX.items()}
    counts["Account"] = max(26, size - sum(counts.values()))
    return counts


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _weighted(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    cumulative = _CUMULATIVE.get(table)
    if cumulative is None:
        cumulative = _CUMULATIVE[table] = list(accumulate(w for _, w in table))
    return table[bisect_right(cumulative, rng.random() * cumulative[-1])][0]


_CUMULATIVE: dict[tuple[tuple[str, int], ...], list[int]] = {}


class Company:
    """One realm's books, replayed up to the last instant asked for."""

    def __init__(self, spec: CompanySpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self.counts = entity_counts(spec.size)
        generated = chart_of_accounts(self.counts["Account"])
        self.card_account = len(generated) + 1
        self.chart = (*generated, card_account(self.card_account))
        self.expense_accounts = tuple(a.id for a in self.chart if a.classification == "Expense")
        # The corporate card spend (Ramp) needs no replay: a pure function of the clock, shared by every reset.
        self.card_spend = CardSpend(seed, spec.realm_id, spec.size, spec.offset_minutes, CARDS_SINCE)
        self.breaks = Breaks(seed, spec.realm_id, spec.breaks, spec.break_kinds)  # what the books get wrong on purpose
        self._reset()

    # --- replay -------------------------------------------------------------------------------
    def _reset(self) -> None:
        self.books = Books()
        self.ledger = Ledger(self.books, self.chart)
        self.books.tables["Account"].drawn = self.card_account - 1
        self.purchases_booked_until = self.card_spend.start - 1
        self.deposits_seen = 0  # the world's deposits looked at (a broken one books no Deposit)
        self.world = Flows(self.seed, self.spec.realm_id, self.spec.offset_minutes, self.books.card_payments,
                           CARDS_SINCE)
        self._genesis()
        self._sync_world(GENESIS_SEC - 1)
        self.books.build_indexes()
        self.applied_until = GENESIS_SEC - 1
        self.next_hour = 0
        self.pending: tuple[random.Random, list[int], int] | None = None
        self.touches_applied = 0

    def advance_to(self, sec: int, touches: list[tuple[int, str, int, int]]) -> None:
        """Apply history up to `sec` (inclusive); `touches` are this realm's (sec, entity, slot, backdate) bumps."""
        fresh = touches[self.touches_applied:]
        if sec < self.applied_until or len(touches) < self.touches_applied or any(
                t[0] < self.applied_until for t in fresh):
            self._reset()
        ti = self.touches_applied
        while True:
            if self.pending is None:
                start = GENESIS_SEC + 3600 * self.next_hour
                if start > sec:
                    break
                self.pending = self._plan_hour(self.next_hour, start)
            rng, times, idx = self.pending
            while idx < len(times) and times[idx] <= sec:
                while ti < len(touches) and touches[ti][0] < times[idx]:
                    self._touch(*touches[ti])
                    ti += 1
                self._event(rng, times[idx], EVENTS)
                idx += 1
            if idx < len(times):
                self.pending = (rng, times, idx)
                break
            self.pending = None
            self.next_hour += 1
        while ti < len(touches) and touches[ti][0] <= sec:
            self._touch(*touches[ti])
            ti += 1
        self.touches_applied = ti
        self.applied_until = max(sec, self.applied_until)
        self._sync_world(self.applied_until)

    def _touch(self, sec: int, entity: str, slot: int, backdate: int = 0) -> None:
        self._sync_world(sec)
        self.ledger.touch(self.books.tables[entity], slot, sec, backdate)

    def _sync_world(self, sec: int) -> None:
        """Advance the card money to `sec`: book a Deposit for each payout and a Purchase for each cleared card
        transaction the books have recorded by then (only the days since the last call are read)."""
        self.world.advance(sec)
        deposits = self.books.tables["Deposit"]
        for at, payout in self.world.deposits[self.deposits_seen:]:
            self.deposits_seen += 1
            broken = self.breaks.payout(payout)
            if broken == "payout_not_deposited":
                continue
            total = self.world.payouts[payout].amount
            if broken == "deposit_amount_mismatch":  # booked gross: what the customers paid, before the fees
                total += self.world.payout_fees(payout)
            deposits.add(at, party=payout, total=total)
        if sec > self.purchases_booked_until:
            purchases = self.books.tables["Purchase"]
            for txn in self.card_spend.bookings_between(self.purchases_booked_until, sec):
                broken = self.breaks.card(txn.transaction_id)
                for _ in range({"card_spend_not_booked": 0, "booking_duplicated": 2}.get(broken, 1)):
                    self.books.card_purchases.append(txn)
                    purchases.add(txn.booked, total=txn.cents)
            self.purchases_booked_until = sec

    def _new_doc(self, side: Side, rng: random.Random, sec: int) -> int | None:
        """A new Bill or Invoice; a Ramp bill the books never pay (world/breaks.py) is held open."""
        slot = self.ledger.new_doc(side, rng, sec)
        if (slot is not None and side is self.books.ap and self.breaks.ramp_bill(slot) == "bill_paid_not_recorded"
                and through_ramp(self.seed, self.spec.realm_id, slot, sec, self.card_spend.start)):
            side.hold(slot)
        return slot

    def _card(self, slot: int | None, sec: int) -> None:
        """Record a new customer Payment as a card payment (about CARD_SHARE of them since CARDS_SINCE)."""
        if slot is None or sec < CARDS_SINCE:
            return
        if random.Random(stable_seed(self.seed, self.spec.realm_id, "card", slot)).random() < CARD_SHARE:
            pay = self.books.ar.pay
            self.books.card_payments.append(CardPayment(sec, slot, pay.party[slot], pay.total[slot]))

    def _plan_hour(self, hour: int, start: int) -> tuple[random.Random, list[int], int]:
        rng = random.Random(stable_seed(self.seed, self.spec.realm_id, "hour", hour))
        local_hour, weekday = local_hour_and_weekday(start, self.spec.offset_minutes)
        weight = _HOUR_WEIGHT[local_hour] * (_WEEKEND if weekday >= 5 else 1.0)
        lam = self.spec.size * self.spec.change_rate * weight / _MEAN_DAY_WEIGHT
        offsets = sorted(rng.randrange(3600) for _ in range(_poisson(rng, lam)))
        for i in range(1, len(offsets)):
            if rng.random() < 0.12:  # QBO often stamps several objects with the same second
                offsets[i] = offsets[i - 1]
        return rng, [start + o for o in offsets], 0

    # --- the synthetic past -----------------------------------------------------------------------
    def _genesis(self) -> None:
        rng = random.Random(stable_seed(self.seed, self.spec.realm_id, "genesis"))
        conversion = GENESIS_SEC - YEAR
        self.ledger.new_accounts(conversion - 3 * 86400, self.card_account - 1)
        self.ledger.new_accounts(self.card_spend.start - 30 * 86400, 1)  # the Ramp card's, opened with Ramp
        plan: list[tuple[int, int, str]] = []
        for order, (name, n) in enumerate((k, v) for k, v in self.counts.items() if k != "Account"):
            imported = int(n * CONVERSION_SHARE)
            plan += [(conversion, order, name)] * imported
            span = GENESIS_SEC - conversion - 1
            plan += [(conversion + 1 + int(rng.random() * span), order, name) for _ in range(n - imported)]
        n_mods = int(self.spec.size * min(0.3, self.spec.change_rate * 15))
        for i in range(n_mods):
            low = GENESIS_SEC - 30 * 86400 if i % 3 else conversion + 1
            plan.append((rng.randrange(low, GENESIS_SEC), 9, "mod"))
        plan.sort()
        ap, ar = self.books.ap, self.books.ar
        for sec, _, name in plan:
            if name == "Vendor":
                self.ledger.new_party(ap, sec)
            elif name == "Customer":
                self.ledger.new_party(ar, sec)
            elif name == "Bill":
                self._new_doc(ap, rng, sec)
            elif name == "Invoice":
                self.ledger.new_doc(ar, rng, sec)
            elif name == "BillPayment":
                self.ledger.pay(ap, rng, sec, allow_unapplied=False)
            elif name == "Payment":
                self._card(self.ledger.pay(ar, rng, sec, allow_unapplied=True), sec)
            else:
                self._event(rng, sec, MODIFICATIONS)

    # --- one event --------------------------------------------------------------------------------
    def _event(self, rng: random.Random, sec: int, mix: tuple[tuple[str, int], ...]) -> None:
        led, books = self.ledger, self.books
        ap, ar, t = books.ap, books.ar, books.tables
        kind = _weighted(rng, mix)
        side = ap if rng.random() < 0.5 else ar
        done = False
        if kind in ("new_bill", "new_invoice"):
            side = ap if kind == "new_bill" else ar
            batch = rng.randint(2, 5) if rng.random() < 0.1 else 1  # an import: same second
            created = [self._new_doc(side, rng, sec) for _ in range(batch)]
            done = created[0] is not None
        elif kind == "pay_bill":
            done = led.pay(ap, rng, sec, allow_unapplied=False) is not None
        elif kind == "pay_invoice":
            slot = led.pay(ar, rng, sec, allow_unapplied=True)
            self._card(slot, sec)
            done = slot is not None
        elif kind == "edit_party":
            done = led.edit(side.party, rng, sec)
        elif kind == "void":
            done = led.void_doc(ar, rng, sec) if rng.random() < 0.5 else led.void_pay(side, rng, sec)
        elif kind == "delete":
            done = led.delete_doc(side, rng, sec) if rng.random() < 0.6 else led.delete_pay(side, rng, sec)
        elif kind == "new_party":
            done = led.new_party(side, sec) is not None
        elif kind in ("deactivate", "reactivate"):
            done = led.set_active(side.party, rng, sec, kind == "reactivate")
        elif kind == "account":
            active = rng.random() < 0.5
            done = led.edit(t["Account"], rng, sec) if rng.random() < 0.7 else led.set_active(
                t["Account"], rng, sec, active)
        if not done:  # "edit_txn", or an event that found nothing to act on
            table = t[rng.choice(("Bill", "Invoice", "BillPayment", "Payment"))]
            led.edit(table, rng, sec)
