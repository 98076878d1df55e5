"""Stripe's log assets: one per entity of its table, on the shared log-asset factory (defs/log_assets.py)."""

from ledger_pipeline.defs.log_assets import build_log_asset
from ledger_pipeline.rails.stripe.entities import ENTITIES, StripeEntity
from ledger_pipeline.rails.stripe.errors import StripeError
from ledger_pipeline.rails.stripe.rail import RAIL


def _description(entity: StripeEntity) -> str:
    if entity.per_payout:
        return (
            "What each paid payout of the tenant's connected account settled (the balance transactions "
            "/v1/balance_transactions?payout=po_... lists), one version per payout, appended to the immutable, "
            "hash-chained raw.entity_log (this asset is its view raw.stripe_payout_compositions). First sync: every "
            "paid payout; then one list per payout that the events since show paid or reconciled. Rows and cursor "
            "commit in one transaction."
        )
    feed = (
        "the events after the saved event id (a whole re-list and an id sweep once Stripe's 30 days of events "
        "no longer reach it)"
        if entity.has_events
        else "a re-list from 14 days before the newest `created` seen (their status moves for days)"
    )
    return (
        f"Every version of every Stripe {entity.name} of the tenant's connected account, appended to the immutable, "
        f"hash-chained raw.entity_log (this asset is its view raw.stripe_{entity.table}). First sync: a whole "
        f"list; then {feed}. Rows and cursor commit in one transaction."
    )


LOG_ASSETS = [build_log_asset(RAIL, e, description=_description(e), rail_errors=(StripeError,)) for e in ENTITIES]
