"""What the read side publishes, and a cheap fingerprint of each tenant's rows of it, computed in DuckDB.

The same queries run on the ledger (what to publish) and on a views file (the check that the read side equals
the ledger): a table's fingerprint is its row count and the sum of its rows' hashes with its column list, so
an edit, a lost or an extra row changes it; the log's is its count and last seq (it only grows), and its
content is vouched for by its chain heads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from ledger_pipeline.lib.canonical import sha256_hex
from ledger_pipeline.lib.entity_scope import tenants_condition

LOG = "raw.entity_log"
SCHEMAS = ["raw", "mirror", "history", "marts", "core", "recon", "quarantine"]
ALSO = ["meta.sync_cursors"]  # when each tenant was last synced: analysts' freshness
_NAME = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
# DuckDB's own rendering of a column type, as the ledger's catalog gives it: a struct quotes a field named like a
# keyword (`STRUCT("type" VARCHAR)[]`). Types reach SQL only as `cast(null as <type>)` in a views file.
_TYPE = re.compile(r'[A-Za-z0-9_(), \[\]"]+')


class ReadSideError(RuntimeError):
    """The read side could not be published or does not match the ledger."""


@dataclass(frozen=True)
class Table:
    name: str  # schema.table, checked against _NAME: the only text of it that reaches SQL
    columns: tuple[tuple[str, str], ...]  # (column, DuckDB type) in order

    @property
    def signature(self) -> str:
        return ",".join(f"{column} {kind}" for column, kind in self.columns)


def published_tables(conn: duckdb.DuckDBPyConnection) -> list[Table]:
    """Every base table of the published schemas (and ALSO) with a tenant_id column, names and types checked."""
    rows = conn.execute(
        "select c.schema_name || '.' || c.table_name, list([c.column_name, c.data_type] order by c.column_index) "
        "from duckdb_columns() c join duckdb_tables() t using (database_name, schema_name, table_name) "
        "where c.database_name = current_database() "
        "and (list_contains(?, c.schema_name) or list_contains(?, c.schema_name || '.' || c.table_name)) "
        "group by all having bool_or(c.column_name = 'tenant_id') order by 1",
        [SCHEMAS, ALSO],
    ).fetchall()
    tables = []
    for name, columns in rows:
        if not _NAME.fullmatch(name) or not all(re.fullmatch(r"[a-z_][a-z0-9_]*", c) for c, _ in columns):
            raise ReadSideError(f"the ledger holds a table with an unexpected name {name!r}; not publishing it")
        if not all(_TYPE.fullmatch(kind) for _, kind in columns):
            raise ReadSideError(f"{name} has a column type the read side cannot declare; not publishing it")
        tables.append(Table(name, tuple((c, k) for c, k in columns)))
    return tables


def fingerprints(
    conn: duckdb.DuckDBPyConnection, tables: list[Table], tenant_ids: list[str]
) -> dict[tuple[str, str], tuple[int, str]]:
    """(tenant, table) -> (rows, fingerprint) for every tenant given with rows in a table, in one statement."""
    where, params = tenants_condition("x.tenant_id", tenant_ids)
    parts = [
        f"select {i} as i, x.tenant_id, count(*), "
        + ("max(x.seq)::hugeint" if table.name == LOG else "sum(hash(x)::hugeint)")
        + f" from {table.name} x where {where} group by all"
        for i, table in enumerate(tables)
    ]
    found = {}
    for i, tenant_id, rows, total in conn.execute(" union all ".join(parts), params * len(parts)).fetchall():
        found[(tenant_id, tables[i].name)] = (rows, fingerprint_of(rows, total, tables[i]))
    return found


def fingerprint_of(rows: int, total: int | None, table: Table) -> str:
    """The fingerprint of a tenant's rows of a table (`total`: their hash sum, or the log's last seq)."""
    return sha256_hex(f"{rows}|{total}|{table.signature}")[:20]


def chain_heads(conn: duckdb.DuckDBPyConnection, tenant_ids: list[str]) -> dict[str, str]:
    """`tenant/rail/entity_type` -> the row_hash of that chain's last row, for the tenants given."""
    where, params = tenants_condition("tenant_id", tenant_ids)
    rows = conn.execute(
        f"select tenant_id || '/' || rail || '/' || entity_type, arg_max(row_hash, seq) from {LOG} "
        f"where {where} group by all",
        params,
    ).fetchall()
    return dict(rows)


@contextmanager
def single_threaded(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One DuckDB thread for the block: a statement over ~70 small per-tenant scans ran 4x faster on one thread
    than on two (scheduling dominates), and the read side's work is many small statements."""
    threads = conn.execute("select current_setting('threads')").fetchall()[0][0]
    conn.execute("set threads = 1")
    try:
        yield
    finally:
        conn.execute(f"set threads = {int(threads)}")
