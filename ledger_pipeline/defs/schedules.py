"""The schedules: every registered tenant synced every hour, and a nightly audit run over every tenant.

The hourly runs take tenants in partition ranges: a run's fixed cost (launch, planning, the event log)
is paid once per range instead of once per tenant. Tenants whose last sync failed are retried apart in
shrinking ranges, so a tenant that keeps failing soon runs alone and holds back no one else. A run selects
the rails its tenants connected: a fleet without Stripe runs no Stripe step at all.
"""

import math
from collections.abc import Callable, Collection, Mapping, Sequence

import dagster as dg

from ledger_pipeline.defs.jobs import SYNC_JOB, rails_asset_keys
from ledger_pipeline.defs.models.assets import REFRESHED_ASSETS, TABLE_ASSETS
from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.defs.rails import LOG_ASSETS, RAIL_DEFINITIONS
from ledger_pipeline.defs.resources import TenantRegistryResource
from ledger_pipeline.lib import settings
from ledger_pipeline.lib.tenants import Tenant, TenantError

# The assets a run over these tenants materialises; None: the whole sync job.
Scope = Callable[[Sequence[str]], list[dg.AssetKey] | None]

NO_TENANTS = "no tenants registered yet: `ledger-pipeline tenants add ...`"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
# Every tenant-partitioned asset a sync run materialises: a failure in any of them marks its tenants failed.
SYNCED_KEYS = [key for asset in (*LOG_ASSETS, *REFRESHED_ASSETS, *TABLE_ASSETS) for key in asset.keys]
SHOWN = 10  # failed tenants named in a tick's log line


def range_tags(tenants: Sequence[str]) -> dict[str, str]:
    """Tags that make one run of the sync job cover the partition range from the first tenant to the last."""
    return {RANGE_START: tenants[0], RANGE_END: tenants[-1]}


def failed_tenants(instance: dg.DagsterInstance, tenants: Sequence[str]) -> set[str]:
    """Tenants whose latest attempt at any synced asset failed (Dagster's partition status).

    A failed range run marks every tenant of its failed step; the retries in smaller ranges clear the
    ones that did not cause it. With DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS set, Dagster
    does not mark a failed run's partitions, and failing tenants keep sharing runs.
    """
    failed: set[str] = set()
    for key in SYNCED_KEYS:
        status = instance.get_status_by_partition(key, tenants, TENANTS) or {}
        failed.update(t for t, s in status.items() if s == dg.AssetPartitionStatus.FAILED)
    return failed


def rails_scope(
    context: dg.ScheduleEvaluationContext | dg.SensorEvaluationContext, registered: Mapping[str, Tenant]
) -> Scope:
    """A run's assets: those of the rails its tenants connected, resolved in the definitions being evaluated.
    A tenant the registry does not know (yet) or definitions not given (a bare test context) take the whole job."""
    try:
        repository = context.repository_def
    except dg.DagsterInvariantViolationError:  # a schedule context built without definitions
        repository = None

    def scope(tenants: Sequence[str]) -> list[dg.AssetKey] | None:
        if repository is None or any(t not in registered for t in tenants):
            return None
        return rails_asset_keys({rail for t in tenants for rail in registered[t].rails}, repository)

    return scope


def sync_requests(
    tenants: Sequence[str], failed: Collection[str], per_run: int, stamp: str, scope: Scope | None = None
) -> list[dg.RunRequest]:
    """One tick's runs, in partition order: consecutive tenants share a run of at most `per_run`.

    Tenants whose last sync failed are retried apart from the others, in runs of at most the square
    root of how many failed: a failed range of 100 comes back as 10 runs of 10, the one of those that
    fails again as 3 runs of 3, then as runs of one. A tenant that keeps failing is alone within a few
    ticks, and a failed run over every tenant (the nightly audit) does not become a run per tenant.
    A range covers every tenant between its ends, so healthy and failed tenants never share one. `scope`
    says which assets each run selects (the rails its tenants connected); without it, every run is the whole job.
    """
    retry_size = max(1, min(per_run, math.isqrt(len(failed))))
    groups: list[tuple[bool, list[str]]] = []
    for tenant in tenants:
        retried = tenant in failed
        if groups and groups[-1][0] == retried and len(groups[-1][1]) < (retry_size if retried else per_run):
            groups[-1][1].append(tenant)
        else:
            groups.append((retried, [tenant]))
    return [_run_request(group, stamp, scope(group) if scope else None) for _, group in groups]


def _run_request(tenants: list[str], stamp: str, assets: list[dg.AssetKey] | None) -> dg.RunRequest:
    if len(tenants) == 1:
        return dg.RunRequest(run_key=f"{tenants[0]}:{stamp}", partition_key=tenants[0], asset_selection=assets)
    return dg.RunRequest(
        run_key=f"{tenants[0]}..{tenants[-1]}:{stamp}", tags=range_tags(tenants), asset_selection=assets
    )


@dg.schedule(job=SYNC_JOB, cron_schedule="0 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def hourly_sync(
    context: dg.ScheduleEvaluationContext, tenants: TenantRegistryResource
) -> list[dg.RunRequest] | dg.SkipReason:
    """Queue every tenant's sync: ranges of up to LEDGER_SYNC_TENANTS_PER_RUN tenants, failed ones apart, each
    run over the rails its tenants connected.

    The DuckDB pool makes the runs write one at a time.
    """
    partitions = TENANTS.get_partition_keys(dynamic_partitions_store=context.instance)
    if not partitions:
        return dg.SkipReason(NO_TENANTS)
    try:
        registered = tenants.registry().load()
    except TenantError as exc:
        return dg.SkipReason(str(exc))
    stamp = context.scheduled_execution_time.isoformat()  # every tick has one (Dagster refuses the read otherwise)
    failed = failed_tenants(context.instance, partitions)
    scope = rails_scope(context, registered)
    requests = sync_requests(partitions, failed, settings.sync_tenants_per_run(), stamp, scope)
    named = ", ".join(sorted(failed)[:SHOWN]) + (f" and {len(failed) - SHOWN} more" if len(failed) > SHOWN else "")
    retried = f"; retried apart after a failed sync: {named}" if failed else ""
    context.log.info(f"{len(partitions)} tenants in {len(requests)} runs{retried}")
    return requests


def audit_run_config(assets: Collection[dg.AssetKey] | None = None) -> dict:
    """Run config of the nightly audit over these assets (None: all): every log op re-verifies its whole chains
    and every recorded head (full_audit), every mirror and history op compares all of its rows with the model
    (full_check), and the rails' own checks compare everything (QBO's control totals: every party with the
    whole report). A rail without a selected log asset has no step in the run, so no config."""
    def selected(asset: dg.AssetsDefinition) -> bool:
        return assets is None or any(key in assets for key in asset.keys)

    log_ops = {asset.op.name: {"config": {"full_audit": True}} for asset in LOG_ASSETS if selected(asset)}
    mirror_ops = {asset.op.name: {"config": {"full_check": True}} for asset in REFRESHED_ASSETS if selected(asset)}
    rail_ops = {
        op: config
        for rail in RAIL_DEFINITIONS.values()
        if any(selected(asset) for asset in rail.LOG_ASSETS)
        for op, config in rail.audit_ops().items()
    }
    return {"ops": log_ops | mirror_ops | rail_ops}


@dg.schedule(job=SYNC_JOB, cron_schedule="0 3 * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def nightly_audit(
    context: dg.ScheduleEvaluationContext, tenants: TenantRegistryResource
) -> dg.RunRequest | dg.SkipReason:
    """Sync every tenant in one run (a partition range) with the full checks the hourly runs keep incremental."""
    partitions = TENANTS.get_partition_keys(dynamic_partitions_store=context.instance)
    if not partitions:
        return dg.SkipReason(NO_TENANTS)
    try:
        registered = tenants.registry().load()
    except TenantError as exc:
        return dg.SkipReason(str(exc))
    stamp = context.scheduled_execution_time.isoformat()  # every tick has one (Dagster refuses the read otherwise)
    assets = rails_scope(context, registered)(partitions)
    return dg.RunRequest(
        run_key=f"audit:{stamp}", run_config=audit_run_config(assets), tags=range_tags(partitions),
        asset_selection=assets,
    )  # fmt: skip
