"""The job that syncs tenants: every log asset, then every mirror, for the partitions asked."""

from __future__ import annotations

import dagster as dg

from ledger_pipeline.defs.qbo.assets import SYNC_CURSORS

SYNC_JOB = dg.define_asset_job(
    "sync_tenants",
    selection=dg.AssetSelection.all() - dg.AssetSelection.checks_for_assets(SYNC_CURSORS.key),
    description="Extract every rail entity of the tenant into the log, then refresh its mirrors and checks.",
)
