"""Bookkeeping operations on `Books`, each keeping references and balances consistent.

A payment links open documents of one party and lowers their Balance; voiding or deleting it puts
the balance back; documents are only voided or deleted while nothing is applied to them. Every
operation bumps the rows it changes (SyncToken + 1, LastUpdatedTime = now), including the party
whose open balance moved, so every Balance the API shows belongs to a logged version.
"""

from __future__ import annotations

import random

from .books import DELETED, INACTIVE, VOIDED, Books, Side, Table
from .names import AccountDef


def amount_cents(rng: random.Random) -> int:
    dollars = min(25_000.0, max(8.0, rng.lognormvariate(5.2, 1.1)))
    if rng.random() < 0.2:
        return int(dollars) * 100
    return int(dollars * 100)


class Ledger:
    """The operations a bookkeeper performs on one company's books."""

    def __init__(self, books: Books, chart: tuple[AccountDef, ...]) -> None:
        self.books = books
        self.chart = chart
        self.accounts = books.tables["Account"]

    # --- name lists -------------------------------------------------------------------------
    def new_accounts(self, sec: int, count: int) -> None:
        """Open the chart's next `count` accounts at `sec`."""
        for _ in range(count):
            self.accounts.add(sec)

    def new_party(self, side: Side, sec: int) -> int:
        return side.party.add(sec)

    def _random_active(self, table: Table, rng: random.Random) -> int | None:
        return table.random_slot(rng, table.is_active)

    def set_active(self, table: Table, rng: random.Random, sec: int, active: bool) -> bool:
        if active:
            slot = table.random_slot(rng, lambda s: table.flags[s] & INACTIVE and table.is_live(s), tries=12)
        else:
            slot = table.random_slot(rng, table.is_active)
        if slot is None or (table is self.accounts and self.chart[slot].system):
            return False
        if active:
            table.bump(slot, sec, clear_flags=INACTIVE)
        else:
            table.bump(slot, sec, set_flags=INACTIVE)
        return True

    def _party_delta(self, side: Side, party: int, cents: int, sec: int) -> None:
        if cents:
            side.party.balance[party] += cents
            side.party.bump(party, sec)

    # --- documents (Bill, Invoice) -----------------------------------------------------------
    def new_doc(self, side: Side, rng: random.Random, sec: int) -> int | None:
        party = self._random_active(side.party, rng)
        if party is None:
            return None
        total = amount_cents(rng)
        slot = side.doc.add(sec, party=party, total=total)
        side.refresh_open(slot)
        self._party_delta(side, party, total, sec)
        return slot

    def _untouched_doc(self, side: Side, rng: random.Random) -> int | None:
        doc = side.doc
        return doc.random_slot(rng, lambda s: doc.is_live(s) and doc.applied[s] == 0 and s not in doc.links
                               and s not in side.held)

    def void_doc(self, side: Side, rng: random.Random, sec: int) -> bool:
        slot = self._untouched_doc(side, rng)
        if slot is None or side.doc.flags[slot] & VOIDED:
            return False
        owed = side.doc_balance(slot)
        side.doc.bump(slot, sec, set_flags=VOIDED)
        side.refresh_open(slot)
        self._party_delta(side, side.doc.party[slot], -owed, sec)
        return True

    def delete_doc(self, side: Side, rng: random.Random, sec: int) -> bool:
        slot = self._untouched_doc(side, rng)
        if slot is None:
            return False
        owed = side.doc_balance(slot)
        side.doc.delete(slot, sec)
        side.refresh_open(slot)
        self._party_delta(side, side.doc.party[slot], -owed, sec)
        return True

    # --- payments (BillPayment, Payment) -------------------------------------------------------
    def pay(self, side: Side, rng: random.Random, sec: int, *, allow_unapplied: bool) -> int | None:
        if not side.open_docs:
            return None
        first = side.open_docs.choice(rng)
        party = side.doc.party[first]
        targets = [first]
        if rng.random() < 0.25:
            others = sorted(side.open_by_party.get(party, set()) - {first} - side.held)
            targets += others[: rng.randint(1, 2)]
        links = []
        for i, slot in enumerate(targets):
            owed = side.doc_balance(slot)
            partial = i == len(targets) - 1 and rng.random() < 0.2 and owed > 100
            links.append([slot, round(owed * rng.uniform(0.2, 0.9)) if partial else owed])
        applied = sum(cents for _, cents in links)
        unapplied = amount_cents(rng) // 10 if allow_unapplied and rng.random() < 0.08 else 0
        pay = side.pay.add(sec, party=party, total=applied + unapplied)
        side.pay.links[pay] = links
        side.pay.paid[pay] = tuple(slot for slot, _ in links)  # other rails' view of a payment voided later
        for slot, cents in links:
            side.doc.applied[slot] += cents
            side.doc.links.setdefault(slot, []).append(pay)
            side.doc.bump(slot, sec)
            side.refresh_open(slot)
        self._party_delta(side, party, -applied, sec)
        return pay

    def _unapply(self, side: Side, pay: int, sec: int) -> None:
        applied = 0
        for slot, cents in side.pay.links.pop(pay, []):
            applied += cents
            side.doc.applied[slot] -= cents
            back = side.doc.links[slot]
            back.remove(pay)
            if not back:
                del side.doc.links[slot]
            side.doc.bump(slot, sec)
            side.refresh_open(slot)
        self._party_delta(side, side.pay.party[pay], applied, sec)

    def void_pay(self, side: Side, rng: random.Random, sec: int) -> bool:
        table = side.pay
        slot = table.random_slot(rng, lambda s: not table.flags[s] & (DELETED | VOIDED))
        if slot is None:
            return False
        self._unapply(side, slot, sec)
        table.bump(slot, sec, set_flags=VOIDED)
        return True

    def delete_pay(self, side: Side, rng: random.Random, sec: int) -> bool:
        table = side.pay
        slot = table.random_slot(rng, table.is_live)
        if slot is None:
            return False
        self._unapply(side, slot, sec)
        table.delete(slot, sec)
        return True

    # --- edits ------------------------------------------------------------------------------
    def edit(self, table: Table, rng: random.Random, sec: int) -> bool:
        slot = table.random_slot(rng, lambda s: not table.flags[s] & (DELETED | VOIDED))
        if slot is None:
            return False
        table.bump(slot, sec, edit=True)
        return True

    def touch(self, table: Table, slot: int, sec: int, backdate: int = 0) -> None:
        """A new version at `sec`; with `backdate`, stamped that many seconds earlier (even before the last one)."""
        if 0 <= slot < len(table) and table.is_live(slot):
            if backdate:
                table.restamp(slot, sec - backdate)
            else:
                table.bump(slot, sec)
