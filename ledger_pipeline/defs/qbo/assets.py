"""One extract-and-log asset per QBO entity, built from the entity table."""

from datetime import UTC, datetime
from typing import Literal

import dagster as dg
from pydantic import Field

from ledger_pipeline.defs.heads import recorded_heads
from ledger_pipeline.defs.partitions import DUCKDB_POOL, SINGLE_RUN_BACKFILL, TENANTS
from ledger_pipeline.defs.resources import LedgerDuckDB, QboResource, TenantRegistryResource
from ledger_pipeline.lib.tenants import TenantError
from ledger_pipeline.lib.verify import compare_heads, verify
from ledger_pipeline.lib.warehouse import WarehouseError
from ledger_pipeline.rails.qbo.entities import ENTITIES, QboEntity
from ledger_pipeline.rails.qbo.errors import QboError
from ledger_pipeline.rails.qbo.sync import EntitySyncResult, sync_entity


class QboSyncConfig(dg.Config):
    """Per-run knobs of a QBO sync (set them in the launchpad)."""

    sweep: Literal["auto", "always", "never"] = "auto"  # auto: sweep ids when rail and log counts differ
    batch_size: int = Field(default=20_000, gt=0)  # objects per bulk insert into the log


def _metadata(entity: QboEntity, results: list[EntitySyncResult]) -> dict[str, dg.MetadataValue]:
    one = len(results) == 1
    per_tenant = {
        r.tenant_id: {
            "appended": r.stats.appended,
            "created": r.stats.created,
            "updated": r.stats.updated,
            "deleted": r.stats.deleted,
            "unchanged": r.stats.unchanged,
            "pages": r.pages,
            "swept": r.sweep_reason,
            "cursor": r.cursor.updated_since.isoformat() if r.cursor.updated_since else None,
            "chain_head_seq": r.stats.head_seq,
            "chain_head_hash": r.stats.head_hash,
        }
        for r in results
    }
    meta: dict[str, dg.MetadataValue] = {
        "rail": dg.MetadataValue.text("qbo"),
        "entity_type": dg.MetadataValue.text(entity.name),
        "appended": dg.MetadataValue.int(sum(r.stats.appended for r in results)),
        "seen": dg.MetadataValue.int(sum(r.stats.seen for r in results)),
        "tenants": dg.MetadataValue.json(per_tenant),
    }
    if one:
        r = results[0]
        meta |= {
            "created": dg.MetadataValue.int(r.stats.created),
            "updated": dg.MetadataValue.int(r.stats.updated),
            "deleted": dg.MetadataValue.int(r.stats.deleted),
            "cursor": dg.MetadataValue.text(str(per_tenant[r.tenant_id]["cursor"])),
            "chain_head_hash": dg.MetadataValue.text(r.stats.head_hash or ""),
        }
    return meta


def _chain_check(
    context: dg.AssetExecutionContext, conn, key: dg.AssetKey, entity: QboEntity, tenant_ids: list[str]
) -> dg.AssetCheckResult:
    """Recompute this entity's chains and compare them with every head Dagster recorded for them."""
    problems: list[str] = []
    rows = 0
    for tenant_id in tenant_ids:
        report = verify(conn, tenant_id, rail="qbo", entity_type=entity.name)
        rows += report.rows
        problems += [str(p) for p in report.problems]
        problems += compare_heads(conn, recorded_heads(context.instance, [key], tenant_id))
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="chain_intact",
        passed=not problems,
        metadata={"rows_verified": dg.MetadataValue.int(rows), "problems": dg.MetadataValue.json(problems[:10])},
    )


def build_log_asset(entity: QboEntity) -> dg.AssetsDefinition:
    key = dg.AssetKey(["raw", f"qbo_{entity.table}"])

    @dg.asset(
        key=key,
        check_specs=[
            dg.AssetCheckSpec(
                "chain_intact",
                asset=key,
                blocking=True,
                description="Every hash chain of this entity recomputes, and every chain head recorded by earlier "
                "materialisations is still in the log (a rewritten or truncated log fails here).",
            )
        ],
        partitions_def=TENANTS,
        backfill_policy=SINGLE_RUN_BACKFILL,
        pool=DUCKDB_POOL,
        group_name="qbo_log",
        kinds={"duckdb", "python"},
        description=(
            f"Every version of every QBO {entity.name} seen for the tenant, appended to the immutable, "
            f"hash-chained raw.entity_log (this asset is its view raw.qbo_{entity.table}). Reads the "
            "query feed from the last committed cursor"
            + (", the CDC feed for deletes" if not entity.is_name_list else " (inactive rows included)")
            + " and sweeps ids when counts disagree; rows and cursor commit in one transaction."
        ),
    )
    def _log_asset(
        context: dg.AssetExecutionContext,
        config: QboSyncConfig,
        warehouse: LedgerDuckDB,
        qbo: QboResource,
        tenants: TenantRegistryResource,
    ) -> dg.MaterializeResult:
        registry = tenants.registry()
        results = []
        tenant_id = context.partition_keys[0]
        try:
            with warehouse.ledger() as conn:
                for tenant_id in context.partition_keys:
                    with qbo.client(registry.get(tenant_id)) as client:
                        result = sync_entity(
                            conn, client, tenant_id, entity,
                            run_id=context.run.run_id, observed_at=datetime.now(UTC),
                            sweep=config.sweep, batch_size=config.batch_size,
                        )  # fmt: skip
                    context.log.info(
                        f"tenant {tenant_id} {entity.name}: {result.stats.seen} seen, {result.stats.appended} "
                        f"appended ({result.stats.created} created, {result.stats.updated} updated, "
                        f"{result.stats.deleted} deleted)"
                    )
                    results.append(result)
                chain = _chain_check(context, conn, key, entity, list(context.partition_keys))
        except (QboError, TenantError, WarehouseError) as exc:
            raise dg.Failure(
                description=f"tenant {tenant_id}, rail qbo, entity {entity.name}: {exc}",
                allow_retries=isinstance(exc, QboError),
            ) from exc
        return dg.MaterializeResult(metadata=_metadata(entity, results), check_results=[chain])

    return _log_asset


LOG_ASSETS = [build_log_asset(e) for e in ENTITIES]

SYNC_CURSORS = dg.AssetSpec(
    ["meta", "sync_cursors"],
    description="Where each (tenant, rail, entity) sync resumes, and the rail's clock at its end. Written by the "
    "raw log assets in the same transaction as the rows they log.",
    group_name="meta",
    kinds={"duckdb"},
)
