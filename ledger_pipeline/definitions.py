"""The one Definitions object `workspace.yaml` loads: it only assembles."""

from __future__ import annotations

import dagster as dg

from ledger_pipeline.defs.freshness import FRESHNESS_JOB, freshness_schedule, tenants_fresh
from ledger_pipeline.defs.jobs import SYNC_JOB
from ledger_pipeline.defs.models.assertions import ASSERTION_CHECKS
from ledger_pipeline.defs.models.assets import MODEL_ASSETS
from ledger_pipeline.defs.qbo.assets import LOG_ASSETS, SYNC_CURSORS
from ledger_pipeline.defs.qbo.checks import RAIL_CHECKS
from ledger_pipeline.defs.resources import LedgerDuckDB, QboResource, TenantRegistryResource
from ledger_pipeline.defs.schedules import hourly_sync, nightly_audit
from ledger_pipeline.defs.sensors import tenant_registry_sensor


def build_definitions(
    *,
    warehouse: LedgerDuckDB | None = None,
    qbo: QboResource | None = None,
    tenants: TenantRegistryResource | None = None,
) -> dg.Definitions:
    """Definitions with default resources (paths from the environment), or the ones given (tests)."""
    return dg.Definitions(
        assets=[*LOG_ASSETS, *MODEL_ASSETS, SYNC_CURSORS],
        asset_checks=[*ASSERTION_CHECKS, *RAIL_CHECKS, tenants_fresh],
        jobs=[SYNC_JOB, FRESHNESS_JOB],
        schedules=[hourly_sync, nightly_audit, freshness_schedule],
        sensors=[tenant_registry_sensor],
        resources={
            "warehouse": warehouse or LedgerDuckDB(),
            "qbo": qbo or QboResource(),
            "tenants": tenants or TenantRegistryResource(),
        },
        executor=dg.in_process_executor,
    )


defs = build_definitions()
