"""The one Definitions object `workspace.yaml` loads: it only assembles the core's and every rail's."""

from __future__ import annotations

import dagster as dg

from ledger_pipeline.defs import rails as rail_defs
from ledger_pipeline.defs.decisions import DECISION_JOB, recon_decisions
from ledger_pipeline.defs.freshness import FRESHNESS_JOB, freshness_schedule, tenants_fresh
from ledger_pipeline.defs.jobs import SYNC_JOB
from ledger_pipeline.defs.log_assets import SYNC_CURSORS
from ledger_pipeline.defs.models.assertions import ASSERTION_CHECKS
from ledger_pipeline.defs.models.assets import MODEL_ASSETS
from ledger_pipeline.defs.read_side import read_side_generation
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.defs.schedules import hourly_sync, nightly_audit
from ledger_pipeline.defs.sensors import tenant_registry_sensor


def build_definitions(
    *,
    warehouse: LedgerDuckDB | None = None,
    tenants: TenantRegistryResource | None = None,
    **rail_resources: dg.ConfigurableResource,
) -> dg.Definitions:
    """Definitions with default resources (paths from the environment), or the ones given (tests): each rail's
    resource by the rail's name, e.g. `qbo=QboResource(...)`."""
    defaults = rail_defs.default_resources()
    if unknown := set(rail_resources) - set(defaults):
        raise TypeError(f"build_definitions: no rail named {sorted(unknown)}; rails: {', '.join(defaults)}")
    core = dg.Definitions(
        assets=[*MODEL_ASSETS, SYNC_CURSORS, recon_decisions, read_side_generation],
        asset_checks=[*ASSERTION_CHECKS, tenants_fresh],
        jobs=[SYNC_JOB, FRESHNESS_JOB, DECISION_JOB],
        schedules=[hourly_sync, nightly_audit, freshness_schedule],
        sensors=[tenant_registry_sensor],
        resources={
            "warehouse": warehouse or LedgerDuckDB(),
            "tenants": tenants or TenantRegistryResource(),
            **defaults,
            **rail_resources,
        },
        executor=dg.in_process_executor,
    )
    return dg.Definitions.merge(core, *rail_defs.definitions())


defs = build_definitions()
