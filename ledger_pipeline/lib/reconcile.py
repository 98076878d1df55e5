"""Reconciliation arithmetic over the warehouse: what the mirror publishes, open balances, freshness.

Plain functions of a DuckDB connection and values the rail reported, so each
check's logic is testable without Dagster; the checks only gather inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import duckdb

from ledger_pipeline.lib.entity_scope import tenants_condition
from ledger_pipeline.lib.sql_models import SqlModel

CENT = Decimal("0.01")


def _published_sql(model: SqlModel) -> str:
    return (
        f"select {model.key} as entity_id from {model.name} where tenant_id = $tenant "
        "union all select entity_id from quarantine.mirror_rows where model = $model and tenant_id = $tenant"
    )


def published_counts(conn: duckdb.DuckDBPyConnection, model: SqlModel, tenant_ids: list[str]) -> dict[str, int]:
    """How many entities the mirror holds for each tenant, quarantined ones included (they exist on the rail).

    Counts in DuckDB rather than the ids in Python, every tenant of a run in one query: a check compares
    counts every run, and needs the ids only when they differ.
    """
    if not tenant_ids:
        return {}
    where, params = tenants_condition("tenant_id", tenant_ids)
    rows = conn.execute(
        f"select tenant_id, count(distinct entity_id) from ("
        f"select tenant_id, {model.key} as entity_id from {model.name} where {where} union all "
        f"select tenant_id, entity_id from quarantine.mirror_rows where model = ? and {where}) group by tenant_id",
        [*params, model.name, *params],
    ).fetchall()
    counts = dict(rows)
    return {tenant_id: counts.get(tenant_id, 0) for tenant_id in tenant_ids}


def published_ids(conn: duckdb.DuckDBPyConnection, model: SqlModel, tenant_id: str) -> set[str]:
    """Entity ids the mirror holds for the tenant, quarantined ones included."""
    rows = conn.execute(_published_sql(model), {"tenant": tenant_id, "model": model.name}).fetchall()
    return {r[0] for r in rows}


def open_balances(
    conn: duckdb.DuckDBPyConnection, table: str, party_column: str, tenant_ids: list[str]
) -> dict[str, dict[str, Decimal]]:
    """Open balance per party (vendor or customer) of each tenant, from a mirror of documents with balance and
    is_voided; every tenant of a run in one query."""
    balances: dict[str, dict[str, Decimal]] = {tenant_id: {} for tenant_id in tenant_ids}
    if not tenant_ids:
        return balances
    where, params = tenants_condition("tenant_id", tenant_ids)
    rows = conn.execute(
        f"select tenant_id, {party_column}, sum(balance) from {table} "
        f"where {where} and balance <> 0 and not is_voided and {party_column} is not null group by 1, 2",
        params,
    ).fetchall()
    for tenant_id, party, amount in rows:
        balances[tenant_id][party] = Decimal(amount)
    return balances


@dataclass(frozen=True)
class AmountDifference:
    party_id: str
    mirror: Decimal
    rail: Decimal

    @property
    def difference(self) -> Decimal:
        return self.mirror - self.rail


def compare_amounts(mirror: dict[str, Decimal], rail: dict[str, Decimal]) -> list[AmountDifference]:
    """Parties whose amounts differ by a cent or more, largest difference first."""
    differences = [
        AmountDifference(party, mirror.get(party, Decimal(0)), rail.get(party, Decimal(0)))
        for party in mirror.keys() | rail.keys()
    ]
    differences = [d for d in differences if abs(d.difference) >= CENT]
    return sorted(differences, key=lambda d: (-abs(d.difference), d.party_id))


def assertion_violations(
    conn: duckdb.DuckDBPyConnection, sql_body: str, tenant_ids: list[str], sample: int = 5
) -> dict[str, tuple[int, list[dict]]]:
    """How many rows an assertion query returns for each tenant (one query for all), and the first few rows
    of each tenant that has any, as plain values."""
    found: dict[str, tuple[int, list[dict]]] = {tenant_id: (0, []) for tenant_id in tenant_ids}
    if not tenant_ids:
        return found
    where, params = tenants_condition("a.tenant_id", tenant_ids)
    counts = conn.execute(f"select a.tenant_id, count(*) from ({sql_body}) a where {where} group by 1", params)
    for tenant_id, count in counts.fetchall():
        relation = conn.execute(f"select * from ({sql_body}) a where a.tenant_id = ? limit {int(sample)}", [tenant_id])
        names = [d[0] for d in relation.description]
        rows = [
            {n: (v if isinstance(v, (int, bool)) or v is None else str(v)) for n, v in zip(names, r)}
            for r in relation.fetchall()
        ]
        found[tenant_id] = (count, rows)
    return found


def sync_ages(
    conn: duckdb.DuckDBPyConnection, tenant_ids: list[str], rail: str, now: datetime
) -> dict[str, float | None]:
    """Minutes since each tenant's stalest entity last synced on the rail (None: never synced)."""
    rows = dict(
        conn.execute(
            "select tenant_id, min(last_synced_at) from meta.sync_cursors where rail = ? group by tenant_id", [rail]
        ).fetchall()
    )
    return {t: (now - rows[t]).total_seconds() / 60 if rows.get(t) else None for t in tenant_ids}
