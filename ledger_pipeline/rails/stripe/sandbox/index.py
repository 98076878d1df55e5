"""Per-account indexes of the Stripe view: sorted entries per object type, ids, and the event log.

Built lazily on an account's first request and extended incrementally from the world's append-only
lists as the clock moves (a world rebuilt because the clock went back rebuilds the index).
"""

from __future__ import annotations

from bisect import insort
from typing import Any

from ledger_pipeline.world.flows import Flows
from ledger_pipeline.world.ids import stable_id

from .lists import Entry
from .render import View

KINDS = ("customer", "charge", "refund", "dispute", "payout")
# world moment -> [(Stripe event type, object kind, previous_attributes maker)]
EVENTS: dict[str, list[tuple[str, str, Any]]] = {
    "customer.created": [("customer.created", "customer", None)],
    "customer.updated": [("customer.updated", "customer", "email")],
    "customer.deleted": [("customer.deleted", "customer", None)],
    "charge": [("charge.succeeded", "charge", None)],
    "refund": [("refund.created", "refund", None), ("charge.refunded", "charge", "refund")],
    "dispute": [("charge.dispute.created", "dispute", None)],
    "payout.created": [("payout.created", "payout", None)],
    "payout.in_transit": [("payout.updated", "payout", {"status": "pending"})],
    "payout.paid": [("payout.updated", "payout", {"status": "in_transit"}), ("payout.paid", "payout", None)],
    "deposit": [],
}


class AccountIndex:
    """Everything a list, a read by id or the event feed needs, for one account's world."""

    def __init__(self, view: View) -> None:
        self.flows: Flows = view.flows
        self.entries: dict[str, list[Entry]] = {kind: [] for kind in (*KINDS, "txn", "event")}
        self.ids: dict[str, tuple[str, Any]] = {}  # id -> (kind, ref)
        self.entry_of: dict[str, Entry] = {}
        self._seen = {kind: 0 for kind in (*KINDS, "txn", "event")}
        self.refresh(view)

    def _add(self, kind: str, created: int, object_id: str, ref: Any) -> None:
        entry = (created, object_id, ref)
        entries = self.entries[kind]
        if entries and entries[-1] > entry:
            insort(entries, entry)
        else:
            entries.append(entry)
        self.ids[object_id] = (kind, ref)
        self.entry_of[object_id] = entry

    def refresh(self, view: View) -> None:
        flows = self.flows
        for kind in KINDS:
            objects = {"customer": flows.customers, "charge": flows.charges, "refund": flows.refunds,
                       "dispute": flows.disputes, "payout": flows.payouts}[kind]
            for index in range(self._seen[kind], len(objects)):
                self._add(kind, objects[index].created, view.id_of(kind, index), index)
            self._seen[kind] = len(objects)
        for kind, index in flows.txns[self._seen["txn"]:]:
            self._add("txn", flows.obj(kind, index).created, view.txn_id(kind, index), (kind, index))
        self._seen["txn"] = len(flows.txns)
        for number in range(self._seen["event"], len(flows.moments)):
            at, moment, index = flows.moments[number]
            for sub, (event_type, kind, previous) in enumerate(EVENTS[moment]):
                event_id = stable_id("evt", view.seed, view.realm, "event", number, sub)
                target = flows.refunds[index].charge if moment == "refund" and kind == "charge" else index
                self._add("event", at, event_id, (event_type, kind, target, previous))
        self._seen["event"] = len(flows.moments)

    def find(self, object_id: str, kind: str) -> Any | None:
        """The ref of an object of `kind` with this id, or None."""
        hit = self.ids.get(object_id)
        return hit[1] if hit is not None and hit[0] == kind else None

    def entry(self, object_id: str, kind: str) -> Entry | None:
        return self.entry_of.get(object_id) if self.find(object_id, kind) is not None else None


def previous_attributes(view: View, previous: Any, kind: str, index: int, at: int) -> dict[str, Any] | None:
    """What an update event's object looked like just before it (Stripe's data.previous_attributes)."""
    if previous is None:
        return None
    if isinstance(previous, dict):
        return previous
    if previous == "email":
        return {"email": view.customer(index, at - 1)["email"]}
    before = view.charge(index, at - 1)
    now = view.charge(index, at)
    return {k: before[k] for k in ("amount_refunded", "refunded") if before[k] != now[k]}
