"""View and history models: (re)created whenever a writer opens the ledger, so readers always find them.

A history model also gets a table macro `<schema>.<table>_as_of(tenant, as_of_ts)`:
the mirror's columns for every entity version valid at that instant, which is
the point-in-time answer analysts call from SQL.
"""

from __future__ import annotations

import duckdb

from ledger_pipeline.lib.sql_models import SqlModel

HISTORY_COLUMNS = ("op", "valid_from", "valid_to", "is_current")
AS_OF_MACRO = (
    "create or replace macro {name}_as_of(tenant, as_of_ts) as table "
    "select * exclude ({hidden}) from {name} "
    "where tenant_id = tenant and op <> 'deleted' and valid_from <= as_of_ts "
    "and (valid_to is null or valid_to > as_of_ts)"
)


def ensure_views(conn: duckdb.DuckDBPyConnection, models: list[SqlModel]) -> None:
    """Create or replace every view and history model (models come in dependency order)."""
    for model in models:
        if model.materialized not in ("view", "history"):
            continue
        conn.execute(f"create schema if not exists {model.schema}")
        conn.execute(f"create or replace view {model.name} as {model.body}")
        if model.materialized == "history":
            conn.execute(AS_OF_MACRO.format(name=model.name, hidden=", ".join(HISTORY_COLUMNS)))
