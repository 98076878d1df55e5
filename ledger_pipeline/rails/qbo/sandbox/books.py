"""Compact mutable state of one synthetic company's books.

Each entity is a `Table` of parallel typed arrays indexed by slot (Id - 1): only the small mutable
facts live here (times, SyncToken, flags, totals, balances, links). Everything static (lines, names,
dates) is derived at render time from a per-object seeded RNG. Each table also keeps its live rows
as a sorted array of `LastUpdatedTime << 32 | Id` keys, maintained incrementally, so a query page
is a bisect plus a slice.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left, insort

from ledger_pipeline.world.card_spend import CardTransaction
from ledger_pipeline.world.flows import CardPayment

DELETED, VOIDED, INACTIVE = 1, 2, 4
ID_BITS = 32
ID_MASK = (1 << ID_BITS) - 1


def key(sec: int, slot: int) -> int:
    return (sec << ID_BITS) | (slot + 1)


class OpenSet:
    """Insertion-ordered set of ints with O(1) add/remove and deterministic random choice."""

    __slots__ = ("items", "pos")

    def __init__(self) -> None:
        self.items: list[int] = []
        self.pos: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, value: int) -> bool:
        return value in self.pos

    def add(self, value: int) -> None:
        if value not in self.pos:
            self.pos[value] = len(self.items)
            self.items.append(value)

    def discard(self, value: int) -> None:
        index = self.pos.pop(value, None)
        if index is None:
            return
        last = self.items.pop()
        if index < len(self.items):
            self.items[index] = last
            self.pos[last] = index

    def choice(self, rng: random.Random) -> int:
        return self.items[int(rng.random() * len(self.items))]


class Table:
    """One entity's rows in one company."""

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind  # "name" (Vendor/Customer/Account), "doc" (Bill/Invoice), "pay" (BillPayment/Payment),
        # "deposit" (Deposit: party holds the world's payout index), "purchase" (Purchase: see Books.card_purchases)
        self.created = array("q")
        self.updated = array("q")
        self.sync = array("l")
        self.edits = array("l")
        self.flags = array("B")
        self.party = array("l")  # doc/pay: Vendor or Customer slot
        self.total = array("q")  # doc/pay: cents
        self.applied = array("q")  # doc: cents paid; pay: unused
        self.balance = array("q")  # Vendor/Customer: open balance in cents
        self.links: dict[int, list] = {}  # pay: slot -> [[doc slot, cents]]; doc: slot -> [pay slot]
        self.paid: dict[int, tuple[int, ...]] = {}  # pay: slot -> the docs it paid when made (kept after a void)
        self.cancelled: dict[int, int] = {}  # slot -> when it was first voided or deleted (a later delete moves
        # `updated`, not the moment the money was called back)
        self.keys = array("q")  # live rows, sorted
        self.active_keys = array("q")  # name lists: active rows, sorted
        self.tombs = array("q")  # deleted rows, keyed by deletion time
        self.indexing = False
        self.version = 0
        # The replay's random picks range over the first `drawn` rows (None: all): a row added for the world (the
        # Ramp card's account) is out of their reach, so adding it moved no draw and changed no other object.
        self.drawn: int | None = None

    def __len__(self) -> int:
        return len(self.created)

    def add(self, sec: int, party: int = -1, total: int = 0) -> int:
        slot = len(self.created)
        for column, value in ((self.created, sec), (self.updated, sec), (self.sync, 0), (self.edits, 0),
                              (self.flags, 0), (self.party, party), (self.total, total), (self.applied, 0),
                              (self.balance, 0)):
            column.append(value)
        if self.indexing:
            self._index(slot)
        self.version += 1
        return slot

    def is_live(self, slot: int) -> bool:
        return not self.flags[slot] & DELETED

    def is_active(self, slot: int) -> bool:
        return not self.flags[slot] & (DELETED | INACTIVE)

    def _unindex(self, slot: int) -> None:
        old = key(self.updated[slot], slot)
        del self.keys[bisect_left(self.keys, old)]
        if self.kind == "name" and not self.flags[slot] & INACTIVE:
            del self.active_keys[bisect_left(self.active_keys, old)]

    def _index(self, slot: int) -> None:
        new = key(self.updated[slot], slot)
        insort(self.keys, new)
        if self.kind == "name" and not self.flags[slot] & INACTIVE:
            insort(self.active_keys, new)

    def bump(self, slot: int, sec: int, *, edit: bool = False, set_flags: int = 0, clear_flags: int = 0) -> None:
        """A new version of a row: SyncToken + 1, LastUpdatedTime = sec, optional flag changes."""
        if self.indexing:
            self._unindex(slot)
        self.sync[slot] += 1
        self.updated[slot] = max(sec, self.updated[slot])
        if edit:
            self.edits[slot] += 1
        self.flags[slot] = (self.flags[slot] | set_flags) & ~clear_flags
        if set_flags & VOIDED:
            self.cancelled.setdefault(slot, self.updated[slot])
        if self.indexing:
            self._index(slot)
        self.version += 1

    def restamp(self, slot: int, stamp: int) -> None:
        """A new version (SyncToken + 1) whose LastUpdatedTime is `stamp`, even if that is earlier than the
        previous version's: QBO servers whose clocks disagree."""
        if self.indexing:
            self._unindex(slot)
        self.sync[slot] += 1
        self.updated[slot] = stamp
        if self.indexing:
            self._index(slot)
        self.version += 1

    def delete(self, slot: int, sec: int) -> None:
        if self.indexing:
            self._unindex(slot)
            insort(self.tombs, key(sec, slot))
        self.flags[slot] |= DELETED
        self.updated[slot] = max(sec, self.updated[slot])
        self.cancelled.setdefault(slot, self.updated[slot])
        self.version += 1

    def build_indexes(self) -> None:
        live = [key(self.updated[s], s) for s in range(len(self)) if not self.flags[s] & DELETED]
        live.sort()
        self.keys = array("q", live)
        if self.kind == "name":
            self.active_keys = array("q", [k for k in live if not self.flags[(k & ID_MASK) - 1] & INACTIVE])
        tombs = [key(self.updated[s], s) for s in range(len(self)) if self.flags[s] & DELETED]
        self.tombs = array("q", sorted(tombs))
        self.indexing = True
        self.version += 1

    def random_slot(self, rng: random.Random, want, tries: int = 24) -> int | None:
        """A uniformly drawn slot satisfying `want(slot)`, by rejection; None if unlucky or empty."""
        n = len(self) if self.drawn is None else min(len(self), self.drawn)
        for _ in range(tries if n else 0):
            slot = int(rng.random() * n)
            if want(slot):
                return slot
        return None


class Side:
    """One half of the ledger: payables (Vendor, Bill, BillPayment) or receivables (Customer, Invoice, Payment)."""

    def __init__(self, party: Table, doc: Table, pay: Table) -> None:
        self.party, self.doc, self.pay = party, doc, pay
        self.open_docs = OpenSet()  # doc slots with a balance left that a payment may pick (none held)
        self.open_by_party: dict[int, set[int]] = {}  # every doc slot with a balance left (held ones too)
        self.held: set[int] = set()  # doc slots the books never settle (paid outside them: world/breaks.py)

    def hold(self, slot: int) -> None:
        """Keep the document open and out of every payment's, void's and deletion's reach."""
        self.held.add(slot)
        self.open_docs.discard(slot)

    def doc_balance(self, slot: int) -> int:
        doc = self.doc
        if doc.flags[slot] & (DELETED | VOIDED):
            return 0
        return doc.total[slot] - doc.applied[slot]

    def refresh_open(self, slot: int) -> None:
        party = self.doc.party[slot]
        if self.doc_balance(slot) > 0:
            if slot not in self.held:
                self.open_docs.add(slot)
            self.open_by_party.setdefault(party, set()).add(slot)
        else:
            self.open_docs.discard(slot)
            bucket = self.open_by_party.get(party)
            if bucket is not None:
                bucket.discard(slot)
                if not bucket:
                    del self.open_by_party[party]


class Books:
    """All tables of one company plus the two ledger sides that tie them together."""

    def __init__(self) -> None:
        kinds = {"Vendor": "name", "Customer": "name", "Account": "name", "Bill": "doc", "Invoice": "doc",
                 "BillPayment": "pay", "Payment": "pay", "Deposit": "deposit", "Purchase": "purchase"}
        self.tables: dict[str, Table] = {name: Table(name, kind) for name, kind in kinds.items()}
        t = self.tables
        self.ap = Side(t["Vendor"], t["Bill"], t["BillPayment"])
        self.ar = Side(t["Customer"], t["Invoice"], t["Payment"])
        self.card_payments: list[CardPayment] = []  # append-only: customer Payments taken by card
        self.card_purchases: list[CardTransaction] = []  # append-only: Purchase slot i books the i-th card transaction

    def build_indexes(self) -> None:
        for table in self.tables.values():
            table.build_indexes()
