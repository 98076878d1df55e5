"""Tenants as a dynamic partition set, the single-run backfill policy, and the DuckDB writer pool."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import dagster as dg

from ledger_pipeline.lib import ids

TENANTS = dg.DynamicPartitionsDefinition(name="tenants")

# A backfill over many tenants runs as one run: one process, one DuckDB open, steps looping over tenants.
# BackfillPolicy is marked beta in Dagster 1.13 (pinned by requirements.lock); its stability notice is
# the only warning silenced in this project, and only for this parameter.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
SINGLE_RUN_BACKFILL = dg.BackfillPolicy.single_run()

# Every asset that writes DuckDB runs in this pool; dagster.yaml limits it to 1 slot.
DUCKDB_POOL = "ledger_duckdb"

# Dagster writes a step's materialisation metadata into each partition of the run, so a map with an entry
# per tenant grows as T x T in a run over T tenants: past this many tenants only totals are written (the log
# and mirror steps name each tenant's figures in their log line).
PER_TENANT_METADATA_LIMIT = 20


def per_tenant_metadata(name: str, by_tenant: Mapping[str, object]) -> dict[str, dg.MetadataValue]:
    """`name` -> the per-tenant map as JSON metadata, for a run of at most PER_TENANT_METADATA_LIMIT tenants."""
    if len(by_tenant) > PER_TENANT_METADATA_LIMIT:
        return {}
    return {name: dg.MetadataValue.json(dict(by_tenant))}


def tenants_in_run(context: dg.AssetCheckExecutionContext, registered: list[str]) -> list[str]:
    """The tenants a check should look at: the run's partitions, or every registered tenant when unpartitioned."""
    op = context.op_execution_context
    if op.has_partition_key or op.has_partition_key_range:
        return list(op.partition_keys)
    return sorted(registered)


def run_tenant_ids(context: dg.AssetExecutionContext) -> list[str]:
    """The run's partition keys, each validated as a tenant id before any SQL sees it."""
    keys = list(context.partition_keys)
    for key in keys:
        try:
            ids.tenant_id(key)
        except ids.InvalidInput as exc:
            raise dg.Failure(description=f"partition {key!r} is not a tenant id: {exc}") from None
    return keys
