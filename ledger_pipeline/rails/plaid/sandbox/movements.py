"""Money moving through one bank account, as the bank sees it: an optional pending phase, then a posting.

A Movement is the bank's whole story of one payment; Plaid shows it as up to two transactions (the pending one
and the posted one, a new id naming the pending one). Times are epoch seconds; `amount` uses Plaid's sign
(positive = money out of the account).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger_pipeline.world.calendar import DAY, seeded_rng
ENRICH_SHARE = 0.10  # posted transactions the bank enriches later (merchant, category, counterparty)


@dataclass(slots=True)
class Look:
    """How a transaction reads: the static fields of its JSON (see render.py)."""

    name: str
    kind: str  # a key of render.KINDS: payment channel, transaction code, category
    merchant: str | None = None
    counterparty: tuple[str, str] | None = None  # (name, Plaid counterparty type)
    check_number: str | None = None
    original: str | None = None
    pending_name: str | None = None  # the pending transaction's name when it differs


@dataclass(slots=True)
class Movement:
    key: str  # stable within the item: what the money is (e.g. "payout|12")
    account: int  # index into the item's accounts
    amount: int  # posted cents, positive = money out
    authorized: int  # when the money started to move
    look: Look
    pending_at: int | None = None  # the pending transaction appears
    pending_amount: int = 0
    posted_at: int | None = None  # the posted transaction appears (None: never posts)
    ended_at: int | None = None  # the pending transaction goes (posted or cancelled)
    enriched_at: int | None = None  # the posted transaction is modified (merchant, category, counterparty)


def enrich_offset(seed: int, item_id: str, key: str) -> int | None:
    """Seconds after posting at which the bank enriches the movement's posted transaction (~10 %), or None."""
    rng = seeded_rng(seed, item_id, key, "enrich")
    if rng.random() < ENRICH_SHARE:
        return rng.randint(1, 5) * DAY + rng.randrange(6 * 3600)
    return None


def finish(m: Movement, enrich_after: int | None, sends_pending: bool) -> Movement:
    """Apply the bank's habits: no pending phase at a bank that sends none, and the late enrichment."""
    if not sends_pending and m.pending_at is not None:
        m.pending_at = m.ended_at = None
    if m.pending_at is not None and m.ended_at is None:
        m.ended_at = m.posted_at
    m.enriched_at = None if m.posted_at is None or enrich_after is None else m.posted_at + enrich_after
    return m
