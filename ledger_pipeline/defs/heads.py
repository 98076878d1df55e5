"""Chain heads as the log assets recorded them in Dagster's event log: the evidence kept outside DuckDB."""

from datetime import UTC, datetime

import dagster as dg

from ledger_pipeline.lib.verify import RecordedHead

PAGE = 1000


def recorded_heads(
    instance: dg.DagsterInstance, asset_keys: list[dg.AssetKey], tenant_id: str | None = None
) -> list[RecordedHead]:
    """Every chain head recorded by a materialisation of the given log assets (optionally one tenant's)."""
    heads: set[RecordedHead] = set()
    for key in asset_keys:
        records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[tenant_id] if tenant_id else None)
        cursor = None
        while True:
            page = instance.fetch_materializations(records_filter, limit=PAGE, cursor=cursor)
            for record in page.records:
                heads.update(_heads_of(record))
            if not page.has_more:
                break
            cursor = page.cursor
    return sorted(heads, key=lambda h: (h.tenant_id, h.entity_type, h.seq))


def _heads_of(record: dg.EventLogRecord) -> list[RecordedHead]:
    materialization = record.asset_materialization
    if materialization is None or "tenants" not in materialization.metadata:
        return []
    meta = materialization.metadata
    rail, entity_type = meta["rail"].value, meta["entity_type"].value
    recorded_at = datetime.fromtimestamp(record.timestamp, UTC).isoformat(timespec="seconds")
    return [
        RecordedHead(tenant, rail, entity_type, info["chain_head_seq"], info["chain_head_hash"], record.run_id, recorded_at)
        for tenant, info in meta["tenants"].value.items()
        if info.get("chain_head_seq") is not None
    ]
