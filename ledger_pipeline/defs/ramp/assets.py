"""Ramp's log assets: one per entity of its table, on the shared log-asset factory (defs/log_assets.py).

Ramp has no change feed: each entity's description says how a sync reads it (rails/ramp/entities.py).
"""

from ledger_pipeline.defs.log_assets import build_log_asset
from ledger_pipeline.rails.ramp.entities import ENTITIES, RampEntity
from ledger_pipeline.rails.ramp.errors import RampError
from ledger_pipeline.rails.ramp.rail import RAIL


def _feed(entity: RampEntity) -> str:
    hidden = " and ".join(f"{name}={value}" for name, value in entity.hidden)
    also = f", and the set Ramp's default list hides ({hidden})" if hidden else ""
    if entity.read == "whole":
        return f"/{entity.path} read whole each sync{also}; the count finds anything gone (logged as deleted)"
    if entity.read == "window":
        return (f"/{entity.path} from {entity.lookback_days} days before the newest {entity.time_field} the last sync "
                f"saw{also}, then every {entity.name} left not final, read again by id")  # fmt: skip
    return f"/{entity.path} updated after the newest {entity.time_field} the last sync saw"


def _description(entity: RampEntity) -> str:
    return (
        f"Every version of every Ramp {entity.name} of the tenant's business, appended to the immutable, "
        f"hash-chained raw.entity_log (this asset is its view raw.ramp_{entity.table}): {_feed(entity)}. A version "
        "is logged once, whatever is read again. Rows and cursor commit in one transaction."
    )


LOG_ASSETS = [build_log_asset(RAIL, e, description=_description(e), rail_errors=(RampError,)) for e in ENTITIES]
