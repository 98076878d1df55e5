"""Point-in-time and per-object questions about the log, behind `ledger-pipeline as-of` and `history`.

Analysts and auditors ask two things the mirrors cannot answer: what did the
books say at an instant (a month-end close), and how did one object get to
its current state. Both read only; every value is bound, and the only names
put in SQL text come from the rails' entity tables. The CLI formats what these return.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ledger_pipeline.lib.ids import InvalidInput
from ledger_pipeline.lib.rails import Entity, Rail
from ledger_pipeline.lib.warehouse import WarehouseError, fetch_polars

OUTPUT_SUFFIXES = (".parquet", ".csv")
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?")
_TABLE = re.compile(r"[a-z][a-z_]*")


class AuditError(WarehouseError):
    """The ledger file lacks what an audit query needs (it predates the history tables)."""


@dataclass(frozen=True)
class FieldChange:
    path: str  # the rail's field path as the log's `changes` names it, e.g. "Line[0].Amount"
    old: Any
    new: Any


@dataclass(frozen=True)
class Version:
    """One logged version of one object: a row of raw.entity_log, its changes unpacked."""

    seq: int
    op: str
    changes: tuple[FieldChange, ...]
    source: str
    source_version: str | None
    source_updated_at: datetime | None
    observed_at: datetime
    run_id: str


def _aliases(e: Entity) -> set[str]:
    """Spellings accepted for an entity: table name, the rail's name, singular, compact, all case-insensitive."""
    singular = e.table.removesuffix("s")
    return {e.table, e.name.lower(), singular, singular.replace("_", ""), e.table.replace("_", "")}


def entity_named(rail: Rail, name: str) -> Entity:
    """The entity of `rail` an analyst means by "bills", "Bill", "bill", "bill_payments" or "BillPayment"."""
    by_alias = {alias: e for e in rail.entities for alias in _aliases(e)}
    found = by_alias.get(name.strip().lower())
    if found is None:
        known = ", ".join(e.table for e in rail.entities)
        example = ", ".join(e.name for e in rail.entities[-2:])
        raise InvalidInput(f"unknown entity {name!r} on {rail.title}: use one of {known} (or its own name, e.g. {example})")
    return found


def instant(text: str) -> datetime:
    """An ISO 8601 timestamp with a timezone, as UTC; a naive one is refused, never guessed."""
    match = _INSTANT.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"invalid timestamp {text!r}: expected ISO 8601 with a timezone, e.g. 2026-03-31T23:59:59Z")
    if match.group(1) is None:
        raise InvalidInput(f"timestamp {text!r} has no timezone: add Z (UTC) or an offset such as +02:00")
    offset = match.group(1)
    if offset != "Z" and (int(offset[1:3]) > 23 or int(offset[4:6]) > 59):
        raise InvalidInput(
            f"invalid timestamp {text!r}: UTC offset {offset} is out of range (hours 00-23, minutes 00-59)"
        )
    try:
        return datetime.fromisoformat(text.strip()).astimezone(UTC)
    except ValueError as exc:
        raise InvalidInput(f"invalid timestamp {text!r}: {exc}") from None


def logged_tenants(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Tenants with at least one logged version, to name them when an analyst asks for another."""
    return [row[0] for row in conn.execute("select distinct tenant_id from raw.entity_log order by 1").fetchall()]


def as_of(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, rail: Rail, entity: Entity, at: datetime
) -> pl.DataFrame:
    """The mirror of one entity for one tenant as the log knew it at `at`, ordered by the rail's id (numerically
    where ids are numbers)."""
    if not (_TABLE.fullmatch(entity.table) and _TABLE.fullmatch(rail.name)):
        raise ValueError(f"entity table {rail.name}_{entity.table!r} is not an identifier")
    macro, key = f"history.{rail.name}_{entity.table}_as_of", f"{rail.name}_id"
    try:
        return fetch_polars(
            conn,
            f"select * from {macro}(?, ?) order by try_cast({key} as hugeint) nulls last, {key}",
            [tenant_id, at],
        )
    except duckdb.CatalogException as exc:
        raise AuditError(f"{macro} is missing: this ledger predates the history tables; run a sync ({exc})") from None


def object_history(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, rail: Rail, entity: Entity, object_id: str
) -> list[Version]:
    """Every logged version of one object, oldest first (empty when it was never logged)."""
    rows = conn.execute(
        "select seq, op, changes, source, source_version, source_updated_at, observed_at, run_id "
        "from raw.entity_log where tenant_id = ? and rail = ? and entity_type = ? and entity_id = ? order by seq",
        [tenant_id, rail.name, entity.name, object_id],
    ).fetchall()
    return [Version(seq, op, _changes(changes), *rest) for seq, op, changes, *rest in rows]


def _changes(text: str | None) -> tuple[FieldChange, ...]:
    """The log's `{"Field.Path": {"old", "new"}}` as field changes, in path order."""
    parsed = json.loads(text) if text else {}
    return tuple(FieldChange(path, d.get("old"), d.get("new")) for path, d in sorted(parsed.items()))


def write_frame(frame: pl.DataFrame, path: Path) -> None:
    """Write a result as Parquet (types kept) or CSV (list columns as JSON arrays, since CSV has no lists)."""
    if path.suffix.lower() == ".parquet":
        frame.write_parquet(path)
        return
    lists = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.List)]
    flat = frame.with_columns(
        pl.col(name).map_elements(lambda v: json.dumps(list(v), separators=(",", ":")), return_dtype=pl.String) for name in lists
    )
    flat.write_csv(path)
