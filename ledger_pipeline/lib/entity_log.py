"""Appending versions to the immutable log: only new versions, hash-chained, in bulk.

The writer never updates or deletes. It runs inside the caller's transaction,
so the rows it appends and the cursor the caller saves commit together or not
at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from ledger_pipeline.lib import chain
from ledger_pipeline.lib.canonical import canonical_json, diff, sha256_hex
from ledger_pipeline.lib.warehouse import fetch_one, registered

HEAD_CACHE_ENTITIES = 20_000  # ~6 MB of heads kept per sync; beyond it each batch reads its heads from the log
# Up to this many ids go to the head query as a list: on a log of 1,000 tenants' interleaved syncs (1.39M rows)
# 3-4 ms for 5-150 ids against 9-14 ms as a join; a join above (5,000 ids of a 1M tenant: 26 against 37 ms).
HEAD_IDS_AS_LIST = 1_000
# Payload text staged before an insert, beside the row count (`batch_size`): what an insert holds at once (the rows,
# their Arrow copy, DuckDB's reading of it) stays alike whatever the objects' size. A 5,000-row insert of 1.5 KB
# Plaid transactions left the process 50-65 MB larger than 500-row ones did, in one transaction of 21,800 rows.
BATCH_PAYLOAD_CHARS = 2_000_000
LOG_COLUMNS = (
    "seq", "tenant_id", "rail", "entity_type", "entity_id", "op", "source", "source_version",
    "source_updated_at", "observed_at", "payload", "changes", "payload_hash", "prev_hash", "row_hash", "run_id",
)  # fmt: skip

# The columns `LogWriter.append` builds per row, in its tuples' order (the others are the writer's own).
_VARYING_COLUMNS = (
    "seq", "entity_id", "op", "source", "source_version", "source_updated_at", "payload", "changes", "payload_hash",
    "prev_hash", "row_hash",
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
    source: str  # how the rail showed it: QBO "query" | "cdc"; Stripe "list" | "event" | "read"; "sweep"
    deleted: bool = False
    source_version: str | None = None
    source_updated_at: datetime | None = None
    # A delete logged even when the entity never was: QBO's tombstones, the only trace of a payment the books took
    # back before a sync saw it, while the bank still shows its money and then its return.
    deleted_unseen_kept: bool = False


@dataclass
class AppendStats:
    seen: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0  # deletes of entities logged live: what the circuit breaker weighs
    deleted_unseen: int = 0  # deletes of entities never logged live (a tombstone is all the log holds of them)
    unchanged: int = 0
    head_seq: int | None = None
    head_hash: str | None = None

    @property
    def appended(self) -> int:
        return self.created + self.updated + self.deleted + self.deleted_unseen


@dataclass(frozen=True)
class ChainHead:
    """A chain's last row as a caller read it before the writer's transaction (`chain_heads`)."""

    seq: int | None  # None: the chain is empty
    row_hash: str | None


EMPTY_CHAIN = ChainHead(None, None)


@dataclass
class _Head:
    """An entity's last logged version; `payload` is read only when a diff needs it (None until then)."""

    seq: int
    payload_hash: str
    op: str
    payload: str | None


@dataclass
class LogWriter:
    """Appends to one chain (tenant, rail, entity type) inside an open transaction.

    `stage` hashes and chains versions as they arrive and holds their rows until `batch_size` are waiting
    (or `flush`, or a read of the log), so a sync can chain one page while the next is on its way and still
    insert in bulk; `append` is `stage` then `flush`.

    In that transaction the writer is the chain's only writer, so the heads it has read or written stay
    its entities' heads: it remembers up to HEAD_CACHE_ENTITIES of them (without payloads, read again
    only for a diff) and reads each from the log once, or not at all when the chain was empty at the
    start. A larger sync (a big first sync) forgets them and reads each batch's heads, as memory must
    stay flat in the company's size.
    """

    conn: duckdb.DuckDBPyConnection
    tenant_id: str
    rail: str
    entity_type: str
    run_id: str
    observed_at: datetime
    batch_size: int = 5_000  # rows staged before they are inserted
    # The chain's head as the caller read it for many tenants (`chain_heads`), valid because the caller has been
    # the ledger's only writer since; None: read here.
    head: ChainHead | None = None
    # The log's next seq: given when the caller knows it (the step's earlier syncs left it, lib/sync.StepSeq), else
    # read when the first row is chained; the writer counts on from it.
    next_seq: int | None = None
    stats: AppendStats = field(default_factory=AppendStats)
    _known: dict[str, _Head | None] | None = field(default_factory=dict, init=False, repr=False)
    _chain_was_empty: bool = field(default=False, init=False, repr=False)
    _hash: chain.ChainHasher = field(init=False, repr=False)
    _staged: list[tuple] = field(default_factory=list, init=False, repr=False)
    _staged_chars: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._hash = chain.ChainHasher(self.tenant_id, self.rail, self.entity_type, self.observed_at, self.run_id)
        # The log's next seq, read once: the transaction's only log writer counts on from it (a second writer in
        # the same transaction would reuse seqs, which the unique index on seq refuses at once). With the head
        # given, it is read when the first row is chained: a sync that logs nothing reads nothing.
        if self.head is None:
            self.next_seq, head_seq, head_hash = fetch_one(
                self.conn,
                "select (select coalesce(max(seq), 0) + 1 from raw.entity_log), max(seq), arg_max(row_hash, seq) "
                "from raw.entity_log where tenant_id = ? and rail = ? and entity_type = ?",
                [self.tenant_id, self.rail, self.entity_type],
            )
        else:
            head_seq, head_hash = self.head.seq, self.head.row_hash
        self.stats.head_seq, self.stats.head_hash = head_seq, head_hash
        self._chain_was_empty = head_seq is None

    def append(self, observations: Sequence[Observation]) -> int:
        """Log the observations that differ from their entity's last logged version; return how many."""
        staged = self.stage(observations)
        self.flush()
        return staged

    def flush(self) -> None:
        """Insert the staged rows (still inside the caller's transaction)."""
        if self._staged:
            rows, self._staged, self._staged_chars = self._staged, [], 0
            self._insert(rows)

    def stage(self, observations: Sequence[Observation]) -> int:
        """Chain the observations that differ from their entity's last logged version; return how many. Their rows
        are inserted once `batch_size` rows or BATCH_PAYLOAD_CHARS of payload are staged, at `flush`, or before the
        log is read."""
        if not observations:
            return 0
        texts = [canonical_json(obs.payload) for obs in observations]
        hashes = [sha256_hex(text) for text in texts]
        heads = self._heads({obs.entity_id for obs in observations})
        self._read_payloads(heads, observations, hashes)
        next_seq = self.next_seq
        rows: list[tuple] = []  # LOG_COLUMNS but the writer's constants (tenant, rail, entity type, observed_at, run)
        ops: list[str] = []
        stats = self.stats
        stats.seen += len(observations)
        unseen = 0  # deletes of entities never logged
        chars = 0  # payload text of the rows staged here
        for obs, payload, payload_hash in zip(observations, texts, hashes):
            head = heads[obs.entity_id]
            # A delete of something never logged (created and deleted between two syncs) changes no mirror: it is
            # logged only when the rail's tombstone is worth keeping.
            already_gone = obs.deleted and (head.op == "deleted" if head is not None else not obs.deleted_unseen_kept)
            # Unchanged: the same payload, still live or still deleted. A delete may carry the object exactly as
            # last logged (Stripe's `customer.deleted` event does), and is a change all the same.
            same = head is not None and head.payload_hash == payload_hash and obs.deleted == (head.op == "deleted")
            if already_gone or same:
                continue
            op = "deleted" if obs.deleted else ("created" if head is None or head.op == "deleted" else "updated")
            unseen += obs.deleted and head is None
            if next_seq is None:
                (next_seq,) = fetch_one(self.conn, "select coalesce(max(seq), 0) + 1 from raw.entity_log")
            changes = None
            if op == "updated":
                changes = canonical_json(diff(json.loads(head.payload), obs.payload))
            prev_hash = stats.head_hash
            row_hash = self._hash(
                prev_hash, next_seq, obs.entity_id, op, obs.source, obs.source_version, obs.source_updated_at,
                payload_hash, changes,
            )  # fmt: skip
            rows.append((
                next_seq, obs.entity_id, op, obs.source, obs.source_version, obs.source_updated_at, payload,
                changes, payload_hash, prev_hash, row_hash,
            ))  # fmt: skip
            heads[obs.entity_id] = _Head(next_seq, payload_hash, op, payload)
            stats.head_seq, stats.head_hash = next_seq, row_hash
            ops.append(op)
            chars += len(payload)
            next_seq += 1
        self.next_seq = next_seq
        stats.unchanged += len(observations) - len(rows)
        if ops:
            stats.deleted_unseen += unseen
            stats.created, stats.updated, stats.deleted = (stats.created + ops.count("created"),
                                                           stats.updated + ops.count("updated"),
                                                           stats.deleted + ops.count("deleted") - unseen)  # fmt: skip
        self._staged.extend(rows)
        self._staged_chars += chars
        if len(self._staged) >= self.batch_size or self._staged_chars >= BATCH_PAYLOAD_CHARS:
            self.flush()
        self._remember(heads)
        return len(rows)

    def _heads(self, entity_ids: set[str]) -> dict[str, _Head | None]:
        """The last logged version (None: never logged) of each given entity, read from the log if not known."""
        known = self._known if self._known is not None else {}
        heads = {entity_id: known.get(entity_id) for entity_id in entity_ids}
        unknown = sorted(entity_id for entity_id in entity_ids if entity_id not in known)
        if unknown and not (self._chain_was_empty and self._known is not None):
            self.flush()  # the staged rows are heads the log must show
            for entity_id, seq, payload_hash, op in self._read_heads(unknown):
                heads[entity_id] = _Head(seq, payload_hash, op, None)
        return heads

    def _read_heads(self, entity_ids: list[str]) -> list[tuple]:
        """(id, seq, payload_hash, op) of each listed entity's last logged version, from one scan of the chain."""
        head = "select l.entity_id, max(l.seq), arg_max(l.payload_hash, l.seq), arg_max(l.op, l.seq)"
        head += " from raw.entity_log l"
        chain_of = "l.tenant_id = ? and l.rail = ? and l.entity_type = ?"
        params = [self.tenant_id, self.rail, self.entity_type]
        if len(entity_ids) <= HEAD_IDS_AS_LIST:
            sql = f"{head} where {chain_of} and list_contains(?::varchar[], l.entity_id) group by l.entity_id"
            return self.conn.execute(sql, [*params, entity_ids]).fetchall()
        ids = pa.table({"entity_id": pa.array(entity_ids, pa.string())})
        with registered(self.conn, "_lp_batch_ids", ids):
            sql = f"{head} semi join _lp_batch_ids b on l.entity_id = b.entity_id where {chain_of} group by l.entity_id"
            return self.conn.execute(sql, params).fetchall()

    def _read_payloads(
        self, heads: dict[str, _Head | None], observations: Sequence[Observation], hashes: list[str]
    ) -> None:
        """Read, in one query, the logged payloads the updates will be diffed against (re-reads rarely change)."""
        wanted: dict[int, _Head] = {}
        for obs, payload_hash in zip(observations, hashes):
            head = heads[obs.entity_id]
            diffed = not obs.deleted and head is not None and head.op != "deleted" and head.payload_hash != payload_hash
            if diffed and head.payload is None:
                wanted[head.seq] = head
        if not wanted:
            return
        self.flush()
        rows = self.conn.execute(
            "select seq, cast(payload as varchar) from raw.entity_log "
            "where tenant_id = ? and rail = ? and entity_type = ? and seq in (select unnest(?::bigint[]))",
            [self.tenant_id, self.rail, self.entity_type, sorted(wanted)],
        ).fetchall()
        for seq, payload in rows:
            wanted[seq].payload = payload

    def _remember(self, heads: dict[str, _Head | None]) -> None:
        """Keep this batch's heads, without payloads, until the sync has met more entities than the cache holds."""
        if self._known is None:
            return
        for head in heads.values():
            if head is not None:
                head.payload = None
        self._known.update(heads)
        if len(self._known) > HEAD_CACHE_ENTITIES:
            self._known = None

    def _insert(self, rows: list[tuple]) -> None:
        """Insert the staged rows, column by column (a pylist of dicts costs a dict per row), as a stream of
        batches (DuckDB keeps a registered Arrow table until the transaction ends), by position: LOG_COLUMNS is
        the table's column order, and the relation saves the two statements registering the stream costs."""
        varying = dict(zip(_VARYING_COLUMNS, zip(*rows)))
        constant = {"tenant_id": self.tenant_id, "rail": self.rail, "entity_type": self.entity_type,
                    "observed_at": self.observed_at, "run_id": self.run_id}  # fmt: skip
        columns = [
            pa.array(varying[name] if name in varying else [constant[name]] * len(rows), field.type)
            for name, field in zip(LOG_COLUMNS, ARROW_SCHEMA)
        ]
        batches = pa.Table.from_arrays(columns, schema=ARROW_SCHEMA).to_batches()
        self.conn.from_arrow(pa.RecordBatchReader.from_batches(ARROW_SCHEMA, batches)).insert_into("raw.entity_log")


_LIVE_IDS_SQL = (
    "select entity_id from raw.entity_log where tenant_id = ? and rail = ? and entity_type = ? "
    "group by entity_id having arg_max(op, seq) <> 'deleted'"
)


def live_entity_ids(conn: duckdb.DuckDBPyConnection, tenant_id: str, rail: str, entity_type: str) -> set[str]:
    """Ids whose last logged version is not a delete."""
    return {r[0] for r in conn.execute(_LIVE_IDS_SQL, [tenant_id, rail, entity_type]).fetchall()}


def live_entity_count(conn: duckdb.DuckDBPyConnection, tenant_id: str, rail: str, entity_type: str) -> int:
    """How many ids `live_entity_ids` would return, counted in DuckDB (a sync compares it with the rail's count)."""
    return fetch_one(conn, f"select count(*) from ({_LIVE_IDS_SQL})", [tenant_id, rail, entity_type])[0]


def chain_heads(
    conn: duckdb.DuckDBPyConnection, rail: str, entity_type: str, tenant_ids: Sequence[str]
) -> dict[str, ChainHead]:
    """The head of each tenant's chain of this entity (EMPTY_CHAIN for none), in one scan: a log step reads them
    all before its first sync instead of one query per tenant."""
    rows = conn.execute(
        "select tenant_id, max(seq), arg_max(row_hash, seq) from raw.entity_log "
        "where rail = ? and entity_type = ? and list_contains(?::varchar[], tenant_id) group by tenant_id",
        [rail, entity_type, list(tenant_ids)],
    ).fetchall()
    heads = dict.fromkeys(tenant_ids, EMPTY_CHAIN)
    heads.update({tenant_id: ChainHead(seq, row_hash) for tenant_id, seq, row_hash in rows})
    return heads
