"""QBO's log assets: one per entity of its table, on the shared log-asset factory (defs/log_assets.py)."""

from ledger_pipeline.defs.log_assets import build_log_asset
from ledger_pipeline.rails.qbo.entities import ENTITIES, QboEntity
from ledger_pipeline.rails.qbo.errors import QboError
from ledger_pipeline.rails.qbo.rail import RAIL


def _description(entity: QboEntity) -> str:
    return (
        f"Every version of every QBO {entity.name} seen for the tenant, appended to the immutable, "
        f"hash-chained raw.entity_log (this asset is its view raw.qbo_{entity.table}). Reads the "
        "query feed from the last committed cursor"
        + (", the CDC feed for deletes" if not entity.is_name_list else " (inactive rows included)")
        + " and sweeps ids when counts disagree; rows and cursor commit in one transaction."
    )


LOG_ASSETS = [build_log_asset(RAIL, e, description=_description(e), rail_errors=(QboError,)) for e in ENTITIES]
