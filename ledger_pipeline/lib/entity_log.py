"""Appending versions to the immutable log: only new versions, hash-chained, in bulk.

The writer never updates or deletes. It runs inside the caller's transaction,
so the rows it appends and the cursor the caller saves commit together or not
at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from ledger_pipeline.lib import chain
from ledger_pipeline.lib.canonical import canonical_json, diff, sha256_hex
from ledger_pipeline.lib.warehouse import fetch_one, insert_arrow, registered

LOG_COLUMNS = (
    "seq", "tenant_id", "rail", "entity_type", "entity_id", "op", "source", "source_version",
    "source_updated_at", "observed_at", "payload", "changes", "payload_hash", "prev_hash", "row_hash", "run_id",
)  # fmt: skip

ARROW_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        *[(name, pa.string()) for name in LOG_COLUMNS[1:8]],
        ("source_updated_at", pa.timestamp("us", tz="UTC")),
        ("observed_at", pa.timestamp("us", tz="UTC")),
        *[(name, pa.string()) for name in LOG_COLUMNS[10:]],
    ]
)


@dataclass(frozen=True)
class Observation:
    """One object as a rail showed it (or as the sweep found it gone)."""

    entity_id: str
    payload: dict[str, Any]
    source: str  # "query" | "cdc" | "sweep"
    deleted: bool = False
    source_version: str | None = None
    source_updated_at: datetime | None = None


@dataclass
class AppendStats:
    seen: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    head_seq: int | None = None
    head_hash: str | None = None

    @property
    def appended(self) -> int:
        return self.created + self.updated + self.deleted


@dataclass
class _Head:
    payload_hash: str
    op: str
    payload: str


@dataclass
class LogWriter:
    """Appends to one chain (tenant, rail, entity type) inside an open transaction."""

    conn: duckdb.DuckDBPyConnection
    tenant_id: str
    rail: str
    entity_type: str
    run_id: str
    observed_at: datetime
    stats: AppendStats = field(default_factory=AppendStats)

    def __post_init__(self) -> None:
        head = fetch_one(
            self.conn,
            "select seq, row_hash from raw.entity_log where tenant_id = ? and rail = ? and entity_type = ? "
            "order by seq desc limit 1",
            [self.tenant_id, self.rail, self.entity_type],
        )
        self.stats.head_seq, self.stats.head_hash = head if head else (None, None)

    def append(self, observations: Sequence[Observation]) -> int:
        """Log the observations that differ from their entity's last logged version; return how many."""
        if not observations:
            return 0
        heads = self._heads({o.entity_id for o in observations})
        next_seq = fetch_one(self.conn, "select coalesce(max(seq), 0) + 1 from raw.entity_log")[0]
        rows: list[dict[str, Any]] = []
        for obs in observations:
            self.stats.seen += 1
            payload = canonical_json(obs.payload)
            payload_hash = sha256_hex(payload)
            head = heads.get(obs.entity_id)
            # A delete of something never logged (created and deleted between two syncs) changes no mirror.
            already_gone = obs.deleted and (head is None or head.op == "deleted")
            if already_gone or (head is not None and head.payload_hash == payload_hash):
                self.stats.unchanged += 1
                continue
            op = "deleted" if obs.deleted else ("created" if head is None or head.op == "deleted" else "updated")
            changes = None
            if op == "updated":
                changes = canonical_json(diff(json.loads(head.payload), obs.payload))
            row = {
                "seq": next_seq,
                "tenant_id": self.tenant_id,
                "rail": self.rail,
                "entity_type": self.entity_type,
                "entity_id": obs.entity_id,
                "op": op,
                "source": obs.source,
                "source_version": obs.source_version,
                "source_updated_at": obs.source_updated_at,
                "observed_at": self.observed_at,
                "payload": payload,
                "changes": changes,
                "payload_hash": payload_hash,
                "prev_hash": self.stats.head_hash,
                "run_id": self.run_id,
            }
            row["row_hash"] = chain.row_hash(row)
            rows.append(row)
            heads[obs.entity_id] = _Head(payload_hash, op, payload)
            self.stats.head_seq, self.stats.head_hash = next_seq, row["row_hash"]
            setattr(self.stats, op, getattr(self.stats, op) + 1)
            next_seq += 1
        if rows:
            self._insert(rows)
        return len(rows)

    def _heads(self, entity_ids: Iterable[str]) -> dict[str, _Head]:
        """Last logged version of each given entity of this chain."""
        ids = pa.table({"entity_id": pa.array(sorted(entity_ids), pa.string())})
        with registered(self.conn, "_lp_batch_ids", ids):
            found = self.conn.execute(
                "select l.entity_id, arg_max(l.payload_hash, l.seq), arg_max(l.op, l.seq), "
                "arg_max(cast(l.payload as varchar), l.seq) "
                "from raw.entity_log l semi join _lp_batch_ids b on l.entity_id = b.entity_id "
                "where l.tenant_id = ? and l.rail = ? and l.entity_type = ? group by l.entity_id",
                [self.tenant_id, self.rail, self.entity_type],
            ).fetchall()
        return {entity_id: _Head(h, op, payload) for entity_id, h, op, payload in found}

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        insert_arrow(self.conn, "raw.entity_log", pa.Table.from_pylist(rows, schema=ARROW_SCHEMA))


def live_entity_ids(conn: duckdb.DuckDBPyConnection, tenant_id: str, rail: str, entity_type: str) -> set[str]:
    """Ids whose last logged version is not a delete."""
    rows = conn.execute(
        "select entity_id from raw.entity_log where tenant_id = ? and rail = ? and entity_type = ? "
        "group by entity_id having arg_max(op, seq) <> 'deleted'",
        [tenant_id, rail, entity_type],
    ).fetchall()
    return {r[0] for r in rows}
