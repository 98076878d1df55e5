"""Column names and DuckDB types of every SQL model, read from DuckDB itself on an empty in-memory ledger.

Asset definitions show them as column schemas in the UI without opening the
real database, and they stay true to the SQL because DuckDB derives them.
"""

from __future__ import annotations

import duckdb

from ledger_pipeline.lib import model_views, rails, warehouse
from ledger_pipeline.lib.sql_models import SqlModel


def model_columns(models: list[SqlModel]) -> dict[str, list[tuple[str, str]]]:
    """{model name: [(column, type), ...]} for models given in dependency order, over every rail's log views."""
    conn = duckdb.connect()
    try:
        conn.execute("set TimeZone = 'UTC'")
        warehouse.ensure_schema(conn)
        warehouse.create_entity_views(conn, rails.log_views())
        model_views.ensure_views(conn, models, rails.macros())
        columns = {}
        for model in models:
            described = conn.execute(f"describe select * from ({model.body})").fetchall()
            columns[model.name] = [(row[0], row[1]) for row in described]
            if model.materialized in ("mirror", "tenant_table"):
                conn.execute(f"create schema if not exists {model.schema}")
                conn.execute(f"create table {model.name} as select * from ({model.body}) where false")
        return columns
    finally:
        conn.close()
