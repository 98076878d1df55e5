"""The schedules: one sync run per registered tenant every hour, and a nightly audit run over every tenant."""

import dagster as dg

from ledger_pipeline.defs.jobs import SYNC_JOB
from ledger_pipeline.defs.models.assets import REFRESHED_ASSETS
from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.defs.qbo.assets import LOG_ASSETS

NO_TENANTS = "no tenants registered yet: `ledger-pipeline tenants add ...`"


@dg.schedule(job=SYNC_JOB, cron_schedule="0 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def hourly_sync(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    """Queue one run per tenant partition; the DuckDB pool makes them write one at a time."""
    tenants = TENANTS.get_partition_keys(dynamic_partitions_store=context.instance)
    if not tenants:
        return dg.SkipReason(NO_TENANTS)
    stamp = context.scheduled_execution_time.isoformat()  # every tick has one (Dagster refuses the read otherwise)
    return [dg.RunRequest(run_key=f"{tenant}:{stamp}", partition_key=tenant) for tenant in tenants]


def audit_run_config() -> dict:
    """Run config of the nightly audit: every log op re-verifies its whole chains and every recorded head
    (full_audit), every mirror and history op compares all of its rows with the model (full_check)."""
    log_ops = {asset.op.name: {"config": {"full_audit": True}} for asset in LOG_ASSETS}
    mirror_ops = {asset.op.name: {"config": {"full_check": True}} for asset in REFRESHED_ASSETS}
    return {"ops": log_ops | mirror_ops}


@dg.schedule(job=SYNC_JOB, cron_schedule="0 3 * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def nightly_audit(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Sync every tenant in one run (a partition range) with the full checks the hourly runs keep incremental."""
    tenants = TENANTS.get_partition_keys(dynamic_partitions_store=context.instance)
    if not tenants:
        return dg.SkipReason(NO_TENANTS)
    stamp = context.scheduled_execution_time.isoformat()  # every tick has one (Dagster refuses the read otherwise)
    return dg.RunRequest(
        run_key=f"audit:{stamp}",
        run_config=audit_run_config(),
        tags={"dagster/asset_partition_range_start": tenants[0], "dagster/asset_partition_range_end": tenants[-1]},
    )
