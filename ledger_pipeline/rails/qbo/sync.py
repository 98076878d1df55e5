"""One incremental sync of one QBO entity for one tenant: rail -> log, cursor committed with the rows.

Order of work inside a single DuckDB transaction:
1. the query feed from the last committed LastUpdatedTime (the client re-reads
   an overlap window; re-read versions are recognised by hash and skipped);
2. the CDC feed for transactions, which is the only place QBO shows deletes;
3. a count check against the rail and, when counts disagree or CDC cannot
   reach back far enough (30 days), a full id sweep that logs what vanished;
4. the circuit breaker (lib/breaker.py): a mass disappearance or the rail's clock gone back stops
   the sync here unless an operator approved it;
5. the cursor. Any failure rolls all of it back.

The feeds' and the count's requests run in a reader thread (`rail_reads`, lib/prefetch.py) a page
ahead of the logging, and may start while earlier tenants are still being logged (`EntitySync`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from ledger_pipeline.lib import bindings, breaker, cursors
from ledger_pipeline.lib.entity_log import AppendStats, LogWriter, Observation, live_entity_count, live_entity_ids
from ledger_pipeline.lib.prefetch import Prefetch
from ledger_pipeline.lib.warehouse import rollback
from ledger_pipeline.rails.qbo.client import QboClient, QboPage
from ledger_pipeline.rails.qbo.entities import QboEntity
from ledger_pipeline.rails.qbo.errors import QboCdcWindowError, QboMalformedResponse

RAIL = "qbo"
CDC_OVERLAP = timedelta(minutes=5)
SWEEP_MODES = ("auto", "always", "never")
PAGES_AHEAD = 1  # pages read ahead of the one being logged: ~1 MB each at QBO's 1,000 objects a page
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntitySyncResult:
    tenant_id: str
    entity: str
    stats: AppendStats
    cursor: cursors.Cursor
    pages: int
    tombstones: int
    swept: bool
    sweep_reason: str | None
    approval: breaker.Approval | None = None  # the operator's approval a tripped breaker used


@dataclass(frozen=True)
class ChangeFeed:
    """What the CDC feed returned since the cursor, or that QBO refused a window older than 30 days."""

    objects: list[dict[str, Any]]
    refused: bool = False


@dataclass(frozen=True)
class RailCount:
    """How many objects of the entity QBO holds now, read after both feeds."""

    value: int


def _reads_changes(entity: QboEntity, previous: cursors.Cursor) -> bool:
    # An entity never seen non-empty has no change position yet: it gets one at its first sync, and deleted nothing.
    first_sync = previous.last_synced_at is None
    return not entity.is_name_list and not first_sync and bool(previous.cdc_since or previous.updated_since)


def _counts_rail(sweep: str, previous: cursors.Cursor, cdc_refused: bool) -> bool:
    return sweep == "auto" and previous.last_synced_at is not None and not cdc_refused


def rail_reads(
    client: QboClient, entity: QboEntity, previous: cursors.Cursor, sweep: str
) -> Iterator[QboPage | ChangeFeed | RailCount]:
    """Every request a sync makes before it decides whether to sweep, in order: query pages, CDC, count."""
    yield from client.pages(entity.name, updated_since=previous.updated_since)
    refused = False
    if _reads_changes(entity, previous):
        start = previous.cdc_since or previous.updated_since
        assert start is not None
        try:
            changes = ChangeFeed(list(client.changes(entity.name, since=start - CDC_OVERLAP)))
        except QboCdcWindowError:
            changes, refused = ChangeFeed([], refused=True), True
        yield changes
    if _counts_rail(sweep, previous, refused):
        yield RailCount(client.count(entity.name))


class EntitySync:
    """One tenant's sync of one entity, its rail reads under way in a thread from the moment it is made.

    Made ahead of its turn (the cursor is read then; one writer per ledger keeps it current), so
    the rail answers for the next tenants while this one is logged. `run` does the logging in one
    transaction; `close` stops reads that will not be used. The client is the reader's until the
    reads end: `run` uses it again only for the sweep and the rail's clock, after that.
    """

    def __init__(
        self, conn: duckdb.DuckDBPyConnection, client: QboClient, tenant_id: str, entity: QboEntity, *,
        sweep: str = "auto", bound: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        """`bound`: the rail's tenant bindings (lib/bindings.py) when the caller read them for many tenants."""
        if sweep not in SWEEP_MODES:
            raise ValueError(f"sweep must be one of {SWEEP_MODES}, got {sweep!r}")
        self.client, self.tenant_id, self.entity, self.sweep = client, tenant_id, entity, sweep
        bound = bindings.load(conn, RAIL) if bound is None else bound
        self.already_bound = bindings.check(bound, tenant_id, RAIL, client.realm_id)  # before anything is read
        self.previous = cursors.load(conn, tenant_id, RAIL, entity.name)
        self.started_at = datetime.now(UTC)  # when the rail was first asked: what the versions were observed at
        self.reads = Prefetch(rail_reads(client, entity, self.previous, sweep), depth=PAGES_AHEAD)

    def close(self) -> None:
        self.reads.close()

    def run(
        self, conn: duckdb.DuckDBPyConnection, *, run_id: str, observed_at: datetime | None = None,
        batch_size: int = 5_000,
    ) -> EntitySyncResult:
        """Append every new version to the log and move the cursor, atomically."""
        client, entity, previous, tenant_id = self.client, self.entity, self.previous, self.tenant_id
        observed_at = observed_at or self.started_at
        first_sync = previous.last_synced_at is None
        conn.execute("begin")
        try:
            with self.reads:
                writer = LogWriter(conn, tenant_id, RAIL, entity.name, run_id, observed_at)
                feeds = _Feeds(writer, entity, client.realm_id, previous, batch_size)
                for read in self.reads:
                    feeds.take(read)
                feeds.end()
            sweep_reason = _sweep_reason(conn, tenant_id, entity, self.sweep, first_sync, feeds)
            if sweep_reason:
                _sweep(conn, client, writer, tenant_id, entity)
            rail_now = client.server_now()
            clock_back = breaker.clock_trip(rail_now, previous.rail_now)
            approval = _breaker(conn, tenant_id, entity, writer, clock_back, run_id)
            if clock_back:  # approved: positions on the old clock mean nothing now, so the entity is read whole
                feeds = _Feeds(writer, entity, client.realm_id, cursors.Cursor(), batch_size)
                for page in client.pages(entity.name, updated_since=None):
                    feeds.take(page)
                feeds.end()
                sweep_reason = "the rail's clock went back (approved)"
                _sweep(conn, client, writer, tenant_id, entity)
            cursor = cursors.Cursor(
                updated_since=feeds.high,
                cdc_since=feeds.cdc_since or rail_now,  # an empty entity's changes are read from now on
                last_sweep_at=observed_at if sweep_reason else previous.last_sweep_at,
                last_synced_at=observed_at,
                rail_now=rail_now,
            )
            if not self.already_bound:
                bindings.bind(conn, tenant_id, RAIL, client.realm_id, run_id)
            cursors.save(conn, tenant_id, RAIL, entity.name, cursor, run_id)
            conn.execute("commit")
        except BaseException:
            rollback(conn)
            raise
        return EntitySyncResult(
            tenant_id, entity.name, writer.stats, cursor, feeds.pages, feeds.tombstones, bool(sweep_reason),
            sweep_reason, approval,
        )  # fmt: skip


def sync_entity(
    conn: duckdb.DuckDBPyConnection,
    client: QboClient,
    tenant_id: str,
    entity: QboEntity,
    *,
    run_id: str,
    observed_at: datetime,
    sweep: str = "auto",
    batch_size: int = 5_000,
) -> EntitySyncResult:
    """Append every new version of `entity` to the log and move its cursor, atomically (no read-ahead of tenants)."""
    sync = EntitySync(conn, client, tenant_id, entity, sweep=sweep)
    try:
        return sync.run(conn, run_id=run_id, observed_at=observed_at, batch_size=batch_size)
    finally:
        sync.close()


class _Feeds:
    """The rail's reads of one sync as they arrive, logged in batches; where the feeds got to."""

    def __init__(
        self, writer: LogWriter, entity: QboEntity, realm_id: str, previous: cursors.Cursor, batch_size: int
    ) -> None:
        self.writer, self.entity, self.realm_id, self.batch_size = writer, entity, realm_id, batch_size
        self.high, self.pages, self.batch = previous.updated_since, 0, []
        self.query_done = False
        self.cdc_since: datetime | None = previous.cdc_since
        self.tombstones, self.cdc_refused, self.rail_count = 0, False, None

    def take(self, read: QboPage | ChangeFeed | RailCount) -> None:
        if isinstance(read, QboPage):
            self.pages += 1
            self.batch.extend(_observe(obj, self.entity, "query", self.realm_id) for obj in read.objects)
            if read.max_updated_at is not None and (self.high is None or read.max_updated_at > self.high):
                self.high = read.max_updated_at
            if len(self.batch) >= self.batch_size:
                self.writer.append(self.batch)
                self.batch = []
            return
        self._end_query_feed()
        if isinstance(read, ChangeFeed):
            self._log_changes(read)
        else:
            self.rail_count = read.value

    def end(self) -> None:
        self._end_query_feed()
        if self.cdc_since is None:
            self.cdc_since = self.high

    def _end_query_feed(self) -> None:
        if not self.query_done:
            self.writer.append(self.batch)
            self.batch, self.query_done = [], True

    def _log_changes(self, feed: ChangeFeed) -> None:
        """Log CDC versions (deletes above all); the change position moves to the newest seen."""
        if feed.refused:
            log.info("CDC window for %s is older than 30 days; the id sweep will find deletions", self.entity.name)
            self.cdc_since, self.cdc_refused = self.high, True
            return
        observed = [_observe(obj, self.entity, "cdc", self.realm_id) for obj in feed.objects]
        newest = self.high
        for obs in observed:
            if obs.source_updated_at and (newest is None or obs.source_updated_at > newest):
                newest = obs.source_updated_at
        self.writer.append(observed)
        self.cdc_since, self.tombstones = newest, sum(o.deleted for o in observed)


def _breaker(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, entity: QboEntity, writer: LogWriter, clock_back: str | None,
    run_id: str,
) -> breaker.Approval | None:
    """Stop the sync before its commit when it trips the breaker and no operator approved it."""
    reasons = [clock_back] if clock_back else []
    stats = writer.stats
    if stats.deleted >= breaker.MIN_DELETIONS:  # counted only then: the live count reads the entity's whole log
        live_before = live_entity_count(conn, tenant_id, RAIL, entity.name) + stats.deleted - stats.created
        if tripped := breaker.deletions_trip(stats.deleted, live_before):
            reasons.append(tripped)
    if not reasons:
        return None
    approval = breaker.use_approval(conn, tenant_id, RAIL, entity.name, run_id, "; ".join(reasons))
    if approval is None:
        raise breaker.halted(tenant_id, RAIL, entity.name, reasons)
    log.info("%s %s: breaker tripped (%s); approval %s by %s lets it through: %s", tenant_id, entity.name,
                "; ".join(reasons), approval.approval_id, approval.approved_by, approval.reason)  # fmt: skip
    return approval


def _sweep_reason(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, entity: QboEntity, sweep: str, first_sync: bool, feeds: _Feeds
) -> str | None:
    if sweep == "never" or first_sync:
        return None
    if sweep == "always":
        return "requested"
    if feeds.cdc_refused:
        return "change feed window older than 30 days"
    if feeds.rail_count is None:
        raise RuntimeError(f"{entity.name}: the rail's count was not read before deciding on a sweep")
    logged = live_entity_count(conn, tenant_id, RAIL, entity.name)
    if feeds.rail_count != logged:
        return f"rail count {feeds.rail_count} differs from {logged} live in the log"
    return None


def _sweep(
    conn: duckdb.DuckDBPyConnection, client: QboClient, writer: LogWriter, tenant_id: str, entity: QboEntity
) -> None:
    """Log a delete for every entity the log holds as live but the rail no longer lists."""
    on_rail = client.ids(entity.name)
    gone = sorted(live_entity_ids(conn, tenant_id, RAIL, entity.name) - on_rail, key=lambda i: (len(i), i))
    writer.append(
        [Observation(i, {"Id": i, "domain": "QBO", "status": "Deleted"}, "sweep", deleted=True) for i in gone]
    )


def _observe(obj: dict[str, Any], entity: QboEntity, source: str, realm_id: str) -> Observation:
    entity_id = obj.get("Id")
    if not isinstance(entity_id, str) or not entity_id:
        raise QboMalformedResponse(realm_id, entity.name, f"an object without an Id came back from the {source} feed")
    updated = (obj.get("MetaData") or {}).get("LastUpdatedTime")
    token = obj.get("SyncToken")
    return Observation(
        entity_id=entity_id,
        payload=obj,
        source=source,
        deleted=obj.get("status") == "Deleted",
        source_version=str(token) if token is not None else None,
        source_updated_at=datetime.fromisoformat(updated) if isinstance(updated, str) else None,
    )
