"""The job that syncs tenants: every log asset, then every mirror, for the partitions asked; and the part of it
that concerns some rails only, which the schedules and the sensor run for tenants that connected only those."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from ledger_pipeline.defs.decisions import DECISIONS_KEY
from ledger_pipeline.defs.log_assets import SYNC_CURSORS
from ledger_pipeline.lib import rails as rail_registry

SYNC_JOB = dg.define_asset_job(
    "sync_tenants",
    # Not people's decisions: record_decision appends one (defs/decisions.py).
    selection=dg.AssetSelection.all()
    - dg.AssetSelection.checks_for_assets(SYNC_CURSORS.key)
    - dg.AssetSelection.assets(DECISIONS_KEY),
    description="Extract every entity of every rail the tenant connected into the log (the rest are skipped), then "
    "refresh its mirrors and checks.",
)


def rails_selection(rails: Iterable[str]) -> dg.AssetSelection:
    """The part of the sync job that concerns these rails: their log assets and everything downstream of them
    (mirrors, history, marts and their checks). A run over tenants that connected only some rails can run this
    subset: the other rails' steps would only skip every tenant."""
    logs = dg.AssetSelection.groups(*(f"{rail}_log" for rail in sorted(set(rails))))
    return logs.downstream().materializable()  # the stg views are specs without a step


def rails_asset_keys(rails: Iterable[str], repository: dg.RepositoryDefinition) -> list[dg.AssetKey] | None:
    """The assets of `repository` a sync run over tenants that connected these rails materialises (a RunRequest's
    asset_selection); None when that is the whole sync job (no rail left out, or no rail known)."""
    wanted = set(rails)
    if not wanted or wanted >= set(rail_registry.all_rails()):
        return None
    return sorted(rails_selection(wanted).resolve(repository.asset_graph))
