"""The ledger's derived SQL objects (every rail's log views, the view models, the macros), kept in step with
the code by every writer that opens the file: the Dagster resource and the operator tools alike."""

from __future__ import annotations

import functools

import duckdb

from ledger_pipeline.lib import model_views, rails, warehouse
from ledger_pipeline.lib.canonical import sha256_hex
from ledger_pipeline.lib.sql_models import load_models, read_models


@functools.cache
def fingerprint() -> str:
    """What the view SQL of this code hashes to (the code and its SQL files do not change within a process): the
    models' text, in name order (a writer that finds its views current never parses their SQL)."""
    models = "".join(m.name + m.body for m in read_models())
    macros = (model_views.MONEY_MACRO, *rails.macros())
    return sha256_hex(repr(rails.log_views()) + "".join(macros) + model_views.AS_OF_MACRO + models)


def ensure(conn: duckdb.DuckDBPyConnection) -> None:
    """(Re)create the log views and view models when their SQL differs from what the file was built with."""
    current = fingerprint()
    if warehouse.info(conn, "views_fingerprint") == current:
        return
    conn.execute("begin")
    create(conn)
    warehouse.set_info(conn, "views_fingerprint", current)
    conn.execute("commit")


def create(conn: duckdb.DuckDBPyConnection, *, tables: bool = True) -> None:
    """The log views, the view models and the macros over `conn`'s raw.entity_log and tables; with `tables` False
    over relations the caller made (the read side's views of Parquet files), history tables left alone."""
    warehouse.create_entity_views(conn, rails.log_views())
    model_views.ensure_views(conn, load_models(), rails.macros(), tables=tables)
