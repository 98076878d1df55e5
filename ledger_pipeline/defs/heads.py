"""Chain heads as recorded in Dagster's event log: the evidence kept outside DuckDB.

Each run's `chain_intact` check records, for every tenant of the run, the chain head after the run's
append and whether the check passed for that tenant (its metadata `heads`). That is one record per
step: a run over T tenants writes T heads, where metadata on the materialisations would be written
into each of the T partitions (T x T). Materialisations recorded before this change carry the heads
in their own metadata (`tenants`); they are still read, so no recorded head is lost as evidence.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from ledger_pipeline.lib.verify import RecordedHead

PAGE = 1000
CHAIN_CHECK = "chain_intact"


def head_record(seq: int | None, row_hash: str | None, verified: bool) -> dict[str, object]:
    """One tenant's entry in the chain check's `heads`: the head after the run and whether its check passed."""
    return {"chain_head_seq": seq, "chain_head_hash": row_hash, "chain_verified": verified}


class _CheckedHeads:
    """Per run, the `heads` its chain_intact evaluation recorded for one log asset.

    Walks the check's evaluations newest first, only as far back as the oldest run asked about
    (materialisations are read newest first too, so a run's evaluation is usually on the first page).
    """

    def __init__(self, instance: dg.DagsterInstance, key: dg.AssetKey) -> None:
        self._storage = instance.event_log_storage
        self._check = dg.AssetCheckKey(key, CHAIN_CHECK)
        self._by_run: dict[str, Mapping[str, dict]] = {}
        self._cursor: int | None = None
        self._limit = 4  # the run asked about is usually the latest: pages grow from a few records to PAGE
        self._exhausted = False

    def of_run(self, run_id: str) -> Mapping[str, dict]:
        while run_id not in self._by_run and not self._exhausted:
            page = self._storage.get_asset_check_execution_history(self._check, limit=self._limit, cursor=self._cursor)
            for record in page:
                self._by_run.setdefault(record.run_id, _evaluated_heads(record))
            self._exhausted = len(page) < self._limit
            self._cursor = page[-1].id if page else self._cursor
            self._limit = min(self._limit * 4, PAGE)
        return self._by_run.get(run_id, {})

    def info(self, record: dg.EventLogRecord, tenant_id: str) -> dict | None:
        """The tenant's entry for this materialisation: from its run's check, else from the materialisation itself."""
        info = self.of_run(record.run_id).get(tenant_id)
        return info if info is not None else _materialisation_info(record, tenant_id)


def _evaluated_heads(record) -> Mapping[str, dict]:  # an AssetCheckExecutionRecord (not exported by dagster)
    """A completed evaluation's `heads`; empty for a planned one (its step failed) or one recorded before them."""
    evaluation = record.event.dagster_event.event_specific_data if record.event and record.event.dagster_event else None
    heads = getattr(evaluation, "metadata", {}).get("heads")
    return heads.value if heads is not None else {}


def _materialisation_info(record: dg.EventLogRecord, tenant_id: str) -> dict | None:
    """Heads recorded in the materialisation's own metadata, as runs before the `heads` check metadata did."""
    materialization = record.asset_materialization
    if materialization is None or "tenants" not in materialization.metadata:
        return None
    info = materialization.metadata["tenants"].value.get(tenant_id)
    return info if info is not None and "chain_head_hash" in info else None


def recorded_heads(
    instance: dg.DagsterInstance, asset_keys: list[dg.AssetKey], tenant_ids: Sequence[str] | None = None
) -> list[RecordedHead]:
    """Every chain head recorded for a materialisation of the given log assets (optionally only these tenants')."""
    heads: set[RecordedHead] = set()
    partitions = None if tenant_ids is None else list(tenant_ids)
    for key in asset_keys:
        checked = _CheckedHeads(instance, key)
        records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions)
        cursor = None
        while True:
            page = instance.fetch_materializations(records_filter, limit=PAGE, cursor=cursor, ascending=False)
            for record in page.records:
                info = checked.info(record, record.partition_key) if record.partition_key else None
                head = None if info is None else _head(record, record.partition_key, info)
                if head is not None:
                    heads.add(head)
            if not page.has_more:
                break
            cursor = page.cursor
    return sorted(heads, key=lambda h: (h.tenant_id, h.entity_type, h.seq))


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
    partition), not one query per tenant; each record's heads come from its run's chain check.
    """
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=list(tenant_ids))
    checked = _CheckedHeads(instance, key)
    passed_over: dict[str, list[RecordedHead]] = {t: [] for t in tenant_ids}
    found: dict[str, Baseline] = {}
    cursor, limit = None, len(tenant_ids)  # usually each tenant's latest materialisation is the one
    while len(found) < len(tenant_ids):
        page = instance.fetch_materializations(records_filter, limit=limit, cursor=cursor, ascending=False)
        for record in page.records:
            tenant_id = record.partition_key
            info = checked.info(record, tenant_id) if tenant_id in passed_over and tenant_id not in found else None
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


def _head(record: dg.EventLogRecord, tenant_id: str, info: dict) -> RecordedHead | None:
    if info.get("chain_head_seq") is None:
        return None
    meta = record.asset_materialization.metadata
    recorded_at = datetime.fromtimestamp(record.timestamp, UTC).isoformat(timespec="seconds")
    return RecordedHead(
        tenant_id, meta["rail"].value, meta["entity_type"].value,
        info["chain_head_seq"], info["chain_head_hash"], record.run_id, recorded_at,
    )  # fmt: skip
