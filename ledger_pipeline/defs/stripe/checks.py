"""Reconciliation of the Stripe mirrors against Stripe itself, per tenant of the run that connected Stripe.

- `balance_matches_rail`: the ledger's available and pending balances (the net of its balance transactions by
  status, per currency) equal what `/v1/balance` says now.
- `paid_payouts_settle`: every paid payout equals the net of the balance transactions Stripe says it settled,
  and each of those is in the mirror with the same net. The payouts of the last PAYOUT_DAYS are compared on
  every run, counted back from the newest payout the mirror holds (older ones no longer move).
"""

from collections.abc import Callable
from datetime import timedelta

import dagster as dg
import duckdb

from ledger_pipeline.defs.partitions import DUCKDB_POOL, tenants_in_run
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.defs.stripe.resources import StripeResource
from ledger_pipeline.lib.tenants import TenantRegistry
from ledger_pipeline.rails.stripe.client import StripeClient
from ledger_pipeline.rails.stripe.errors import StripeError
from ledger_pipeline.rails.stripe.rail import NAME

PAYOUT_DAYS = 35
SAMPLE = 10
BALANCE_TRANSACTIONS = dg.AssetKey(["mirror", "stripe_balance_transactions"])
PAYOUTS = dg.AssetKey(["mirror", "stripe_payouts"])


def _ledger_balance(conn: duckdb.DuckDBPyConnection, tenant_id: str) -> dict[str, dict[str, int]]:
    rows = conn.execute(
        "select status, currency, sum(net)::bigint from mirror.stripe_balance_transactions "
        "where tenant_id = ? group by 1, 2",
        [tenant_id],
    ).fetchall()
    found: dict[str, dict[str, int]] = {"available": {}, "pending": {}}
    for status, currency, net in rows:
        found.setdefault(status, {})[currency] = net
    return found


def _rail_balance(client: StripeClient) -> dict[str, dict[str, int]]:
    body = client.balance()
    return {
        status: {entry["currency"]: entry["amount"] for entry in body.get(status, []) if entry.get("amount")}
        for status in ("available", "pending")
    }


def _compare_balance(conn: duckdb.DuckDBPyConnection, client: StripeClient, tenant_id: str) -> dict:
    ledger, rail = _ledger_balance(conn, tenant_id), _rail_balance(client)
    ledger = {s: {c: v for c, v in ledger.get(s, {}).items() if v} for s in ("available", "pending")}
    return {"ok": ledger == rail, "ledger": ledger, "rail": rail}


def _compare_payouts(conn: duckdb.DuckDBPyConnection, client: StripeClient, tenant_id: str) -> dict:
    payouts = conn.execute(
        "select stripe_id, amount from mirror.stripe_payouts where tenant_id = ? and status = 'paid' "
        "and created >= (select max(created) from mirror.stripe_payouts where tenant_id = ?) - ? "
        "order by created",
        [tenant_id, tenant_id, timedelta(days=PAYOUT_DAYS)],
    ).fetchall()
    mirrored = dict(
        conn.execute(
            "select stripe_id, net from mirror.stripe_balance_transactions where tenant_id = ?", [tenant_id]
        ).fetchall()
    )
    bad = []
    for payout_id, amount in payouts:
        settled = [t for t in client.payout_balance_transactions(payout_id) if t.get("type") != "payout"]
        total = sum(t["net"] for t in settled)
        missing = [t["id"] for t in settled if mirrored.get(t["id"]) != t["net"]]
        if total != amount or missing:
            bad.append({"payout": payout_id, "amount": amount, "settled_net": total, "not_in_mirror": missing[:SAMPLE]})
    return {"ok": not bad, "payouts_compared": len(payouts), "mismatched": bad[:SAMPLE]}


def _per_tenant(
    context: dg.AssetCheckExecutionContext, warehouse: LedgerDuckDB, stripe: StripeResource,
    tenants: TenantRegistryResource, what: str,
    compare: Callable[[duckdb.DuckDBPyConnection, StripeClient, str], dict],
) -> dict[str, dict]:  # fmt: skip
    registry: TenantRegistry = tenants.registry()
    registered = registry.load()
    per_tenant: dict[str, dict] = {}
    with warehouse.ledger() as conn:
        for tenant_id in tenants_in_run(context, list(registered)):
            if tenant_id in registered and registered[tenant_id].connection(NAME) is None:
                continue  # not connected to Stripe: nothing to compare
            with stripe.client(registry.get(tenant_id)) as client:
                try:
                    per_tenant[tenant_id] = compare(conn, client, tenant_id)
                except StripeError as exc:
                    raise dg.Failure(description=f"tenant {tenant_id}, rail stripe, reconciliation {what}: {exc}") from exc
    return per_tenant


def _result(per_tenant: dict[str, dict]) -> dg.AssetCheckResult:
    bad = [t for t, result in per_tenant.items() if not result["ok"]]
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={"tenants": dg.MetadataValue.json(per_tenant), "mismatched_tenants": dg.MetadataValue.int(len(bad))},
    )


@dg.asset_check(
    asset=BALANCE_TRANSACTIONS,
    name="balance_matches_rail",
    description="The ledger's available and pending balance (net of its balance transactions by status and "
    "currency) equals Stripe's /v1/balance for the tenant's account.",
    pool=DUCKDB_POOL,
)
def balance_matches_rail(
    context: dg.AssetCheckExecutionContext, warehouse: LedgerDuckDB, stripe: StripeResource,
    tenants: TenantRegistryResource,
) -> dg.AssetCheckResult:  # fmt: skip
    return _result(_per_tenant(context, warehouse, stripe, tenants, "balance_matches_rail", _compare_balance))


@dg.asset_check(
    asset=PAYOUTS,
    name="paid_payouts_settle",
    additional_deps=[BALANCE_TRANSACTIONS],
    description=f"Every paid payout of the last {PAYOUT_DAYS} days equals the net of the balance transactions "
    "Stripe says it settled, and each of those is in the mirror with the same net.",
    pool=DUCKDB_POOL,
)
def paid_payouts_settle(
    context: dg.AssetCheckExecutionContext, warehouse: LedgerDuckDB, stripe: StripeResource,
    tenants: TenantRegistryResource,
) -> dg.AssetCheckResult:  # fmt: skip
    return _result(_per_tenant(context, warehouse, stripe, tenants, "paid_payouts_settle", _compare_payouts))


RAIL_CHECKS = [balance_matches_rail, paid_payouts_settle]
