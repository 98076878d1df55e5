"""Chain heads as the log assets recorded them in Dagster's event log: the evidence kept outside DuckDB."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from ledger_pipeline.lib.verify import RecordedHead

PAGE = 1000


def recorded_heads(
    instance: dg.DagsterInstance, asset_keys: list[dg.AssetKey], tenant_ids: Sequence[str] | None = None
) -> list[RecordedHead]:
    """Every chain head recorded by a materialisation of the given log assets (optionally only these tenants')."""
    heads: set[RecordedHead] = set()
    partitions = None if tenant_ids is None else list(tenant_ids)
    for key in asset_keys:
        records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions)
        cursor = None
        while True:
            page = instance.fetch_materializations(records_filter, limit=PAGE, cursor=cursor)
            for record in page.records:
                heads.update(_heads_of(record))
            if not page.has_more:
                break
            cursor = page.cursor
    # A run over several tenants records every tenant's head in each partition's materialisation.
    wanted = [h for h in heads if partitions is None or h.tenant_id in partitions]
    return sorted(wanted, key=lambda h: (h.tenant_id, h.entity_type, h.seq))


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


def vouched_baselines(instance: dg.DagsterInstance, key: dg.AssetKey, tenant_ids: list[str]) -> dict[str, Baseline]:
    """Per tenant, newest first, the materialisations of `key` for its partition up to one a passing check vouched for.

    One walk over the materialisations of all the tenants' partitions (a run over many tenants records one per
    partition), not one query per tenant: each record speaks only for its own partition's tenant.
    """
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=list(tenant_ids))
    passed_over: dict[str, list[RecordedHead]] = {t: [] for t in tenant_ids}
    found: dict[str, Baseline] = {}
    cursor, limit = None, len(tenant_ids)  # usually each tenant's latest materialisation is the one
    while len(found) < len(tenant_ids):
        page = instance.fetch_materializations(records_filter, limit=limit, cursor=cursor, ascending=False)
        for record in page.records:
            tenant_id = record.partition_key
            info = _tenant_info(record, tenant_id) if tenant_id in passed_over and tenant_id not in found else None
            if info is None:
                continue
            head = _head(record, tenant_id, info)
            if info.get("chain_verified") is True:
                found[tenant_id] = Baseline(head, tuple(passed_over[tenant_id]))
            elif head is not None:
                passed_over[tenant_id].append(head)
        if not page.has_more:
            break
        cursor, limit = page.cursor, PAGE
    return {t: found.get(t) or Baseline(None, tuple(passed_over[t])) for t in tenant_ids}


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
