"""Tenant tables (marts): a refresh replaces the run's tenants' rows with the model's rows, in one transaction.

One statement for all of the run's tenants rather than one per tenant: a mart model groups by tenant, so the
tenant filter gives each tenant the rows it would get alone, and planning the model costs ~8 ms a statement.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from ledger_pipeline.lib.entity_scope import tenants_condition
from ledger_pipeline.lib.mirrors import ensure_table
from ledger_pipeline.lib.sql_models import SqlModel
from ledger_pipeline.lib.warehouse import rollback


def refresh_tenant_tables(
    conn: duckdb.DuckDBPyConnection, model: SqlModel, tenant_ids: list[str], upstream: Sequence[SqlModel] = ()
) -> dict[str, int]:
    """Recompute the tenants' rows of a mart; return how many each now has. `upstream`: the tables it reads, each
    after those it reads, created empty if no run made them yet (a model over every rail runs for a tenant that
    connected only some)."""
    conn.execute("begin")
    try:
        for table in upstream:
            ensure_table(conn, table)
        ensure_table(conn, model)
        where, params = tenants_condition("tenant_id", tenant_ids)  # one tenant (an hourly run): an equality
        conn.execute(f"delete from {model.name} where {where}", params)
        on_model, _ = tenants_condition("m.tenant_id", tenant_ids)
        conn.execute(f"insert into {model.name} by name select * from ({model.body}) m where {on_model}", params)
        counts = dict(
            conn.execute(f"select tenant_id, count(*) from {model.name} where {where} group by tenant_id", params)
            .fetchall()
        )
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise
    return {t: counts.get(t, 0) for t in tenant_ids}
