"""The schedule: one sync run per registered tenant, every hour."""

import dagster as dg

from ledger_pipeline.defs.jobs import SYNC_JOB
from ledger_pipeline.defs.partitions import TENANTS


@dg.schedule(job=SYNC_JOB, cron_schedule="0 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def hourly_sync(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    """Queue one run per tenant partition; the DuckDB pool makes them write one at a time."""
    tenants = TENANTS.get_partition_keys(dynamic_partitions_store=context.instance)
    if not tenants:
        return dg.SkipReason("no tenants registered yet: `ledger-pipeline tenants add ...`")
    stamp = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "manual"
    return [dg.RunRequest(run_key=f"{tenant}:{stamp}", partition_key=tenant) for tenant in tenants]
