"""The Plaid objects the pipeline mirrors, declared as data.

`name` is the log's entity_type. Items and accounts are read whole each sync (`/item/get`, `/accounts/get`): a
changed balance is a new account version, so the log keeps every balance reading. Transactions come from
`/transactions/sync`, whose cursor makes the feed complete: added, modified and removed since the last sync.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlaidEntity:
    name: str  # the log's entity_type: "item", "account", "transaction"
    table: str  # physical suffix: raw.plaid_<table>, mirror.plaid_<table>
    id_field: str  # the field of Plaid's object holding its id


ITEM = PlaidEntity("item", "items", "item_id")
ACCOUNT = PlaidEntity("account", "accounts", "account_id")
TRANSACTION = PlaidEntity("transaction", "transactions", "transaction_id")
ENTITIES: tuple[PlaidEntity, ...] = (ITEM, ACCOUNT, TRANSACTION)
BY_NAME: dict[str, PlaidEntity] = {e.name: e for e in ENTITIES}
