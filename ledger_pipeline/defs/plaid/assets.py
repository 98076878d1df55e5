"""Plaid's log assets: one per entity of its table, on the shared log-asset factory (defs/log_assets.py).

Accounts are read after transactions in a run, so each balance reading logged comes after the transactions it
counts: the check that balances follow the posted flows compares them in log order.
"""

import dagster as dg

from ledger_pipeline.defs.log_assets import build_log_asset
from ledger_pipeline.rails.plaid.entities import ACCOUNT, ENTITIES, ITEM, TRANSACTION, PlaidEntity
from ledger_pipeline.rails.plaid.errors import PlaidError
from ledger_pipeline.rails.plaid.rail import RAIL

FEEDS = {
    ITEM: "/item/get for each of the tenant's items, whole (its `error` says when the bank wants a new login)",
    ACCOUNT: "/accounts/get for each item, whole: each changed balance is a new version (a balance reading); an "
    "account the bank no longer lists is logged as deleted",
    TRANSACTION: "/transactions/sync per item from its saved cursor until has_more is false: added and modified as "
    "versions, removed (a pending replaced by its posted twin, or cancelled) as deletes; restarted from the saved "
    "cursors when Plaid says the data changed during paging",
}


def _description(entity: PlaidEntity) -> str:
    return (
        f"Every version of every Plaid {entity.name} of the tenant's items, appended to the immutable, hash-chained "
        f"raw.entity_log (this asset is its view raw.plaid_{entity.table}): {FEEDS[entity]}. Rows and cursor commit "
        "in one transaction. An item that needs a new login is skipped (its cursor kept) and marked in the registry."
    )


def _deps(entity: PlaidEntity) -> list[dg.AssetKey]:
    return [dg.AssetKey(["raw", f"plaid_{TRANSACTION.table}"])] if entity is ACCOUNT else []


LOG_ASSETS = [
    build_log_asset(RAIL, e, description=_description(e), rail_errors=(PlaidError,), deps=_deps(e)) for e in ENTITIES
]
