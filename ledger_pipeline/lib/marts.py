"""Tenant tables (marts): each refresh replaces the tenant's rows with the model's rows, in one transaction."""

from __future__ import annotations

import duckdb

from ledger_pipeline.lib.sql_models import SqlModel
from ledger_pipeline.lib.warehouse import fetch_one


def refresh_tenant_table(conn: duckdb.DuckDBPyConnection, model: SqlModel, tenant_id: str) -> int:
    """Recompute one tenant's rows of a mart; return how many it now has."""
    conn.execute("begin")
    try:
        conn.execute(f"create schema if not exists {model.schema}")
        conn.execute(f"create table if not exists {model.name} as select * from ({model.body}) where false")
        conn.execute(f"delete from {model.name} where tenant_id = ?", [tenant_id])
        conn.execute(f"insert into {model.name} by name select * from ({model.body}) m where m.tenant_id = ?", [tenant_id])
        rows = fetch_one(conn, f"select count(*) from {model.name} where tenant_id = ?", [tenant_id])[0]
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return rows
