"""The DuckDB file: opening it safely and laying down the tables every other module relies on.

All storage access goes through `connect`, so moving the log to another engine
(DuckLake, MotherDuck, Postgres) is a change here and in the resource that
calls it, not across the code base.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from ledger_pipeline.lib import duckdb_host, settings
from ledger_pipeline.lib.writer_lock import LedgerConnection, WriterLock, WriterLockTimeout

SCHEMA_VERSION = "7"  # 2: unique index on raw.entity_log(seq); 3: meta.check_marks; 4: bindings, sync approvals;
# 5: sync_cursors.position (a rail's opaque change-feed position); 6: sync_cursors.resume (an unfinished listing's);
# 7: meta.links_scope (the objects a reconciliation re-matches)
DUCKDB_MAGIC = b"DUCK"
# How long a writer waits for another writer, or for an operator's read (verify, as-of, export-tenant), to let go of
# the file. Analysts never hold it: they read the published read side (lib/read_side/).
LOCK_WAIT_SECONDS = 60.0

DDL = """
create schema if not exists raw;
create schema if not exists mirror;
create schema if not exists quarantine;
create schema if not exists meta;

create table if not exists meta.ledger_info (key varchar primary key, value varchar not null);

create table if not exists raw.entity_log (
    seq bigint not null,
    tenant_id varchar not null,
    rail varchar not null,
    entity_type varchar not null,
    entity_id varchar not null,
    op varchar not null,
    source varchar not null,
    source_version varchar,
    source_updated_at timestamptz,
    observed_at timestamptz not null,
    payload json not null,
    changes json,
    payload_hash varchar not null,
    prev_hash varchar,
    row_hash varchar not null,
    run_id varchar not null
);
-- seq is the log's order and each chain's link: two writers that both took max(seq) + 1 cannot both commit.
create unique index if not exists entity_log_seq on raw.entity_log (seq);

create table if not exists meta.sync_cursors (
    tenant_id varchar not null,
    rail varchar not null,
    entity_type varchar not null,
    updated_since timestamptz,
    cdc_since timestamptz,
    last_sweep_at timestamptz,
    last_synced_at timestamptz not null,
    run_id varchar not null,
    rail_now timestamptz,
    position varchar,
    resume varchar,
    primary key (tenant_id, rail, entity_type)
);
-- Ledgers made before schema 5 have no position, before 6 no resume: their cursors keep every timestamp and gain
-- empty ones.
alter table meta.sync_cursors add column if not exists position varchar;
alter table meta.sync_cursors add column if not exists resume varchar;

create table if not exists meta.model_watermarks (
    model varchar not null,
    tenant_id varchar not null,
    log_seq bigint not null,
    refreshed_at timestamptz not null,
    primary key (model, tenant_id)
);

-- The objects recon.links re-matches for a tenant it matches in part, only inside that refresh's transaction
-- (lib/rematch.py); empty otherwise.
create table if not exists meta.links_scope (
    tenant_id varchar not null,
    rail varchar not null,
    entity_type varchar not null,
    entity_id varchar not null,
    reach tinyint not null  -- counterpart-steps from a change: 0 changed, 1 re-matched, 2 and 3 read
);

-- How far each tenant's log has been compared with the rail by a check that compares what changed.
create table if not exists meta.check_marks (
    check_name varchar not null,
    tenant_id varchar not null,
    log_seq bigint not null,
    whole_book_at timestamptz not null,
    checked_at timestamptz not null,
    primary key (check_name, tenant_id)
);

-- The company each tenant's log holds per rail (lib/bindings.py): one company, one tenant, for ever.
create table if not exists meta.tenant_bindings (
    tenant_id varchar not null,
    rail varchar not null,
    account_id varchar not null,
    bound_at timestamptz not null,
    run_id varchar not null,
    primary key (tenant_id, rail)
);
create unique index if not exists tenant_bindings_account on meta.tenant_bindings (rail, account_id);

-- Operators' approvals of a sync the circuit breaker stopped (lib/breaker.py); each one lets one sync through.
create table if not exists meta.sync_approvals (
    approval_id bigint not null primary key,
    tenant_id varchar not null,
    rail varchar not null,
    entity_type varchar,
    approved_by varchar not null,
    reason varchar not null,
    approved_at timestamptz not null,
    used_by_run varchar,
    used_at timestamptz,
    used_for varchar
);

create table if not exists quarantine.mirror_rows (
    model varchar not null,
    tenant_id varchar not null,
    entity_id varchar not null,
    log_seq bigint not null,
    payload_hash varchar not null,
    reason varchar not null,
    quarantined_at timestamptz not null,
    run_id varchar not null
);
"""


class WarehouseError(RuntimeError):
    """The DuckDB file cannot be used: missing, foreign, corrupt or locked."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (DuckDB puts hints and context on lines of their own)."""
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def unreadable_as_error(db_path: Path | str) -> Iterator[None]:
    """A DuckDB error raised in the block becomes one WarehouseError naming the file.

    DuckDB notices a damaged block only when a query reads it, so the commands
    that read the ledger run their queries in this block, not just the open.
    """
    try:
        yield
    except (duckdb.Error, OSError) as exc:
        # DuckDB's errors also surface through an Arrow stream of its results, where pyarrow raises a bare
        # OSError (no errno, no file name); an OSError naming a file is the caller's own, let through.
        if isinstance(exc, OSError) and (exc.errno is not None or exc.filename is not None):
            raise
        damaged = isinstance(exc, duckdb.IOException | duckdb.InternalException | duckdb.SerializationException) or any(
            word in str(exc).lower() for word in ("corrupt", "checksum")
        )
        hint = "; the file looks damaged: restore it from a backup" if damaged else ""
        raise WarehouseError(f"cannot read the ledger {db_path}: {one_line(exc)}{hint}") from exc


@contextlib.contextmanager
def reading(path: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the ledger for the block, any DuckDB error in it a WarehouseError naming the file."""
    conn = connect(path, read_only=True)
    try:
        with unreadable_as_error(path):
            yield conn
    finally:
        conn.close()


def connect(path: str | Path, *, read_only: bool = False, wait: float = LOCK_WAIT_SECONDS) -> duckdb.DuckDBPyConnection:
    """Open the ledger database, creating it (and its tables) when absent.

    Refuses a file that is not DuckDB or that holds someone else's tables.
    A writer first takes the file's writer lock (`writer_lock`), so writers
    take turns whether they are threads of one process or processes, and
    gets a `LedgerConnection` that releases it on close; it waits up to
    `wait` seconds for the lock and for DuckDB's own file lock, then fails
    naming the writer in its way. Readers take no lock.
    """
    db_path = Path(path)
    try:
        if db_path.exists():
            _check_is_duckdb(db_path)
        elif blocker := next((p for p in db_path.parents if p.exists() and not p.is_dir()), None):
            raise WarehouseError(f"cannot use {db_path} as the ledger: {blocker} is a file, not a folder")
        elif read_only:
            raise WarehouseError(f"no ledger database at {db_path}: run a sync first")
        else:
            db_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent that is a file, a folder that cannot be made or read: name the path
        raise WarehouseError(f"cannot use {db_path} as the ledger: {_os_reason(exc)}") from None

    deadline = time.monotonic() + wait
    try:
        lock = None if read_only else WriterLock.acquire(db_path, deadline)
    except WriterLockTimeout as exc:
        raise WarehouseError(str(exc)) from None
    except OSError as exc:
        raise WarehouseError(f"cannot take the writer lock beside {db_path}: {exc}") from exc
    try:
        conn, close = _open(db_path, read_only, deadline)
        try:
            with unreadable_as_error(db_path):
                conn.execute("set TimeZone = 'UTC'")
                if read_only:
                    _check_is_ledger(conn, db_path)
                else:
                    ensure_schema(conn, db_path, refuse_export=True)
        except BaseException:
            close()
            raise
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return conn if lock is None else LedgerConnection(conn, lock, close)  # type: ignore[return-value]


def _open(db_path: Path, read_only: bool, deadline: float) -> tuple[duckdb.DuckDBPyConnection, Callable[[], None]]:
    """The connection and what closes it, retried while another process (a reader, or a writer outside this
    module) holds the file. Readers get an instance of their own (read-only); writers attach the file to this
    process's host instance (`duckdb_host`), which spares building a DuckDB instance per open."""
    while True:
        try:
            if read_only:
                if duckdb_host.is_attached(db_path):  # as DuckDB itself refused it when writers had an instance each
                    raise WarehouseError(f"this process has {db_path} open for writing; read through that connection")
                conn = duckdb.connect(str(db_path), read_only=True, config={"memory_limit": settings.duckdb_memory_limit()})
                return conn, conn.close
            return duckdb_host.attach(db_path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise WarehouseError(f"cannot open {db_path}: {exc}") from exc
            time.sleep(0.2)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open {db_path} as a DuckDB database: {one_line(exc)}") from exc


def ensure_schema(conn: duckdb.DuckDBPyConnection, db_path: Path | str = "<memory>", *,
                  refuse_export: bool = False) -> None:  # fmt: skip
    """Create the ledger tables if missing; refuse a database that already holds foreign tables, and with
    `refuse_export` a tenant's export (`export-tenant`): one tenant's read-only copy, never a sync target,
    whatever its file mode says to root. Two queries when the file is up to date (every writer's open)."""
    ledger_info = _ledger_info(conn, db_path, allow_empty=True)
    if refuse_export and (tenant := ledger_info.get("export_tenant_id")) is not None:
        raise WarehouseError(
            f"{db_path} is an export of tenant {tenant}, not a ledger: it is never written to; "
            "point LEDGER_DUCKDB_PATH at the ledger"
        )
    if ledger_info.get("schema_version") == SCHEMA_VERSION:
        return
    conn.execute("begin")
    try:
        conn.execute(DDL)
    except duckdb.ConstraintException as exc:
        rollback(conn)
        raise WarehouseError(
            f"{db_path}: raw.entity_log has a seq used more than once, so it cannot be upgraded; "
            f"run `ledger-pipeline verify` to find it ({exc})"
        ) from exc
    set_info(conn, "schema_version", SCHEMA_VERSION)
    conn.execute("commit")


def info(conn: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """A value from meta.ledger_info, or None (also when the table does not exist yet)."""
    if not _has_ledger_info(conn):
        return None
    row = fetch_one(conn, "select value from meta.ledger_info where key = ?", [key])
    return row[0] if row else None


def set_info(conn: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    conn.execute("insert or replace into meta.ledger_info values (?, ?)", [key, value])


def create_entity_views(conn: duckdb.DuckDBPyConnection, views: Iterable[tuple[str, str, str]]) -> None:
    """One read view per (view name, rail, entity type) over the shared log, e.g. raw.qbo_bills.

    View names come from the rails' entity tables in code, never from input;
    the filter values are bound as constants in the view text by DuckDB itself.
    """
    for view, rail, entity_type in views:
        if not view.replace("_", "").isalnum():
            raise ValueError(f"bad view name {view!r}")
        conn.execute(
            f"create or replace view raw.{view} as select * from raw.entity_log "
            f"where rail = {_sql_literal(rail)} and entity_type = {_sql_literal(entity_type)}"
        )


def _sql_literal(value: str) -> str:
    """Quote a code-defined constant (rail or entity name) for a view definition."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", value):
        raise ValueError(f"refusing to quote {value!r}: only code-defined identifiers belong in a view")
    return f"'{value}'"


def _check_is_duckdb(db_path: Path) -> None:
    if db_path.is_dir():
        raise WarehouseError(f"{db_path} is a directory, not a DuckDB database file")
    with db_path.open("rb") as fh:
        header = fh.read(16)
    if db_path.stat().st_size and DUCKDB_MAGIC not in header:
        raise WarehouseError(f"{db_path} is not a DuckDB database (unrecognised file header)")


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileExistsError) and exc.filename:  # mkdir of a folder whose name a file already has
        return f"{exc.filename} exists and is not a folder"
    return f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")


def _check_is_ledger(conn: duckdb.DuckDBPyConnection, db_path: Path | str) -> None:
    _ledger_info(conn, db_path, allow_empty=False)


def _ledger_info(conn: duckdb.DuckDBPyConnection, db_path: Path | str, *, allow_empty: bool) -> dict[str, str]:
    """meta.ledger_info as a dict (empty for a database with nothing in it yet, when `allow_empty`); a database
    holding other tables or views than a ledger's is refused."""
    if _has_ledger_info(conn):
        return dict(conn.execute("select key, value from meta.ledger_info").fetchall())
    names = {
        f"{schema}.{name}"
        for schema, name in conn.execute(
            "select table_schema, table_name from information_schema.tables where table_catalog = current_database()"
        ).fetchall()
    }
    if not names and allow_empty:
        return {}
    sample = ", ".join(sorted(names)[:5]) or "no tables"
    raise WarehouseError(
        f"{db_path} is a DuckDB database but not a ledger_pipeline one (found {sample}); "
        "point LEDGER_DUCKDB_PATH at a new or existing ledger file"
    )


def _has_ledger_info(conn: duckdb.DuckDBPyConnection) -> bool:
    return fetch_one(  # duckdb_tables(), not information_schema: half the time, paid on every open
        conn,
        "select count(*) from duckdb_tables() where schema_name = 'meta' and table_name = 'ledger_info' "
        "and database_name = current_database()",
    )[0] > 0


def rollback(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back after a failure without hiding it: a commit DuckDB refused has already rolled back, and
    "no transaction is active" must not replace the refusal's own reason as the error the caller sees."""
    with contextlib.suppress(duckdb.TransactionException):
        conn.execute("rollback")


@contextlib.contextmanager
def registered(conn: duckdb.DuckDBPyConnection, name: str, data: object) -> Iterator[None]:
    """`data` (Arrow, polars) readable as `name` in SQL for the block. If the block fails, its error is the one
    raised: in an aborted transaction unregistering fails too ("transaction is aborted"), and is let go."""
    conn.register(name, data)
    try:
        yield
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            conn.unregister(name)
        raise
    conn.unregister(name)


def insert_arrow(conn: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    """Append `data` to `table` inside the caller's transaction, handed to DuckDB as a stream of batches.

    DuckDB keeps a registered Arrow *table* referenced until the transaction ends, so a long transaction
    held every batch it appended (316 MB for a 267k-row first sync of bills); a stream lets each batch go
    once copied.
    """
    stream = pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
    with registered(conn, "_lp_rows", stream):
        conn.execute(f"insert into {table} by name select * from _lp_rows")


def fetch_one(conn: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> tuple | None:
    """First row of a query, draining the result (DuckDB 2 refuses new work while a result is open)."""
    rows = conn.execute(sql, params).fetchall() if params is not None else conn.execute(sql).fetchall()
    return rows[0] if rows else None


def fetch_polars(conn: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> pl.DataFrame:
    """A query's full result as a polars frame, through Arrow (zero-copy where types allow)."""
    return conn.sql(sql, params=params).pl()
