"""Maintaining a mirror table from its SQL model: incrementally or rebuilt, always equal.

A refresh recomputes the model only for the entities whose log changed since
the mirror's watermark, deletes their old mirror and quarantine rows, and
inserts the new ones, in one transaction. Rows the validator rejects go to
quarantine.mirror_rows with the reason; the log keeps them regardless.
A full rebuild runs the same code over every entity of the tenant, so both
paths give the same rows by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from ledger_pipeline.lib.sql_models import SqlModel
from ledger_pipeline.lib.warehouse import fetch_one, fetch_polars, rollback

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
    """Create the mirror table with the model's own column types."""
    conn.execute(f"create schema if not exists {model.schema}")
    conn.execute(f"create table if not exists {model.name} as select * from ({model.body}) where false")


def refresh_mirror(
    conn: duckdb.DuckDBPyConnection,
    model: SqlModel,
    tenant_id: str,
    *,
    source: str,
    validate: Validator,
    run_id: str,
    now: datetime,
    full: bool = False,
) -> RefreshStats:
    """Bring one tenant's rows of a mirror up to date with the log view `source` it derives from."""
    key = model.key
    conn.execute("begin")
    try:
        ensure_table(conn, model)
        mark = fetch_one(
            conn, "select log_seq from meta.model_watermarks where model = ? and tenant_id = ?", [model.name, tenant_id]
        )
        since = -1 if full or mark is None else mark[0]
        watermark = fetch_one(
            conn, f"select coalesce(max(seq), ?) from {source} where tenant_id = ?", [max(since, 0), tenant_id]
        )[0]
        conn.execute(
            f"create or replace temp table _lp_changed as select distinct entity_id from {source} "
            "where tenant_id = ? and seq > ? and seq <= ?",
            [tenant_id, since, watermark],
        )
        changed = fetch_one(conn, "select count(*) from _lp_changed")[0]
        scope = "" if full else " and {col} in (select entity_id from _lp_changed)"
        conn.execute(f"delete from {model.name} where tenant_id = ?" + scope.format(col=key), [tenant_id])
        conn.execute(
            "delete from quarantine.mirror_rows where model = ? and tenant_id = ?" + scope.format(col="entity_id"),
            [model.name, tenant_id],
        )
        candidates = fetch_polars(
            conn,
            f"select * from ({model.body}) m where m.tenant_id = ? "
            f"and m.{key} in (select entity_id from _lp_changed) and m.log_seq <= ?",
            [tenant_id, watermark],
        )
        failures = validate(candidates) if candidates.height else {}
        good = candidates.filter(~pl.Series(range(candidates.height)).is_in(list(failures)))
        if good.height:
            conn.register("_lp_good", good.to_arrow())
            conn.execute(f"insert into {model.name} by name select * from _lp_good")
            conn.unregister("_lp_good")
        if failures:
            _quarantine(conn, model, candidates, failures, key, tenant_id, run_id, now)
        conn.execute(
            "insert or replace into meta.model_watermarks values (?, ?, ?, ?)", [model.name, tenant_id, watermark, now]
        )
        conn.execute("drop table _lp_changed")
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise
    return RefreshStats(model.name, tenant_id, full, changed, good.height, len(failures), since, watermark)


def _quarantine(
    conn: duckdb.DuckDBPyConnection,
    model: SqlModel,
    candidates: pl.DataFrame,
    failures: dict[int, str],
    key: str,
    tenant_id: str,
    run_id: str,
    now: datetime,
) -> None:
    rows = candidates.with_row_index("_row").filter(pl.col("_row").is_in(list(failures)))
    bad = pl.DataFrame(
        {
            "model": [model.name] * rows.height,
            "tenant_id": [tenant_id] * rows.height,
            "entity_id": rows[key].cast(pl.String),
            "log_seq": rows["log_seq"].cast(pl.Int64),
            "payload_hash": rows["payload_hash"],
            "reason": [failures[i] for i in rows["_row"].to_list()],
            "quarantined_at": [now] * rows.height,
            "run_id": [run_id] * rows.height,
        }
    )
    conn.register("_lp_bad", bad.to_arrow())
    conn.execute("insert into quarantine.mirror_rows by name select * from _lp_bad")
    conn.unregister("_lp_bad")
