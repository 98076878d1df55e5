"""The Stripe objects the pipeline mirrors, declared as data: adding one is one row here.

`name` is Stripe's own `object` value (what an event's `data.object.object` says, and the log's entity_type);
`path` the list endpoint under /v1. Balance transactions have no events: they are listed by `created` and
re-read per payout, which is where their status moves.

Each entity reads only the event types that concern it (`types[]`, at most 20), among them those of objects
that change it without an event of its own (`touched_by`): a dispute flips its charge's `disputed`, a
refund moves its charge's `amount_refunded`; such a charge is read again by id.

Which charges, refunds and disputes a payout settled is no field of theirs: Stripe answers it only as a list,
`/v1/balance_transactions?payout=po_...`, once an automatic payout is paid and reconciled. An entity `per_payout`
logs that answer as an object of its own, one per such payout (`payout_composition`, keyed by the payout's id): read
for each paid payout the first listing finds, then for each payout its events say was paid or reconciled.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StripeEntity:
    name: str  # Stripe's object type: "charge", "balance_transaction"
    table: str  # physical suffix: raw.stripe_<table>, mirror.stripe_<table>
    path: str  # list endpoint: /v1/<path>
    event_types: tuple[str, ...] = ()  # the /v1/events types that carry it (or touch it); none: it has no events
    deletable: bool = False  # can be deleted (a `<name>.deleted` event, then `{id, object, deleted: true}`)
    touched_by: tuple[tuple[str, str], ...] = ()  # (object type, its field naming this entity's id): read it again
    per_payout: bool = False  # one version per settled payout listed at `path`: what it settled (sync.composition)

    @property
    def has_events(self) -> bool:
        return bool(self.event_types)


def _types(prefix: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{prefix}.{name}" for name in names)


CUSTOMER_EVENTS = _types("customer", "created", "updated", "deleted")
CHARGE_EVENTS = _types("charge", "captured", "expired", "failed", "pending", "refunded", "succeeded", "updated")
REFUND_EVENTS = (*_types("refund", "created", "updated", "failed"), "charge.refund.updated")
DISPUTE_EVENTS = _types("charge.dispute", "created", "updated", "closed", "funds_withdrawn", "funds_reinstated")
PAYOUT_EVENTS = _types("payout", "created", "updated", "paid", "failed", "canceled", "reconciliation_completed")
SETTLED_EVENTS = _types("payout", "paid", "reconciliation_completed")  # when a payout's composition can be read

ENTITIES: tuple[StripeEntity, ...] = (
    StripeEntity("customer", "customers", "customers", CUSTOMER_EVENTS, deletable=True),
    StripeEntity(
        "charge", "charges", "charges", (*CHARGE_EVENTS, *REFUND_EVENTS, *DISPUTE_EVENTS),
        touched_by=(("refund", "charge"), ("dispute", "charge")),
    ),
    StripeEntity("refund", "refunds", "refunds", REFUND_EVENTS),
    StripeEntity("dispute", "disputes", "disputes", DISPUTE_EVENTS),
    StripeEntity("payout", "payouts", "payouts", PAYOUT_EVENTS),
    StripeEntity("balance_transaction", "balance_transactions", "balance_transactions"),
    StripeEntity("payout_composition", "payout_compositions", "payouts", SETTLED_EVENTS, per_payout=True),
)

BY_NAME: dict[str, StripeEntity] = {e.name: e for e in ENTITIES}
