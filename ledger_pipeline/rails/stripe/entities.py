"""The Stripe objects the pipeline mirrors, declared as data: adding one is one row here.

`name` is Stripe's own `object` value (what an event's `data.object.object` says, and the log's entity_type);
`path` the list endpoint under /v1. Balance transactions have no events: they are listed by `created` and
re-read per payout, which is where their status moves.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StripeEntity:
    name: str  # Stripe's object type: "charge", "balance_transaction"
    table: str  # physical suffix: raw.stripe_<table>, mirror.stripe_<table>
    path: str  # list endpoint: /v1/<path>
    has_events: bool = True  # its changes come through /v1/events
    deletable: bool = False  # can be deleted (a `<name>.deleted` event, then `{id, object, deleted: true}`)


ENTITIES: tuple[StripeEntity, ...] = (
    StripeEntity("customer", "customers", "customers", deletable=True),
    StripeEntity("charge", "charges", "charges"),
    StripeEntity("refund", "refunds", "refunds"),
    StripeEntity("dispute", "disputes", "disputes"),
    StripeEntity("payout", "payouts", "payouts"),
    StripeEntity("balance_transaction", "balance_transactions", "balance_transactions", has_events=False),
)

BY_NAME: dict[str, StripeEntity] = {e.name: e for e in ENTITIES}
