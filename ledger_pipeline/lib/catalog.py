"""Column names and DuckDB types of every SQL model, read from DuckDB itself on an empty in-memory ledger.

Asset definitions show them as column schemas in the UI without opening the
real database, and they stay true to the SQL because DuckDB derives them.
Deriving them takes about a second, and every process that loads the
definitions needs them (each run worker, each CLI command), so the answer is
kept in the user's cache folder under a key made of everything it depends on:
the DuckDB version, the models' SQL, the rails' macros and log views, and the
code of `lib/` that builds the ledger. Any change to those derives it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import duckdb

from ledger_pipeline.lib import model_views, rails, warehouse
from ledger_pipeline.lib.sql_models import SqlModel

LIB = Path(__file__).resolve().parent
Columns = dict[str, list[tuple[str, str]]]


def model_columns(models: list[SqlModel]) -> Columns:
    """{model name: [(column, type), ...]} for models given in dependency order, over every rail's log views."""
    path = _cache_folder() / f"model-columns-{_key(models)}.json"
    try:
        return {name: [tuple(column) for column in cols] for name, cols in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        pass  # not derived yet here, or unreadable: derive it
    columns = _derive(models)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            json.dump(columns, tmp)
        os.replace(tmp.name, path)  # whole or not at all, whoever else writes it at the same time
    except OSError:
        pass  # a read-only home: derive it every time, as before
    return columns


def _derive(models: list[SqlModel]) -> Columns:
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


def _key(models: list[SqlModel]) -> str:
    digest = hashlib.sha256(duckdb.__version__.encode())
    for model in models:
        digest.update(f"\0{model.name}\0{model.materialized}\0{model.body}".encode())
    digest.update(json.dumps([rails.log_views(), list(rails.macros())]).encode())
    for source in sorted(LIB.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:32]


def _cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ledger_pipeline"
