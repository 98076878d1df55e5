"""The tenant sensor: a tenant added to the registry file becomes a partition and gets its first sync.

Tenants added together share first-sync runs as the hourly ones do (ranges of up to
LEDGER_SYNC_TENANTS_PER_RUN): the new partitions are added in that order after the known ones.
"""

import dagster as dg

from ledger_pipeline.defs.jobs import SYNC_JOB
from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.defs.resources import TenantRegistryResource
from ledger_pipeline.defs.schedules import rails_scope, sync_requests
from ledger_pipeline.lib import settings
from ledger_pipeline.lib.tenants import TenantError


@dg.sensor(job=SYNC_JOB, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def tenant_registry_sensor(
    context: dg.SensorEvaluationContext, tenants: TenantRegistryResource
) -> dg.SensorResult | dg.SkipReason:
    """Add a partition (and request an initial sync) for every registered tenant Dagster does not know yet."""
    try:
        registered = tenants.registry().load()
    except TenantError as exc:
        return dg.SkipReason(str(exc))
    known = set(context.instance.get_dynamic_partitions(TENANTS.name))
    new = sorted(set(registered) - known)
    if not new:
        return dg.SkipReason(f"{len(known)} tenants, none new")
    scope = rails_scope(context, registered)
    return dg.SensorResult(
        run_requests=sync_requests(new, (), settings.sync_tenants_per_run(), "initial-sync", scope),
        dynamic_partitions_requests=[TENANTS.build_add_request(new)],
    )
