"""A person's decision about the reconciliation, recorded from the Dagster UI (the launchpad's typed config) or
`ledger-pipeline decide`: one run of `record_decision` appends it to the log (lib/decisions.py) and refreshes the
tenant's recon tables, so a confirmed link, a rejected one or an explained break shows at once."""

from datetime import UTC, datetime
from typing import Literal

import dagster as dg
from pydantic import Field

from ledger_pipeline.defs.partitions import DUCKDB_POOL, SINGLE_RUN_BACKFILL, TENANTS, run_tenant_ids
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.lib import decisions
from ledger_pipeline.lib.ids import InvalidInput
from ledger_pipeline.lib.tenants import TenantError
from ledger_pipeline.lib.warehouse import WarehouseError

DECISIONS_KEY = dg.AssetKey(["raw", "recon_decisions"])


class DecisionConfig(dg.Config):
    """One decision: what, about which link or break (the run's partition is the tenant), by whom and why."""

    action: Literal["confirm", "reject", "explain"] = Field(
        description="confirm or reject a link of recon.links; explain a break of recon.breaks"
    )
    subject_id: str = Field(description="the link_id (confirm, reject) or break_id (explain), 16 hex characters")
    by: str = Field(description="who decides")
    why: str = Field(description="why: kept in the log with the decision")


@dg.asset(
    key=DECISIONS_KEY,
    partitions_def=TENANTS,
    backfill_policy=SINGLE_RUN_BACKFILL,  # as the recon tables it refreshes; a run names one tenant
    pool=DUCKDB_POOL,
    group_name="recon",
    kinds={"duckdb"},
    description="People's decisions about links and breaks, appended to raw.entity_log (rail `recon`, source "
    "`user`), hash-chained like the rails' data; the latest about a subject holds. Run `record_decision`.",
)
def recon_decisions(
    context: dg.AssetExecutionContext, config: DecisionConfig, warehouse: LedgerDuckDB, tenants: TenantRegistryResource
) -> dg.MaterializeResult:
    tenant_ids = run_tenant_ids(context)
    if len(tenant_ids) != 1:
        raise dg.Failure(description=f"a decision is about one tenant; this run has {len(tenant_ids)} partitions")
    (tenant_id,) = tenant_ids
    try:
        tenants.registry().get(tenant_id)
        made = decisions.decision(tenant_id, config.action, config.subject_id, config.by, config.why)
        with warehouse.ledger() as conn:
            seq = decisions.record(conn, made, context.run.run_id, datetime.now(UTC))
    except (InvalidInput, TenantError, WarehouseError) as exc:
        raise dg.Failure(description=f"decision not recorded: {exc}") from exc
    said = f"{made.action} {made.subject_type} {made.subject_id} of tenant {tenant_id}, by {made.by}"
    context.log.info(f"{said}: log seq {seq}" if seq is not None else f"{said}: already the latest decision")
    return dg.MaterializeResult(
        metadata={
            "action": made.action,
            "subject": made.entity_id,
            "by": made.by,
            "log_seq": dg.MetadataValue.int(seq) if seq is not None else dg.MetadataValue.null(),
        }
    )


DECISION_JOB = dg.define_asset_job(
    "record_decision",
    selection=dg.AssetSelection.assets(DECISIONS_KEY).downstream().materializable(),
    description="Record a person's decision about a link or a break of one tenant (the partition) in the log, "
    "then refresh that tenant's recon tables.",
)
