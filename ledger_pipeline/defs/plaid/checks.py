"""Plaid checks that need more than the mirrors' SQL assertions, per tenant of the run that connected Plaid.

- `items_logged_in`: no item of the tenant needs a new login. A sync that meets ITEM_LOGIN_REQUIRED skips the
  item (its other items, rails and tenants sync on) and marks it in the registry; this check is where that shows
  in the UI, naming the tenant, the bank and since when, until a sync after the re-login reads it again.
- `items_fresh`: every item's transactions were synced within the tenant's max_sync_age_minutes (the per-item
  times the transaction cursor keeps): an item skipped for a login, or failing, goes stale here by name.
"""

import json
from datetime import UTC, datetime

import dagster as dg

from ledger_pipeline.defs.partitions import DUCKDB_POOL, tenants_in_run
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.lib.tenants import Tenant
from ledger_pipeline.rails.plaid.entities import TRANSACTION
from ledger_pipeline.rails.plaid.rail import NAME, PlaidConnection

ITEMS = dg.AssetKey(["mirror", "plaid_items"])
TRANSACTIONS = dg.AssetKey(["mirror", "plaid_transactions"])
RELOGIN = "a person must log in to the bank again through Plaid Link's update mode"


def _plaid_tenants(context: dg.AssetCheckExecutionContext, tenants: TenantRegistryResource) -> dict[str, Tenant]:
    registered = tenants.registry().load()
    in_run = tenants_in_run(context, list(registered))
    return {t: registered[t] for t in in_run if t in registered and registered[t].connection(NAME) is not None}


def _result(problems: dict[str, list], checked: int, what: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not problems,
        description=None if not problems else "; ".join(
            f"tenant {t}: {', '.join(str(p['message']) for p in found)}" for t, found in problems.items()
        )[:2000],
        metadata={what: dg.MetadataValue.int(checked), "problems": dg.MetadataValue.json(problems)},
    )  # fmt: skip


@dg.asset_check(
    asset=ITEMS,
    name="items_logged_in",
    description="No Plaid item of the run's tenants needs a new login (ITEM_LOGIN_REQUIRED): such an item is "
    "skipped by every sync, its cursor kept, until a person re-links it.",
    pool=DUCKDB_POOL,
)
def items_logged_in(
    context: dg.AssetCheckExecutionContext, warehouse: LedgerDuckDB, tenants: TenantRegistryResource
) -> dg.AssetCheckResult:
    connected = _plaid_tenants(context, tenants)
    with warehouse.ledger() as conn:
        rows = conn.execute(
            "select tenant_id, item_id, institution_name, error_code from mirror.plaid_items "
            "where list_contains(?::varchar[], tenant_id)",
            [list(connected)],
        ).fetchall()
    banks = {(t, item): bank for t, item, bank, _ in rows}
    failing = {(t, item) for t, item, _, code in rows if code == "ITEM_LOGIN_REQUIRED"}
    problems: dict[str, list] = {}
    for tenant_id, tenant in connected.items():
        plaid = tenant.connection(NAME)
        assert isinstance(plaid, PlaidConnection)
        for item in plaid.items:
            if item.login_required_since or (tenant_id, item.item_id) in failing:
                bank = banks.get((tenant_id, item.item_id)) or "its bank"
                since = f" since {item.login_required_since}" if item.login_required_since else ""
                problems.setdefault(tenant_id, []).append({
                    "item_id": item.item_id, "institution": bank, "since": item.login_required_since,
                    "message": f"Plaid item {item.item_id} at {bank} needs a new login{since}: {RELOGIN}",
                })  # fmt: skip
    return _result(problems, sum(len(t.connection(NAME).items) for t in connected.values()), "items_checked")


@dg.asset_check(
    asset=TRANSACTIONS,
    name="items_fresh",
    description="Every Plaid item's transactions were synced within the tenant's max_sync_age_minutes (per item: "
    "an item skipped for a login, or failing, goes stale here by name).",
    pool=DUCKDB_POOL,
)
def items_fresh(
    context: dg.AssetCheckExecutionContext, warehouse: LedgerDuckDB, tenants: TenantRegistryResource
) -> dg.AssetCheckResult:
    connected = _plaid_tenants(context, tenants)
    with warehouse.ledger() as conn:
        positions = dict(conn.execute(
            "select tenant_id, position from meta.sync_cursors where rail = ? and entity_type = ? "
            "and list_contains(?::varchar[], tenant_id)",
            [NAME, TRANSACTION.name, list(connected)],
        ).fetchall())  # fmt: skip
    now = datetime.now(UTC)
    problems: dict[str, list] = {}
    for tenant_id, tenant in connected.items():
        synced = {item: value.get("synced_at") for item, value in json.loads(positions.get(tenant_id) or "{}").items()}
        for item_id in tenant.connection(NAME).account_ids:
            at = synced.get(item_id)
            age = None if at is None else (now - datetime.fromisoformat(at)).total_seconds() / 60
            if age is None or age > tenant.max_sync_age_minutes:
                when = "never synced" if age is None else f"last synced {age:.0f} min ago"
                problems.setdefault(tenant_id, []).append({
                    "item_id": item_id, "minutes": None if age is None else round(age, 1),
                    "message": f"Plaid item {item_id} {when} (allowed {tenant.max_sync_age_minutes} min)",
                })  # fmt: skip
    return _result(problems, sum(len(t.connection(NAME).items) for t in connected.values()), "items_checked")


RAIL_CHECKS = [items_logged_in, items_fresh]
