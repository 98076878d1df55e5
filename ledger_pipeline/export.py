"""`ledger-pipeline export-tenant`: one tenant's slice of the ledger as its own read-only DuckDB file.

An analyst handed the file can query the tenant's log, mirrors, history and
as-of macros, and marts, with no other tenant's row in reach: every table is
copied through a bound `tenant_id = ?` filter from a read-only connection to
the ledger, the views and macros are recreated over those rows from the same
SQL models, and the result is verified, checked to hold one tenant only,
renamed into place and made read-only (mode 0444).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ledger_pipeline.lib import ids, ledger_views, output_files, warehouse
from ledger_pipeline.lib.verify import VerifyReport, verify
from ledger_pipeline.lib.warehouse import WarehouseError, fetch_one

EXPORT_SUFFIXES = (".duckdb",)
READ_ONLY_MODE = 0o444
_CATALOG = "tenant_export"  # the new file, attached to the read-only ledger connection
_NOT_COPIED = {("meta", "ledger_info")}  # ledger-wide settings: the export writes its own
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


class ExportError(WarehouseError):
    """The export could not be written; nothing was left at the output path."""


class NothingToExport(ExportError):
    """The tenant id is valid but the ledger holds no log row of it."""


@dataclass(frozen=True)
class ExportReport:
    tenant_id: str
    path: Path
    rows: dict[str, int]  # table -> rows copied (equal to the tenant's rows in the ledger)
    skipped: tuple[str, ...]  # ledger tables without a tenant_id column, hence not exported
    verify: VerifyReport
    replaced: bool  # --force replaced an existing file


Copied = tuple[dict[str, int], tuple[str, ...]]  # rows per table copied, tables skipped


def export_path(value: object, *, ledger: Path, force: bool) -> Path:
    """The output file: a valid new .duckdb path (or, with force, an existing regular file), never the ledger.

    The same rules as every `--output` (output_files), with this export's source ledger protected too.
    """
    return output_files.checked_output(value, EXPORT_SUFFIXES, force=force, ledger=Path(ledger))


def export_tenant(ledger: Path, tenant_id: str, output: Path | str, *, force: bool = False) -> ExportReport:
    """Write tenant_id's rows of every tenant table, with views and macros, to a new read-only file at output."""
    tenant_id = ids.tenant_id(tenant_id)
    output = export_path(str(output), ledger=ledger, force=force)
    tmp = output.parent / f".ledger-export-{secrets.token_hex(8)}.tmp"
    try:
        source = _open_ledger(ledger)
        try:
            if not fetch_one(source, "select count(*) from raw.entity_log where tenant_id = ?", [tenant_id])[0]:
                raise NothingToExport(f"tenant {tenant_id!r} has nothing in the log of {ledger}; nothing exported")
            warehouse.connect(tmp).close()  # lays down the ledger tables with their constraints
            rows, skipped = _copy_tenant(source, tmp, tenant_id)
        finally:
            source.close()
        _add_views(tmp, tenant_id)
        report = _check(tmp, tenant_id, rows)
        replaced = _publish(tmp, output, force=force, ledger=ledger)
    except duckdb.Error as exc:
        _remove(tmp)
        raise ExportError(f"export of tenant {tenant_id} from {ledger} failed: {warehouse.one_line(exc)}") from None
    except OSError as exc:
        _remove(tmp)
        raise ExportError(f"cannot write {output}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(tmp)
        raise
    return ExportReport(tenant_id, output, rows, skipped, report, replaced)


def _copy_tenant(source: duckdb.DuckDBPyConnection, tmp: Path, tenant_id: str) -> Copied:
    """Copy the tenant's rows of every ledger table with a tenant_id column, in one snapshot of the ledger."""
    source.execute(f"attach ? as {_CATALOG} (read_write)", [str(tmp)])
    try:
        source.execute("begin")
        try:
            copied = _copy_tables(source, tenant_id)
            source.execute("commit")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                source.execute("rollback")
            raise
    finally:
        source.execute(f"detach {_CATALOG}")
    return copied


def _copy_tables(source: duckdb.DuckDBPyConnection, tenant_id: str) -> Copied:
    rows: dict[str, int] = {}
    skipped: list[str] = []
    existing = set(_tables(source, _CATALOG))
    for schema, table in _tables(source, None):
        name = f"{schema}.{table}"
        if (schema, table) in _NOT_COPIED:
            continue
        if not _has_tenant_column(source, schema, table):
            skipped.append(name)
            continue
        target = f"{_CATALOG}.{schema}.{table}"
        select = f"select * from {name} where tenant_id = ?"
        if (schema, table) in existing:
            source.execute(f"insert into {target} by name {select}", [tenant_id])
        else:
            source.execute(f"create schema if not exists {_CATALOG}.{schema}")
            source.execute(f"create table {target} as {select}", [tenant_id])
        copied = fetch_one(source, f"select count(*) from {target}")[0]
        expected = fetch_one(source, f"select count(*) from ({select})", [tenant_id])[0]
        if copied != expected:
            raise ExportError(f"{name}: copied {copied} rows of tenant {tenant_id}, the ledger holds {expected}")
        rows[name] = copied
    return rows, tuple(skipped)


def _tables(conn: duckdb.DuckDBPyConnection, catalog: str | None) -> list[tuple[str, str]]:
    """(schema, table) of every base table of a catalog (None: the ledger); odd names are refused, not quoted."""
    found = conn.execute(
        "select schema_name, table_name from duckdb_tables() "
        "where database_name = coalesce(?, current_database()) order by 1, 2",
        [catalog],
    ).fetchall()
    for schema, table in found:
        if not (_IDENTIFIER.fullmatch(schema) and _IDENTIFIER.fullmatch(table)):
            raise ExportError(f"the ledger holds a table with an unexpected name {schema!r}.{table!r}; not exporting")
    return found


def _has_tenant_column(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        fetch_one(
            conn,
            "select count(*) from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ? and column_name = 'tenant_id'",
            [schema, table],
        )[0]
    )


def _add_views(tmp: Path, tenant_id: str) -> None:
    """The per-entity log views, stg and history views and as-of macros, built as a ledger writer builds them."""
    conn = warehouse.connect(tmp)
    try:
        ledger_views.ensure(conn)
        warehouse.set_info(conn, "export_tenant_id", tenant_id)
        warehouse.set_info(conn, "export_created_at", datetime.now(UTC).isoformat())
        conn.execute("checkpoint")
    finally:
        conn.close()


def _check(tmp: Path, tenant_id: str, rows: dict[str, int]) -> VerifyReport:
    """Reopen the finished file read-only: chains intact, copied counts intact, no other tenant in any relation."""
    conn = warehouse.connect(tmp, read_only=True)
    try:
        report = verify(conn)
        if not report.ok:
            raise ExportError(f"the export of tenant {tenant_id} does not verify: {report.problems[0]}")
        relations = conn.execute(
            "select distinct schema_name, table_name from duckdb_columns() "
            "where database_name = current_database() and column_name = 'tenant_id' order by 1, 2"
        ).fetchall()
        for schema, table in relations:
            if not (_IDENTIFIER.fullmatch(schema) and _IDENTIFIER.fullmatch(table)):
                raise ExportError(f"unexpected relation {schema!r}.{table!r} in the export")
            name = f"{schema}.{table}"
            other = fetch_one(conn, f"select count(*) from {name} where tenant_id is distinct from ?", [tenant_id])[0]
            if other:
                raise ExportError(f"{name} in the export holds {other} rows of another tenant; export discarded")
            if name in rows and fetch_one(conn, f"select count(*) from {name}")[0] != rows[name]:
                raise ExportError(f"{name} in the export lost rows after copying; export discarded")
        return report
    finally:
        conn.close()


def _open_ledger(ledger: Path) -> duckdb.DuckDBPyConnection:
    """The source, read-only; a ledger that cannot be opened is named as the cause (not the output)."""
    try:
        return warehouse.connect(ledger, read_only=True)
    except (OSError, duckdb.Error) as exc:
        cause = getattr(exc, "strerror", None) or exc
        raise ExportError(f"cannot read the ledger {ledger}: {cause}") from None


def _publish(tmp: Path, output: Path, *, force: bool, ledger: Path) -> bool:
    """Make the finished file read-only and durable, then move it into place (output_files.publish re-checks
    the path, which may have changed during the export); returns whether a file was replaced."""
    if Path(f"{tmp}.wal").exists():
        raise ExportError(f"the export left a write-ahead log behind ({tmp}.wal); export discarded")
    os.chmod(tmp, READ_ONLY_MODE)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return output_files.publish(tmp, output, force=force, ledger=Path(ledger))


def _remove(tmp: Path) -> None:
    for leftover in (tmp, Path(f"{tmp}.wal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def file_mode(path: Path) -> int:
    """Permission bits of a file, e.g. 0o444 for a finished export."""
    return stat.S_IMODE(os.stat(path).st_mode)
