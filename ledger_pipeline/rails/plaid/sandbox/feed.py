"""One item's Plaid transactions as an append-only change stream, and the answers read from it.

Each Movement makes up to two Plaid transactions: the pending one (appears, is removed when the money posts or
the authorization is cancelled) and the posted one (appears, may be modified once when the bank enriches it).
A /transactions/sync answer is the net change of every transaction between two positions of that stream (the
cursor's and a snapshot), ordered by each transaction's last change; balances are sums over the movements.
"""

from __future__ import annotations

from dataclasses import dataclass

from .movements import Movement

ADDED, MODIFIED, REMOVED = "added", "modified", "removed"


@dataclass(slots=True)
class Txn:
    """One Plaid transaction: when it appears, is modified and is removed (None: not up to the clock)."""

    txn_id: str
    account: int
    movement: Movement
    pending: bool
    appear: int
    modified: int | None
    removed: int | None
    pending_id: str | None = None  # a posted transaction's pending_transaction_id


Change = tuple[int, str, Txn]  # (time of the transaction's last change, ADDED | MODIFIED | REMOVED, txn)


class Feed:
    """Every transaction of one item that appeared up to `now`, and their changes up to `now`."""

    def __init__(self, movements: list[Movement], now: int, ids) -> None:
        """`ids(key, phase)` names a movement's pending ("pending") or posted ("posted") transaction."""
        self.now = now
        self.movements = movements
        self.txns: list[Txn] = []
        self.last_change = -1
        for m in movements:
            pending_id = None
            if m.pending_at is not None and m.pending_at <= now:
                pending_id = ids(m.key, "pending")
                removed = m.ended_at if m.ended_at is not None and m.ended_at <= now else None
                self._add(Txn(pending_id, m.account, m, True, m.pending_at, None, removed))
            if m.posted_at is not None and m.posted_at <= now:
                enriched = m.enriched_at if m.enriched_at is not None and m.enriched_at <= now else None
                self._add(Txn(ids(m.key, "posted"), m.account, m, False, m.posted_at, enriched, None,
                              ids(m.key, "pending") if m.pending_at is not None else None))

    def _add(self, txn: Txn) -> None:
        self.txns.append(txn)
        self.last_change = max(self.last_change, txn.appear, txn.modified or -1, txn.removed or -1)

    def changed_after(self, since: int) -> bool:
        """Whether anything appeared, changed or went after `since` (up to now)."""
        return self.last_change > since

    def changes(self, since: int | None, until: int, accounts: set[int] | None = None) -> list[Change]:
        """The net change of each transaction from position `since` (None: the beginning) to `until`."""
        out: list[Change] = []
        for txn in self.txns:
            if txn.appear > until or (accounts is not None and txn.account not in accounts):
                continue
            removed = txn.removed if txn.removed is not None and txn.removed <= until else None
            modified = txn.modified if txn.modified is not None and txn.modified <= until else None
            existed = since is not None and txn.appear <= since and not (removed is not None and removed <= since)
            if removed is not None:
                if existed:
                    out.append((removed, REMOVED, txn))
            elif not existed:
                out.append((max(txn.appear, modified or 0), ADDED, txn))
            elif modified is not None and modified > since:  # type: ignore[operator] (existed: since is set)
                out.append((modified, MODIFIED, txn))
        out.sort(key=lambda change: (change[0], change[2].txn_id))
        return out

    def balances(self, at: int, count: int) -> list[tuple[int, int]]:
        """(sum of posted amounts, sum of pending debits) per account index, as of `at` (Plaid's sign)."""
        posted, pending = [0] * count, [0] * count
        for m in self.movements:
            if m.posted_at is not None and m.posted_at <= at:
                posted[m.account] += m.amount
            if m.pending_at is not None and m.pending_at <= at and (m.ended_at is None or m.ended_at > at) \
                    and m.pending_amount > 0:
                pending[m.account] += m.pending_amount
        return list(zip(posted, pending))
