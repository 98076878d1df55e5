"""Tenant tables (marts, core, recon): a refresh replaces the run's tenants' rows with the models' rows.

One statement per model for all of the run's tenants rather than one per tenant: a model groups by tenant, so the
tenant filter gives each tenant the rows it would get alone, and planning a model costs ~8 ms a statement. Models
refreshed together share one transaction, so readers never see links of one run beside breaks of another. A model
configured `rematch=<keys model>` (recon.links) is re-matched only where its objects changed (lib/rematch.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from ledger_pipeline.lib import rematch
from ledger_pipeline.lib.entity_scope import tenants_condition
from ledger_pipeline.lib.mirrors import ensure_table
from ledger_pipeline.lib.sql_models import SqlModel, load_models
from ledger_pipeline.lib.warehouse import rollback


@dataclass(frozen=True)
class TableRefresh:
    """One model's refresh: the rows each tenant now has, the seconds its statements took, and for a re-matched
    model what was re-matched."""

    rows: dict[str, int]
    seconds: float
    rematch: rematch.Rematch | None = None


def refresh_tenant_tables(
    conn: duckdb.DuckDBPyConnection, models: Sequence[SqlModel], tenant_ids: list[str],
    upstream: Sequence[SqlModel] = (), *, full: bool = False,
) -> dict[str, TableRefresh]:  # fmt: skip
    """Recompute the tenants' rows of each model, in the order given (each after the models it reads), in one
    transaction. `upstream`: the tables they read, each after those it reads, created empty if no run made them yet
    (a model over every rail runs for a tenant that connected only some). `full`: re-match everything."""
    where, params = tenants_condition("tenant_id", tenant_ids)  # one tenant (an hourly run): an equality
    on_model, _ = tenants_condition("m.tenant_id", tenant_ids)
    refreshed = {}
    conn.execute("begin")
    try:
        for table in upstream:
            ensure_table(conn, table)
        for model in models:
            started = time.perf_counter()
            keys = _keys_model(model)
            ensure_table(conn, model)
            matched = None
            if keys is not None:
                matched = rematch.rematch_links(conn, model, keys, tenant_ids, full=full)
            else:
                conn.execute(f"delete from {model.name} where {where}", params)
                conn.execute(f"insert into {model.name} by name select * from ({model.body}) m where {on_model}",
                             params)  # fmt: skip
            counts = dict(
                conn.execute(f"select tenant_id, count(*) from {model.name} where {where} group by tenant_id", params)
                .fetchall()
            )
            refreshed[model.name] = TableRefresh({t: counts.get(t, 0) for t in tenant_ids},
                                                 time.perf_counter() - started, matched)
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise
    return refreshed


def _keys_model(model: SqlModel) -> SqlModel | None:
    """The keys model a model is re-matched from (`-- config: rematch=<table>`, in its schema), if any."""
    table = model.config.get("rematch")
    if table is None:
        return None
    return {m.name: m for m in load_models()}[f"{model.schema}.{table}"]
