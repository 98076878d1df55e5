"""Maintaining a mirror (or history) table from its SQL model: incrementally or rebuilt, always equal.

A refresh recomputes the model only for the entities whose log changed since
the mirror's watermark, deletes their old mirror and quarantine rows, and
inserts the new ones, in one transaction per table and run. Rows the validator
rejects go to quarantine.mirror_rows with the reason; the log keeps them
regardless. A full rebuild runs the same code over every entity of the tenant,
so both paths give the same rows by construction. A history table is refreshed
by the same code: all versions of each changed entity are replaced, and nothing
is validated (history keeps what was logged).

The cost follows the change: the changed entities reach the model as one
constant list of (tenant, id) pairs on its partition columns, which DuckDB
pushes through the window down to the log scan, so only those entities'
versions are typed and windowed; with nothing changed no model query runs; a
first refresh or a rebuild scopes by tenant alone instead of listing every id.
What does not depend on the size of a change is paid once per table and run,
not per tenant: one query finds every tenant's changed ids (and the idle
tenants, which get no refresh at all), one model query recomputes the changed
entities of all tenants, and their candidate rows are validated together, up
to BATCH_ENTITIES rows a call (a pandera validation costs ~20 ms whatever its
rows; the contracts check row by row, so who shares a call changes nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from ledger_pipeline.lib.entity_scope import EntityScope
from ledger_pipeline.lib.sql_models import SqlModel
from ledger_pipeline.lib.warehouse import fetch_one, fetch_polars, insert_arrow, rollback

# Maps a candidate frame to {row index: reason} for the rows that fail validation.
Validator = Callable[[pl.DataFrame], dict[int, str]]


@dataclass(frozen=True)
class RefreshStats:
    model: str
    tenant_id: str
    full: bool
    entities_refreshed: int
    rows_written: int
    rows_quarantined: int
    since: int  # log seq the refresh started after (-1: from the beginning)
    watermark: int  # log seq the mirror now reflects


def ensure_table(conn: duckdb.DuckDBPyConnection, model: SqlModel) -> None:
    """Create the mirror table with the model's own column types.

    The catalog lookup comes first: binding the model body to create nothing costs ~15 ms per refresh.
    """
    found = (
        "select count(*) from duckdb_tables() "
        "where database_name = current_database() and schema_name = ? and table_name = ?"
    )
    if fetch_one(conn, found, [model.schema, model.table])[0]:
        return
    conn.execute(f"create schema if not exists {model.schema}")
    conn.execute(f"create table if not exists {model.name} as select * from ({model.body}) where false")


# Entities typed at a time, and candidate rows held for one validation: bounds the memory of a first sync or a
# rebuild of a large company, or of a run over many tenants (a polars frame per batch, not per tenant).
BATCH_ENTITIES = 25_000


@dataclass(frozen=True)
class _Changes:
    """What one tenant's refresh has to recompute: the entities whose log grew after `since`, up to `watermark`."""

    since: int
    watermark: int
    count: int
    ids: list[str] | None  # None: every entity of the tenant (first refresh or full rebuild)
    batches: tuple[EntityScope, ...] = ()  # every entity in id ranges, when the whole tenant is large

    @property
    def idle(self) -> bool:
        return self.since >= 0 and self.watermark == self.since


def refresh_tenants(
    conn: duckdb.DuckDBPyConnection,
    model: SqlModel,
    tenant_ids: list[str],
    *,
    source: str,
    validate: Validator,
    run_id: str,
    now: datetime,
    full: bool = False,
) -> list[RefreshStats]:
    """Bring the run's tenants' rows of a mirror up to date with the log view `source` it derives from.

    One transaction: its snapshot bounds every read, so each watermark covers exactly the rows recomputed.
    """
    conn.execute("begin")
    try:
        ensure_table(conn, model)
        changes = _changes(conn, model, source, tenant_ids, full)
        pending = _PendingRows(conn, model, validate, run_id, now)
        for cleared, upto, recomputed in _work(changes):
            _clear(conn, model, cleared)
            for scope in recomputed:
                pending.add(_candidates(conn, model, scope, upto))
        pending.flush()
        moved = {t: c.watermark for t, c in changes.items() if not c.idle}
        if moved:
            conn.execute(
                "insert or replace into meta.model_watermarks "
                "select ?, unnest(?::varchar[]), unnest(?::bigint[]), ?::timestamptz",
                [model.name, list(moved), list(moved.values()), now],
            )
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise
    return [
        RefreshStats(
            model.name, t, full, c.count, pending.written.get(t, 0), pending.quarantined.get(t, 0),
            c.since, c.watermark,
        )
        for t, c in changes.items()
    ]  # fmt: skip


def _changes(
    conn: duckdb.DuckDBPyConnection, model: SqlModel, source: str, tenant_ids: list[str], full: bool
) -> dict[str, _Changes]:
    """{tenant: what to recompute}, in the run's order. The tenants with a watermark are read together from the
    log's tail after the smallest one (seq zone maps); the others (all of them in a full rebuild) are read
    together from the beginning."""
    marks = {} if full else dict(
        conn.execute(
            "select tenant_id, log_seq from meta.model_watermarks "
            "where model = ? and list_contains(?::varchar[], tenant_id)",
            [model.name, tenant_ids],
        ).fetchall()
    )  # fmt: skip
    news = logged_after(conn, source, marks)
    whole = _whole_tenants(conn, source, [t for t in tenant_ids if t not in marks])
    changes = {}
    for tenant_id in tenant_ids:
        if tenant_id in whole:
            changes[tenant_id] = whole[tenant_id]
            continue
        since = marks[tenant_id]
        top, ids = news.get(tenant_id, (since, []))
        changes[tenant_id] = _Changes(since=since, watermark=top, count=len(ids), ids=ids)
    return changes


def logged_after(
    conn: duckdb.DuckDBPyConnection, source: str, since: dict[str, int], upto: dict[str, int] | None = None
) -> dict[str, tuple[int, list[str]]]:
    """{tenant: (last seq, entity ids)} for the tenants with rows in `source` after their `since` (and up to
    their `upto`), read in one query from the log's tail after the smallest `since` (seq zone maps)."""
    if not since:
        return {}
    tenant_ids = list(since)
    rows = conn.execute(
        f"select s.tenant_id, max(s.seq), list(distinct s.entity_id order by s.entity_id) from {source} s "
        "join (select unnest(?::varchar[]) as tenant_id, unnest(?::bigint[]) as since, unnest(?::bigint[]) as upto) w "
        "on s.tenant_id = w.tenant_id and s.seq > w.since and (w.upto is null or s.seq <= w.upto) "
        "where list_contains(?::varchar[], s.tenant_id) and s.seq > ? group by s.tenant_id",
        [tenant_ids, list(since.values()), [(upto or {}).get(t) for t in tenant_ids], tenant_ids, min(since.values())],
    ).fetchall()
    return {tenant_id: (top, ids) for tenant_id, top, ids in rows}


def _whole_tenants(conn: duckdb.DuckDBPyConnection, source: str, tenant_ids: list[str]) -> dict[str, _Changes]:
    """Every entity of each tenant: no id list, the tenant filter alone scopes the work (in id ranges for a
    tenant of more than BATCH_ENTITIES)."""
    if not tenant_ids:
        return {}
    found = {
        tenant_id: (top, count)
        for tenant_id, top, count in conn.execute(
            f"select tenant_id, max(seq), count(distinct entity_id) from {source} "
            "where list_contains(?::varchar[], tenant_id) group by tenant_id",
            [tenant_ids],
        ).fetchall()
    }
    whole = {}
    for tenant_id in tenant_ids:
        top, count = found.get(tenant_id, (0, 0))
        batches: tuple[EntityScope, ...] = ()
        if count > BATCH_ENTITIES:
            (every,) = fetch_one(
                conn,
                f"select list(distinct entity_id order by entity_id) from {source} where tenant_id = ?",
                [tenant_id],
            )
            chunks = (every[i : i + BATCH_ENTITIES] for i in range(0, len(every), BATCH_ENTITIES))
            batches = tuple(EntityScope.tenant(tenant_id, chunk[0], chunk[-1]) for chunk in chunks)
        whole[tenant_id] = _Changes(since=-1, watermark=top, count=count, ids=None, batches=batches)
    return whole


def _work(changes: dict[str, _Changes]) -> Iterator[tuple[EntityScope, int, tuple[EntityScope, ...]]]:
    """(the entities to delete, the log seq to recompute them as of, the scopes that recompute them) for the
    tenants that are not idle, BATCH_ENTITIES entities a statement: the listed entities of every tenant
    refreshed incrementally; the whole tenants, small ones together, a large one in id ranges."""
    listed = [[t, i] for t, c in changes.items() if c.ids for i in c.ids]
    for start in range(0, len(listed), BATCH_ENTITIES):
        scope = EntityScope.listed(listed[start : start + BATCH_ENTITIES])
        yield scope, max(changes[t].watermark for t in scope.tenant_ids), (scope,)
    whole = {t: c.count for t, c in changes.items() if c.ids is None}
    for scope in EntityScope.whole_tenants(whole, BATCH_ENTITIES):
        first = changes[scope.tenant_ids[0]]  # a tenant cut into batches is always alone in its scope
        yield scope, max(changes[t].watermark for t in scope.tenant_ids), first.batches or (scope,)


def _clear(conn: duckdb.DuckDBPyConnection, model: SqlModel, scope: EntityScope) -> None:
    """Delete the scope's mirror and quarantine rows, to be written again from the model."""
    on_mirror, params = scope.condition("tenant_id", model.key)
    conn.execute(f"delete from {model.name} where {on_mirror}", params)
    on_quarantine, params = scope.condition("tenant_id", "entity_id")
    conn.execute(f"delete from quarantine.mirror_rows where model = ? and {on_quarantine}", [model.name, *params])


def _candidates(conn: duckdb.DuckDBPyConnection, model: SqlModel, scope: EntityScope, upto: int) -> pl.DataFrame:
    """The model's rows for the scope's entities, as of log seq `upto`.

    The condition sits on the model's partition columns, so DuckDB applies it at the scan of the log, before
    the JSON typing and the window (EXPLAIN ANALYZE shows it under the window, next to the scan).
    """
    on_model, params = scope.condition("m.tenant_id", f"m.{model.key}")
    sql = f"select * from ({model.body}) m where {on_model} and m.log_seq <= ?"
    return fetch_polars(conn, sql, [*params, upto])


class _PendingRows:
    """Candidate rows of any of the run's tenants, validated and written together when BATCH_ENTITIES are held."""

    def __init__(
        self, conn: duckdb.DuckDBPyConnection, model: SqlModel, validate: Validator, run_id: str, now: datetime
    ) -> None:
        self.conn, self.model, self.validate, self.run_id, self.now = conn, model, validate, run_id, now
        self.frames: list[pl.DataFrame] = []
        self.held = 0
        self.written: dict[str, int] = {}  # tenant -> rows inserted into the mirror
        self.quarantined: dict[str, int] = {}  # tenant -> rows sent to quarantine

    def add(self, frame: pl.DataFrame) -> None:
        if self.held and self.held + frame.height > BATCH_ENTITIES:
            self.flush()
        if frame.height:
            self.frames.append(frame)
            self.held += frame.height

    def flush(self) -> None:
        if not self.frames:
            return
        candidates = pl.concat(self.frames, how="vertical")
        self.frames, self.held = [], 0
        failures = self.validate(candidates)
        good = candidates.filter(~pl.Series(range(candidates.height)).is_in(list(failures)))
        if good.height:
            insert_arrow(self.conn, self.model.name, good.to_arrow())
        _count(self.written, good)
        if failures:
            bad = _quarantine_rows(self.model, candidates, failures, self.run_id, self.now)
            insert_arrow(self.conn, "quarantine.mirror_rows", bad.to_arrow())
            _count(self.quarantined, bad)


def _count(counts: dict[str, int], rows: pl.DataFrame) -> None:
    """Add each tenant's number of rows in `rows` to `counts`."""
    for tenant_id, n in rows.group_by("tenant_id").len().iter_rows():
        counts[tenant_id] = counts.get(tenant_id, 0) + n


def _quarantine_rows(
    model: SqlModel, candidates: pl.DataFrame, failures: dict[int, str], run_id: str, now: datetime
) -> pl.DataFrame:
    rows = candidates.with_row_index("_row").filter(pl.col("_row").is_in(list(failures)))
    return pl.DataFrame(
        {
            "model": [model.name] * rows.height,
            "tenant_id": rows["tenant_id"].cast(pl.String),
            "entity_id": rows[model.key].cast(pl.String),
            "log_seq": rows["log_seq"].cast(pl.Int64),
            "payload_hash": rows["payload_hash"],
            "reason": [failures[i] for i in rows["_row"].to_list()],
            "quarantined_at": [now] * rows.height,
            "run_id": [run_id] * rows.height,
        }
    )
