"""What one item's bank shows of its business, as of the clock: the movements of each of its accounts.

The Checking account of the business bank carries the world's money (sources.py: Stripe, the books, Ramp) and
the bank's own traffic (traffic.py); Savings the transfers and interest; a credit card its purchases and monthly
payments. Days of bank-only traffic are pure functions of (seed, item, day) and are cached; the world's part is
re-read at each clock (its static parts cached per payment).
"""

from __future__ import annotations

from ledger_pipeline.rails.qbo.sandbox.history import Company
from ledger_pipeline.world.calendar import DAY, midnight

from .movements import Movement, enrich_offset, finish
from .sources import BANK_SINCE, world_movements
from .spec import PlaidItem, plaid_id
from .traffic import bank_day, card_day, card_payment, card_payment_day, previous_month


class ItemCache:
    """The parts of one item's bank history that never change, kept across clocks."""

    def __init__(self, seed: int, item: PlaidItem, card: PlaidItem | None) -> None:
        self.seed, self.item, self.card = seed, item, card  # card: the realm's card item (for its payments)
        self.static: dict = {}  # world payment -> parts that never change
        self.days: dict[int, list[Movement]] = {}  # UTC midnight -> that day's bank-only movements, finished
        self.purchases: dict[int, int] = {}  # UTC midnight -> cents the card item's purchases of that day
        self.enrich: dict[str, int | None] = {}
        self.ids: dict[tuple[str, str], str] = {}

    def txn_id(self, key: str, phase: str) -> str:
        found = self.ids.get((key, phase))
        if found is None:
            found = self.ids[(key, phase)] = plaid_id(self.seed, self.item.item_id, "transaction", key, phase)
        return found

    def movements(self, company: Company, now: int) -> list[Movement]:
        """Every movement of the item with anything up to `now` (later events are filtered by the feed)."""
        item = self.item
        out: list[Movement] = []
        checking = _index(item, "checking")
        if checking is not None:
            for m in world_movements(company, checking, self.static, now):
                if m.authorized <= now:
                    out.append(self._finish(m))
        for day in range(midnight(BANK_SINCE), midnight(now) + DAY, DAY):
            found = self.days.get(day)
            if found is None:
                found = self.days[day] = [self._finish(m) for m in self._day(day)]
            out.extend(found)
        return out

    def _finish(self, m: Movement) -> Movement:
        offset = self.enrich.get(m.key, -1)
        if offset == -1:
            offset = self.enrich[m.key] = enrich_offset(self.seed, self.item.item_id, m.key)
        return finish(m, offset, self.item.sends_pending)

    def _day(self, day: int) -> list[Movement]:
        item, seed = self.item, self.seed
        out: list[Movement] = []
        checking, savings, card = _index(item, "checking"), _index(item, "savings"), _index(item, "credit card")
        if checking is not None:
            out += bank_day(seed, item.item_id, day, checking, savings)
            if self.card is not None and card_payment_day(day) and self._statement(day) > 0:
                out.append(card_payment(day, self._statement(day), False, checking, self.card.institution_name))
        if card is not None:
            out += [_on(m, card) for m in card_day(seed, item.item_id, day)]
            if card_payment_day(day) and self._statement(day) > 0:
                out.append(card_payment(day, self._statement(day), True, card, item.institution_name))
        return out

    def _statement(self, day: int) -> int:
        """The card payment made on `day`: the previous month's purchases, paid in full."""
        card = self.card if self.card is not None else self.item
        total = 0
        for d in previous_month(day):
            if d < midnight(BANK_SINCE):
                continue
            cents = self.purchases.get(d)
            if cents is None:
                cents = self.purchases[d] = sum(m.amount for m in card_day(self.seed, card.item_id, d))
            total += cents
        return total


def _index(item: PlaidItem, subtype: str) -> int | None:
    return next((i for i, a in enumerate(item.accounts) if a.subtype == subtype), None)


def _on(m: Movement, account: int) -> Movement:
    m.account = account
    return m
