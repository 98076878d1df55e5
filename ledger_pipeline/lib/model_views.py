"""What every writer's open makes sure of: view models (re)created, history tables present, the macros.

A history model is a table (refreshed like a mirror, lib/mirrors.py) with a table macro
`<schema>.<table>_as_of(tenant, as_of_ts)`: the mirror's columns for every entity version valid
at that instant, which is the point-in-time answer analysts call from SQL. Its table is created
empty here, so readers find it before the first refresh fills it; when the model's columns change, the
table is recreated empty and the next refresh refills it from the log (history = f(log)).
"""

from __future__ import annotations

import duckdb

from ledger_pipeline.lib.mirrors import ensure_table
from ledger_pipeline.lib.sql_models import SqlModel
from ledger_pipeline.lib.warehouse import fetch_one

# The money policy of every stg model, in one place: a JSON number with at most two decimals (USD) becomes
# DECIMAL(18, 2); a string, a third decimal or an absent amount is null, never rounded (the mirror contracts
# quarantine what it leaves null).
MONEY_MACRO = (
    "create or replace macro json_money(amount) as "
    "case when json_type(amount) in ('UBIGINT', 'BIGINT', 'DOUBLE') "
    "and regexp_full_match(amount::varchar, '-?[0-9]{1,16}([.][0-9]{1,2})?') "
    "then cast(amount::varchar as decimal(18, 2)) end"
)
# The same policy for rails whose stg models keep money as integer minor units (Plaid, Ramp): a JSON number in major
# units with at most two decimals becomes BIGINT cents; anything else is null, never rounded.
CENTS_MACRO = (
    "create or replace macro json_cents(value) as "
    "case when json_type(value) in ('BIGINT', 'UBIGINT', 'DOUBLE') "
    "and try_cast(value ->> '$' as decimal(38, 2)) = try_cast(value ->> '$' as double) "
    "then try_cast(try_cast(value ->> '$' as decimal(38, 2)) * 100 as bigint) end"
)
HISTORY_COLUMNS = ("op", "valid_from", "valid_to", "is_current")
AS_OF_MACRO = (
    "create or replace macro {name}_as_of(tenant, as_of_ts) as table "
    "select * exclude ({hidden}) from {name} "
    "where tenant_id = tenant and op <> 'deleted' and valid_from <= as_of_ts "
    "and (valid_to is null or valid_to > as_of_ts)"
)


def ensure_views(
    conn: duckdb.DuckDBPyConnection, models: list[SqlModel], macros: tuple[str, ...], *, tables: bool = True
) -> None:
    """Create or replace every view model; create missing history tables and (re)create their as-of macros.

    Models come in dependency order; the stg views call the macros (the money macros, then the rails'),
    created first. With `tables` False the history relations are the caller's (the read side's views over
    Parquet, lib/read_side/views.py): only their as-of macros are made.
    """
    for macro in (MONEY_MACRO, CENTS_MACRO, *macros):
        conn.execute(macro)
    for model in models:
        if model.materialized == "view":
            conn.execute(f"create schema if not exists {model.schema}")
            conn.execute(f"create or replace view {model.name} as {model.body}")
        elif model.materialized == "history":
            if tables:
                _drop_outdated_history(conn, model)
                ensure_table(conn, model)
            conn.execute(AS_OF_MACRO.format(name=model.name, hidden=", ".join(HISTORY_COLUMNS)))


def _drop_outdated_history(conn: duckdb.DuckDBPyConnection, model: SqlModel) -> None:
    """Drop a history relation the model no longer describes: a view (ledgers written before history became
    tables) or a table with other columns; its watermarks go with it, so the next refresh rebuilds it."""
    where, names = "database_name = current_database() and schema_name = ? and ", [model.schema, model.table]
    if fetch_one(conn, f"select count(*) from duckdb_views() where {where} view_name = ?", names)[0]:
        conn.execute(f"drop view {model.name}")
    else:
        stored = conn.execute(
            f"select column_name, data_type from duckdb_columns() where {where} table_name = ? order by column_index",
            names,
        ).fetchall()
        described = conn.execute(f"describe select * from ({model.body})").fetchall() if stored else []
        if stored == [tuple(row[:2]) for row in described]:
            return
        conn.execute(f"drop table {model.name}")
    conn.execute("delete from meta.model_watermarks where model = ?", [model.name])
