"""A generation's views file: a small DuckDB database of views over the generation's Parquet files, with the log
views, stg views and macros the ledger has (lib/ledger_views.py makes both), so analysts' SQL runs unchanged.

The derived views and macros depend only on the code, so they are made once per version of it in a template
(typed empty tables under them). A generation's file is a copy of the previous generation's (or of the template)
in which only the views of the tables that changed are replaced: binding a view reads its files' footers and
binding the stg views is slow, so this keeps a views file's cost in step with the change.
A view's text cannot take bound parameters, so the file lists are written into it: every path is made by the
code from the read side's folder, a checked tenant id, a checked table name and a hex digest, and quoted here.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import duckdb

from ledger_pipeline.lib import ledger_views
from ledger_pipeline.lib.canonical import sha256_hex
from ledger_pipeline.lib.read_side.fingerprint import ReadSideError, Table
from ledger_pipeline.lib.read_side.layout import ReadSide, temporary

INFO_TABLE = "meta.read_side"  # one row: the generation a reader sees and when it was published


def template(read_side: ReadSide, tables: list[Table]) -> Path:
    """The views file of this code's tables, views and macros over no rows, made when missing (old ones removed)."""
    key = sha256_hex(ledger_views.fingerprint() + "|".join(f"{t.name}:{t.signature}" for t in tables))[:16]
    path = read_side.root / "templates" / f"{key}.duckdb"
    if path.exists():
        return path
    tmp = temporary(path)
    with _open(tmp) as conn:
        conn.execute("begin")
        for schema in sorted({t.name.split(".")[0] for t in tables} | {"meta"}):
            conn.execute(f"create schema if not exists {schema}")
        for table in tables:
            conn.execute(f"create view {table.name} as {_relation(table, [])}")
        ledger_views.create(conn, tables=False)
        conn.execute(f"create table {INFO_TABLE} (generation bigint, published_at timestamptz)")
        conn.execute("commit")
    os.replace(tmp, path)
    for other in path.parent.glob("*.duckdb"):
        if other != path:
            other.unlink(missing_ok=True)
    return path


def write_views(
    path: Path, base: Path, files: dict[str, list[str]], tables: list[Table], generation: int,
    published_at: datetime, *, relative_to: Path | None = None,
) -> None:  # fmt: skip
    """Write the views file at path (by rename): a copy of `base` (the template, or the previous generation's file)
    whose views of the tables in `files` now read those files (a typed empty relation for none). `relative_to`:
    the files are named relative to that folder (a tenant's share, which can be moved as a whole) and a reader
    opens the views file from there."""
    tmp = temporary(path)
    shutil.copyfile(base, tmp)
    with _open(tmp) as conn:
        if relative_to is not None:
            conn.execute("set file_search_path = ?", [str(relative_to)])
        conn.execute("begin")  # one commit: each statement's own would write and sync the WAL
        for table in tables:
            if table.name in files:
                conn.execute(f"create or replace view {table.name} as {_relation(table, files[table.name])}")
        conn.execute(f"delete from {INFO_TABLE}")
        conn.execute(f"insert into {INFO_TABLE} values (?, ?)", [generation, published_at])
        conn.execute("commit")
    os.replace(tmp, path)


class _open:
    """A new DuckDB file for the block, checkpointed on success; removed if the block fails."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn = duckdb.connect(str(path), config={"threads": 1})

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        return self._conn

    def __exit__(self, kind: type | None, *_: object) -> None:
        try:
            if kind is None:
                self._conn.execute("checkpoint")
        finally:
            self._conn.close()
            if kind is not None:
                self._path.unlink(missing_ok=True)


def _relation(table: Table, files: list[str]) -> str:
    if files:
        return f"select * from read_parquet([{', '.join(_quoted(f) for f in files)}])"
    columns = ", ".join(f'cast(null as {kind}) as "{column}"' for column, kind in table.columns)
    return f"select {columns} limit 0"


def _quoted(path: str) -> str:
    """A code-made file path as an SQL string literal; a path with a control character is refused, not escaped."""
    if any(ord(ch) < 32 for ch in path):
        raise ReadSideError(f"refusing a file path with a control character in a view: {path!r}")
    return "'" + path.replace("'", "''") + "'"
