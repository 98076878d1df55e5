"""The schedules: every registered tenant synced every hour, and a nightly audit run over every tenant.

The hourly runs take tenants in partition ranges: a run's fixed cost (launch, planning, the event log)
is paid once per range instead of once per tenant. A tenant whose last sync failed runs alone, so a
tenant that keeps failing holds back the other tenants of its range for the one tick it failed in only.
"""

from collections.abc import Collection, Sequence

import dagster as dg

from ledger_pipeline.defs.jobs import SYNC_JOB
from ledger_pipeline.defs.models.assets import REFRESHED_ASSETS, TABLE_ASSETS
from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.defs.qbo.assets import LOG_ASSETS
from ledger_pipeline.lib import settings

NO_TENANTS = "no tenants registered yet: `ledger-pipeline tenants add ...`"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
# Every tenant-partitioned asset a sync run materialises: a failure in any of them marks its tenants failed.
SYNCED_KEYS = [key for asset in (*LOG_ASSETS, *REFRESHED_ASSETS, *TABLE_ASSETS) for key in asset.keys]


def range_tags(tenants: Sequence[str]) -> dict[str, str]:
    """Tags that make one run of the sync job cover the partition range from the first tenant to the last."""
    return {RANGE_START: tenants[0], RANGE_END: tenants[-1]}


def failed_tenants(instance: dg.DagsterInstance, tenants: Sequence[str]) -> set[str]:
    """Tenants whose latest attempt at any synced asset failed (Dagster's partition status).

    A failed range run marks every tenant of its failed step, so after one tick of runs alone only the
    tenants that still fail stay apart. With DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS set, Dagster
    does not mark a failed run's partitions, and failing tenants keep sharing runs.
    """
    failed: set[str] = set()
    for key in SYNCED_KEYS:
        status = instance.get_status_by_partition(key, tenants, TENANTS) or {}
        failed.update(t for t, s in status.items() if s == dg.AssetPartitionStatus.FAILED)
    return failed


def sync_requests(tenants: Sequence[str], alone: Collection[str], per_run: int, stamp: str) -> list[dg.RunRequest]:
    """One tick's runs, in partition order: consecutive tenants share a run of at most `per_run`, each of
    `alone` runs by itself (a range covers every tenant between its ends, so those split the ranges)."""
    groups: list[list[str]] = [[]]
    for tenant in tenants:
        if tenant in alone:
            groups += [[tenant], []]
        elif len(groups[-1]) < per_run:
            groups[-1].append(tenant)
        else:
            groups.append([tenant])
    return [_run_request(group, stamp) for group in groups if group]


def _run_request(tenants: list[str], stamp: str) -> dg.RunRequest:
    if len(tenants) == 1:
        return dg.RunRequest(run_key=f"{tenants[0]}:{stamp}", partition_key=tenants[0])
    return dg.RunRequest(run_key=f"{tenants[0]}..{tenants[-1]}:{stamp}", tags=range_tags(tenants))


@dg.schedule(job=SYNC_JOB, cron_schedule="0 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def hourly_sync(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    """Queue every tenant's sync: ranges of up to LEDGER_SYNC_TENANTS_PER_RUN tenants, a failing tenant alone.

    The DuckDB pool makes the runs write one at a time.
    """
    tenants = TENANTS.get_partition_keys(dynamic_partitions_store=context.instance)
    if not tenants:
        return dg.SkipReason(NO_TENANTS)
    stamp = context.scheduled_execution_time.isoformat()  # every tick has one (Dagster refuses the read otherwise)
    alone = failed_tenants(context.instance, tenants)
    requests = sync_requests(tenants, alone, settings.sync_tenants_per_run(), stamp)
    context.log.info(
        f"{len(tenants)} tenants in {len(requests)} runs"
        + (f"; alone after a failed sync: {', '.join(sorted(alone))}" if alone else "")
    )
    return requests


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
    return dg.RunRequest(run_key=f"audit:{stamp}", run_config=audit_run_config(), tags=range_tags(tenants))
