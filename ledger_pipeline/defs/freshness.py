"""Freshness: every registered tenant synced within its allowed age. Runs on its own schedule, so it
catches the tenant whose syncs stopped, which no check inside a sync run could."""

from datetime import UTC, datetime

import dagster as dg

from ledger_pipeline.defs.log_assets import SYNC_CURSORS
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.lib.reconcile import sync_ages


@dg.asset_check(
    asset=SYNC_CURSORS.key,
    name="tenants_fresh",
    description="Every registered tenant's stalest entity, on every rail it connected, synced within the tenant's "
    "max_sync_age_minutes (registry; default 180).",
)
def tenants_fresh(warehouse: LedgerDuckDB, tenants: TenantRegistryResource) -> dg.AssetCheckResult:
    registered = tenants.registry().load()
    with warehouse.ledger() as conn:
        ages = sync_ages(conn, {t: registered[t].rails for t in sorted(registered)}, datetime.now(UTC))
    stale = {
        t: "never synced" if age is None else f"{age:.0f} min since last sync (allowed {registered[t].max_sync_age_minutes})"
        for t, age in ages.items()
        if age is None or age > registered[t].max_sync_age_minutes
    }
    return dg.AssetCheckResult(
        passed=not stale,
        metadata={
            "tenants": dg.MetadataValue.int(len(ages)),
            "stale": dg.MetadataValue.json(stale),
            "minutes_since_sync": dg.MetadataValue.json({t: None if a is None else round(a, 1) for t, a in ages.items()}),
        },
    )


FRESHNESS_JOB = dg.define_asset_job(
    "check_freshness", selection=dg.AssetSelection.checks(tenants_fresh), description="Is every tenant synced recently?"
)


@dg.schedule(job=FRESHNESS_JOB, cron_schedule="*/15 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def freshness_schedule() -> dg.RunRequest:
    return dg.RunRequest()
