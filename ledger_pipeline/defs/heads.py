"""Chain heads as the log assets recorded them in Dagster's event log: the evidence kept outside DuckDB."""

from dataclasses import dataclass
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
    heads = (_head(record, tenant, info) for tenant, info in materialization.metadata["tenants"].value.items())
    return [head for head in heads if head is not None]


@dataclass(frozen=True)
class Baseline:
    """Where a per-run chain check of one tenant's chain can start.

    `head` is the chain head recorded by the latest materialisation whose chain check passed for the
    tenant (None: no such materialisation, or the chain was empty then, so the whole chain is checked).
    `passed_over` holds the heads recorded by later materialisations whose check did not pass: they
    are compared with the log as well, and a failed check never becomes the starting point, so a
    tampered chain keeps failing until it is repaired.
    """

    head: RecordedHead | None
    passed_over: tuple[RecordedHead, ...]


def vouched_baseline(instance: dg.DagsterInstance, key: dg.AssetKey, tenant_id: str) -> Baseline:
    """Newest first, the materialisations of `key` for the tenant's partition, up to one a passing check vouched for."""
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[tenant_id])
    passed_over: list[RecordedHead] = []
    cursor, limit = None, 1  # usually the latest materialisation is the one
    while True:
        page = instance.fetch_materializations(records_filter, limit=limit, cursor=cursor, ascending=False)
        for record in page.records:
            info = _tenant_info(record, tenant_id)
            if info is None:
                continue
            head = _head(record, tenant_id, info)
            if info.get("chain_verified") is True:
                return Baseline(head, tuple(passed_over))
            if head is not None:
                passed_over.append(head)
        if not page.has_more:
            return Baseline(None, tuple(passed_over))
        cursor, limit = page.cursor, PAGE


def _tenant_info(record: dg.EventLogRecord, tenant_id: str) -> dict | None:
    materialization = record.asset_materialization
    if materialization is None or "tenants" not in materialization.metadata:
        return None
    return materialization.metadata["tenants"].value.get(tenant_id)


def _head(record: dg.EventLogRecord, tenant_id: str, info: dict) -> RecordedHead | None:
    if info.get("chain_head_seq") is None:
        return None
    meta = record.asset_materialization.metadata
    recorded_at = datetime.fromtimestamp(record.timestamp, UTC).isoformat(timespec="seconds")
    return RecordedHead(
        tenant_id, meta["rail"].value, meta["entity_type"].value,
        info["chain_head_seq"], info["chain_head_hash"], record.run_id, recorded_at,
    )  # fmt: skip
