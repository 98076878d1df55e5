"""One extract-and-log asset per entity of a rail, built from the rail's entity table (defs/<rail>/assets.py).

Every rail's log assets run the same sync skeleton (lib/sync.py) through a session its resource opens for a
tenant (`resource.session(tenant)`). A tenant that has not connected the rail is skipped: named in the
metadata, never a failed step. A session that reports parts of the connection needing a person (Plaid: a bank
login, `connection_states`) has them recorded on the tenant's registry entry, where `tenants list` and the rail's
checks show them.
"""

import dataclasses
from collections.abc import Callable
from contextlib import closing
from typing import Literal

import dagster as dg
from pydantic import Field

from ledger_pipeline.defs.heads import CHAIN_CHECK, head_record, recorded_heads, vouched_baselines
from ledger_pipeline.defs.partitions import DUCKDB_POOL, SINGLE_RUN_BACKFILL, TENANTS, per_tenant_metadata
from ledger_pipeline.lib.breaker import SyncHalted
from ledger_pipeline.lib.entity_log import AppendStats
from ledger_pipeline.lib.ids import InvalidInput
from ledger_pipeline.lib.rails import Entity, Rail
from ledger_pipeline.lib.sync import (
    TENANTS_AHEAD, EntitySync, EntitySyncResult, RailSession, close_sync, syncs_ahead,
)
from ledger_pipeline.lib.tenants import TenantError, TenantRegistry
from ledger_pipeline.lib.verify import RecordedHead, head_mismatches, verify
from ledger_pipeline.lib.warehouse import WarehouseError

NOT_CONNECTED = "not connected"


class SyncConfig(dg.Config):
    """Per-run knobs of a rail sync (set them in the launchpad)."""

    sweep: Literal["auto", "always", "never"] = "auto"  # auto: sweep ids when rail and log counts differ
    # objects per bulk insert into the log (and held in memory until it), or fewer once 2 MB of payload wait
    batch_size: int = Field(default=5_000, gt=0)
    # chain_intact re-verifies every chain from its first row and compares every head ever recorded
    # (the nightly audit); by default it verifies the rows after the last head a passing check vouched for.
    full_audit: bool = False
    # Tenants whose rail reads start before their turn, so the rail answers for them while earlier ones are
    # logged; each holds a thread, a client and ~1,000 objects read ahead (lib/sync.OBJECTS_AHEAD, one QBO page
    # ~1 MB) until its turn. 0: one at a time.
    tenants_ahead: int = Field(default=TENANTS_AHEAD, ge=0, le=32)


def _appended(stats: AppendStats) -> str:
    unseen = f", {stats.deleted_unseen} deleted before any sync saw them" if stats.deleted_unseen else ""
    return (f"{stats.seen} seen, {stats.appended} appended ({stats.created} created, {stats.updated} updated, "
            f"{stats.deleted} deleted{unseen})")


def _metadata(
    rail: Rail, entity: Entity, results: list[EntitySyncResult], skipped: list[str], needs_person: dict[str, list[str]]
) -> dict[str, dg.MetadataValue]:
    per_tenant = {
        r.tenant_id: {
            "appended": r.stats.appended,
            "created": r.stats.created,
            "updated": r.stats.updated,
            "deleted": r.stats.deleted,
            "deleted_unseen": r.stats.deleted_unseen,
            "unchanged": r.stats.unchanged,
            "pages": r.pages,
            "swept": r.sweep_reason,
            "cursor": r.cursor.updated_since.isoformat() if r.cursor.updated_since else r.cursor.position,
        }
        for r in results
    }
    meta: dict[str, dg.MetadataValue] = {
        "rail": dg.MetadataValue.text(rail.name),
        "entity_type": dg.MetadataValue.text(entity.name),
        "tenants_in_run": dg.MetadataValue.int(len(results)),
        "appended": dg.MetadataValue.int(sum(r.stats.appended for r in results)),
        "seen": dg.MetadataValue.int(sum(r.stats.seen for r in results)),
        **per_tenant_metadata("tenants", per_tenant),
    }
    if skipped:  # registered tenants that have not connected this rail: nothing to sync, nothing failed
        meta["skipped_not_connected"] = dg.MetadataValue.json(skipped[:50])
    if needs_person:  # parts of a connection skipped until a person acts (a bank login): the rail's check fails
        meta["needs_person"] = dg.MetadataValue.json(needs_person)
    if any(r.restarts for r in results):
        meta["restarts"] = dg.MetadataValue.json({r.tenant_id: r.restarts for r in results if r.restarts})
    approvals = {r.tenant_id: dataclasses.asdict(r.approval) for r in results if r.approval}
    if approvals:  # a sync the circuit breaker stopped, let through by an operator: always shown
        meta["breaker_approvals"] = dg.MetadataValue.json(approvals)
    if len(results) == 1:
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
    context: dg.AssetExecutionContext, conn, key: dg.AssetKey, rail: Rail, entity: Entity,
    results: list[EntitySyncResult], *, full_audit: bool,
) -> dg.AssetCheckResult:  # fmt: skip
    """Verify this entity's chains of the run's tenants in one pass, and record each tenant's head (`heads`).

    Incremental (the default): per tenant, the head the last passing check vouched for must still be in
    the log with the same hash, and only the rows after it are verified, the first against that hash;
    heads recorded by later materialisations whose check failed are compared too. Rows before the
    vouched head are deliberately not re-read each run: the full audit (full_audit=True, nightly) and
    `ledger-pipeline verify` re-verify whole chains and every recorded head. `heads` says, per tenant,
    the chain head after this run's append and whether the check passed for it: the next run's check
    starts from the newest passing one (defs/heads.py).
    """
    tenant_ids = [r.tenant_id for r in results]
    if not tenant_ids:
        return dg.AssetCheckResult(
            asset_key=key, check_name=CHAIN_CHECK, passed=True,
            metadata={"rows_verified": dg.MetadataValue.int(0), "scope": dg.MetadataValue.text(
                f"no tenant of the run is connected to {rail.name}")},
        )  # fmt: skip
    baselines = {} if full_audit else vouched_baselines(context.instance, key, tenant_ids)
    vouched = {t: b.head for t, b in baselines.items() if b.head is not None}
    if full_audit:
        heads = recorded_heads(context.instance, [key], tenant_ids)
    else:
        heads = [*vouched.values(), *(h for b in baselines.values() for h in b.passed_over)]
    after = {(t, rail.name, entity.name): (h.seq, h.row_hash) for t, h in vouched.items()}
    report = verify(conn, tenant_ids, rail=rail.name, entity_type=entity.name, after=after)
    by_tenant: dict[str, list[str]] = {t: [] for t in tenant_ids}
    for problem in report.problems:  # "*": a seq used twice, which breaks every chain in scope
        for tenant_id in tenant_ids if problem.tenant_id == "*" else [problem.tenant_id]:
            by_tenant[tenant_id].append(str(problem))
    missing = set()
    for head, message in head_mismatches(conn, heads):
        by_tenant[head.tenant_id].append(message)
        missing.add(head)
    scopes = {t: _scope(full_audit, vouched.get(t), missing) for t in tenant_ids}
    problems = [message for t in tenant_ids for message in by_tenant[t]]
    metadata = {
        "rows_verified": dg.MetadataValue.int(report.rows),
        "scope": dg.MetadataValue.text(
            scopes[tenant_ids[0]] if len(tenant_ids) == 1 else "full" if full_audit else "incremental per tenant"
        ),
        "scope_by_tenant": dg.MetadataValue.json(scopes),
        "problems": dg.MetadataValue.json(problems[:10]),
        "heads": dg.MetadataValue.json(
            {r.tenant_id: head_record(r.stats.head_seq, r.stats.head_hash, not by_tenant[r.tenant_id]) for r in results}
        ),
    }
    return dg.AssetCheckResult(asset_key=key, check_name=CHAIN_CHECK, passed=not problems, metadata=metadata)


def _scope(full_audit: bool, head: RecordedHead | None, missing: set[RecordedHead]) -> str:
    if full_audit:
        return "full"
    if head is None:
        return "full (no head vouched for by an earlier check)"
    found = "NOT present" if head in missing else "present"
    return f"incremental: rows after seq {head.seq} verified, recorded head seq {head.seq} {found}"


def _session_for(resource, registry: TenantRegistry, rail: Rail) -> Callable[[str], RailSession | None]:
    """The tenant's session on the rail, None when it has not connected the rail; an unknown tenant raises
    (lib/sync.syncs_ahead: at its own turn)."""

    def session(tenant_id: str) -> RailSession | None:
        tenant = registry.get(tenant_id)
        return resource.session(tenant) if tenant.connection(rail.name) is not None else None

    return session


def _record_states(registry: TenantRegistry, rail: Rail, sync: EntitySync) -> list[str]:
    """Record on the tenant's registry entry what the sync found needing a person; return those parts."""
    states = getattr(sync.session, "connection_states", dict)()
    if states:
        registry.record_states(sync.tenant_id, rail.name, states)
    return sorted(part for part, since in states.items() if since)


def build_log_asset(
    rail: Rail, entity: Entity, *, description: str, rail_errors: tuple[type[Exception], ...],
    deps: list[dg.AssetKey] | None = None,
) -> dg.AssetsDefinition:
    """The log asset of one entity; `rail_errors`: the rail's own failures, which Dagster may retry; `deps`: log
    assets that must run before it in a run."""
    key = dg.AssetKey(["raw", f"{rail.name}_{entity.table}"])

    @dg.asset(
        key=key,
        check_specs=[
            dg.AssetCheckSpec(
                CHAIN_CHECK,
                asset=key,
                blocking=True,
                description="The rows appended since the chain head the last passing check vouched for recompute and "
                "link to it, and that head is still in the log (a rewritten or truncated log fails here). With "
                "full_audit: every chain from its first row, and every head ever recorded.",
            )
        ],
        partitions_def=TENANTS,
        backfill_policy=SINGLE_RUN_BACKFILL,
        pool=DUCKDB_POOL,
        group_name=f"{rail.name}_log",
        kinds={"duckdb", "python"},
        deps=deps or [],
        required_resource_keys={"warehouse", "tenants", rail.name},
        description=description,
    )
    def _log_asset(context: dg.AssetExecutionContext, config: SyncConfig) -> dg.MaterializeResult:
        results: list[EntitySyncResult] = []
        skipped: list[str] = []
        needs_person: dict[str, list[str]] = {}
        tenant_id = context.partition_keys[0]
        resource = getattr(context.resources, rail.name)
        try:
            registry = context.resources.tenants.registry()
            with context.resources.warehouse.ledger() as conn:
                ahead = syncs_ahead(
                    conn, rail.name, entity, context.partition_keys, _session_for(resource, registry, rail),
                    sweep=config.sweep, ahead=config.tenants_ahead,
                )
                with closing(ahead):
                    for tenant_id, started in ahead:
                        sync = started()
                        if sync is None:
                            skipped.append(tenant_id)
                            continue
                        try:
                            results.append(sync.run(conn, run_id=context.run.run_id, batch_size=config.batch_size))
                            if parts := _record_states(registry, rail, sync):
                                needs_person[tenant_id] = parts
                        finally:
                            close_sync(sync)
                # One event per step, not per tenant: every event is a write to Dagster's event log.
                context.log.info("\n".join([
                    *(f"tenant {r.tenant_id} {entity.name}: {_appended(r.stats)}" for r in results),
                    *([f"skipped (not connected to {rail.name}): {', '.join(skipped)}"] if skipped else []),
                    *(f"tenant {t}: skipped {', '.join(parts)} until a person acts (see `tenants list`)"
                      for t, parts in needs_person.items()),
                ]))  # fmt: skip
                chain = _chain_check(context, conn, key, rail, entity, results, full_audit=config.full_audit)
        except (*rail_errors, TenantError, WarehouseError, SyncHalted, InvalidInput) as exc:  # InvalidInput: sandbox
            raise dg.Failure(
                description=f"tenant {tenant_id}, rail {rail.name}, entity {entity.name}: {exc}",
                allow_retries=isinstance(exc, rail_errors),
            ) from exc
        return dg.MaterializeResult(
            metadata=_metadata(rail, entity, results, skipped, needs_person), check_results=[chain]
        )

    return _log_asset


SYNC_CURSORS = dg.AssetSpec(
    ["meta", "sync_cursors"],
    description="Where each (tenant, rail, entity) sync resumes, and the rail's clock at its end. Written by the "
    "raw log assets in the same transaction as the rows they log.",
    group_name="meta",
    kinds={"duckdb"},
)
