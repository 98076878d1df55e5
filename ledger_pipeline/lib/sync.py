"""One incremental sync of one entity of one rail for one tenant: rail -> log, cursor committed with the rows.

Every rail's sync has the same skeleton; a rail brings a small `RailSession` that reads its feeds and turns
what the rail sent into log observations. Order of work inside a single DuckDB transaction:
1. the session's reads, in its order: list pages from the last committed position, the change feed (the
   only place most rails show deletes; a position the rail refused as too old asks for a sweep), and the
   rail's count when the session reads one;
2. a sweep of ids when counts disagree or the change feed could not reach back, logging what vanished;
3. the circuit breaker (lib/breaker.py): a mass disappearance or the rail's clock gone back stops the sync
   here unless an operator approved it;
4. the cursor, with the rail's opaque position. Any failure rolls all of it back.

A session whose rail voids a read in progress (Plaid, when the data change while it pages) yields `Restart`: the
sync drops every row it logged since its transaction began and the session reads its feed again.

A session's first listing may mark checkpoints on its pages (`Page.checkpoint`): the sync commits there what
it logged with a cursor that says where to resume, so a first sync of a large account that is killed resumes
at its last window instead of from the start. A resumed sync is still a first sync (nothing to sweep).

The session's reads run in a reader thread (lib/prefetch.py) ahead of the logging, and may start while
earlier tenants are still being logged (`EntitySync` is made ahead of its turn: it reads one page, and up to
OBJECTS_AHEAD objects once its turn comes). Each page is chained as it arrives; rows go in by the batch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import duckdb

from ledger_pipeline.lib import bindings, breaker, cursors
from ledger_pipeline.lib.entity_log import (
    AppendStats, ChainHead, LogWriter, Observation, chain_heads, live_entity_count, live_entity_ids,
)
from ledger_pipeline.lib.prefetch import Prefetch, read_ahead
from ledger_pipeline.lib.rails import Entity
from ledger_pipeline.lib.warehouse import rollback

SWEEP_MODES = ("auto", "always", "never")
TENANTS_AHEAD = 4  # tenants whose syncs a log step starts (cursor read, rail reads under way) before their turn
OBJECTS_AHEAD = 1_000  # objects a sync's reader holds ahead of the logging: one QBO page (~1 MB), ten of Stripe's
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    """A page of the rail's list feed, as observations; `high`: the newest update time on it (the list's position)."""

    observations: list[Observation]
    high: datetime | None = None
    # Set on a page of a first listing after which the sync may commit: what the session needs to pick the
    # listing up there (the cursor's `resume`). A long first listing then commits window by window.
    checkpoint: str | None = None


@dataclass(frozen=True)
class ChangeFeed:
    """What the rail's change feed returned since the cursor; `position` where it ends (an opaque id the rail
    gave); `refused`, why the rail would not read back that far (the sweep then finds deletions)."""

    observations: list[Observation] = field(default_factory=list)
    position: str | None = None
    refused: str | None = None  # e.g. "change feed window older than 30 days"


@dataclass(frozen=True)
class RailCount:
    """How many objects of the entity the rail holds now, read after the feeds."""

    value: int


@dataclass(frozen=True)
class Restart:
    """The rail voided what this sync has read so far: every row logged since the transaction began is dropped,
    and the reads that follow start the feed again from the sync's cursor. Not allowed after a checkpoint."""

    reason: str


Read = Page | ChangeFeed | RailCount | Restart


@dataclass
class StepSeq:
    """The log's next `seq` as a step's syncs leave it. They run one after another on the step's connection, the
    ledger's only writer, so each starts where the last committed one ended instead of reading max(seq) again
    (12-20 ms on a benchmark log, once per tenant and entity)."""

    value: int | None = None


class RailSession(Protocol):
    """One tenant's connection to one rail, as a sync uses it (rails/<rail>/sync.py)."""

    rail: str
    account_id: str  # the company or account whose data the tenant's log holds
    page_size: int  # objects on a full list page: how many pages the reader reads ahead (OBJECTS_AHEAD)

    def reads(self, entity: Entity, previous: cursors.Cursor, sweep: str) -> Iterator[Read]:
        """Every request the sync makes before it decides whether to sweep, in order."""
        ...

    def ids(self, entity: Entity) -> set[str]:
        """Every id of the entity the rail lists now (the sweep)."""
        ...

    def tombstone(self, entity: Entity, entity_id: str) -> dict[str, Any]:
        """The payload logged for an object the sweep found gone."""
        ...

    def server_now(self) -> datetime | None:
        """The rail's own clock, when it tells it (the breaker compares it with the last sync's)."""
        ...

    def close(self) -> None: ...


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
    restarts: int = 0  # how often the rail voided the reads under way (`Restart`)


class EntitySync:
    """One tenant's sync of one entity, its rail reads under way in a thread from the moment it is made.

    Made ahead of its turn (the cursor is read then; one writer per ledger keeps it current), so
    the rail answers for the next tenants while this one is logged. `run` does the logging in one
    transaction; `close` stops reads that will not be used. The session is the reader's until the
    reads end: `run` uses it again only for the sweep and the rail's clock, after that.
    """

    def __init__(
        self, conn: duckdb.DuckDBPyConnection, session: RailSession, tenant_id: str, entity: Entity, *,
        sweep: str = "auto", bound: Mapping[str, str] | None = None, previous: cursors.Cursor | None = None,
        head: ChainHead | None = None, step_seq: StepSeq | None = None,
    ) -> None:  # fmt: skip
        """`bound`, `previous`, `head`: the rail's tenant bindings (lib/bindings.py), this tenant's cursor and chain
        head, when the caller read them for many tenants (None: read here); `step_seq`: the log's next seq as the
        step's earlier syncs left it (lib/sync.syncs_ahead)."""
        if sweep not in SWEEP_MODES:
            raise ValueError(f"sweep must be one of {SWEEP_MODES}, got {sweep!r}")
        self.session, self.tenant_id, self.entity, self.sweep = session, tenant_id, entity, sweep
        rail = session.rail
        bound = bindings.load(conn, rail) if bound is None else bound
        self.already_bound = bindings.check(bound, tenant_id, rail, session.account_id)  # before anything is read
        self.previous = cursors.load(conn, tenant_id, rail, entity.name) if previous is None else previous
        self.head = head
        self.step_seq = step_seq if step_seq is not None else StepSeq()
        self._cursor_saved = False
        self._checkpointed = False
        self.started_at = datetime.now(UTC)  # when the rail was first asked: what the versions were observed at
        # One page read ahead until `run`, then OBJECTS_AHEAD's worth: the syncs started before their turn leave
        # the rail to the one being logged.
        self.pages_ahead = max(1, OBJECTS_AHEAD // session.page_size)
        self.reads = Prefetch(session.reads(entity, self.previous, sweep), depth=1)

    def close(self) -> None:
        self.reads.close()

    def run(
        self, conn: duckdb.DuckDBPyConnection, *, run_id: str, observed_at: datetime | None = None,
        batch_size: int = 5_000,
    ) -> EntitySyncResult:
        """Append every new version to the log and move the cursor, atomically."""
        session, entity, previous, tenant_id, rail = self.session, self.entity, self.previous, self.tenant_id, \
            self.session.rail  # fmt: skip
        observed_at = observed_at or self.started_at
        first_sync = previous.last_synced_at is None or previous.resume is not None
        self.reads.deepen(self.pages_ahead)
        restarts = 0
        conn.execute("begin")
        try:
            with self.reads:
                writer = self._writer(conn, run_id, observed_at, batch_size)
                feeds = _Feeds(writer, entity, previous)
                for read in self.reads:
                    if isinstance(read, Restart):
                        writer, feeds = self._restart(conn, read, run_id, observed_at, batch_size)
                        restarts += 1
                        continue
                    feeds.take(read)
                    if isinstance(read, Page) and read.checkpoint is not None:
                        self._commit_checkpoint(conn, feeds, read.checkpoint, run_id, observed_at)
                feeds.end()
            sweep_reason = _sweep_reason(conn, tenant_id, rail, entity, self.sweep, first_sync, feeds)
            if sweep_reason:
                _sweep(conn, session, writer, tenant_id, entity)
            rail_now = session.server_now()
            clock_back = breaker.clock_trip(rail_now, previous.rail_now)
            approval = _breaker(conn, tenant_id, rail, entity, writer, clock_back, run_id)
            if clock_back:  # approved: positions on the old clock mean nothing now, so the entity is read whole
                feeds = _Feeds(writer, entity, cursors.Cursor())
                for read in session.reads(entity, cursors.Cursor(), "never"):
                    feeds.take(read)
                feeds.end()
                sweep_reason = "the rail's clock went back (approved)"
                _sweep(conn, session, writer, tenant_id, entity)
            cursor = cursors.Cursor(
                updated_since=feeds.high,
                cdc_since=feeds.cdc_since or rail_now,  # an empty entity's changes are read from now on
                last_sweep_at=observed_at if sweep_reason else previous.last_sweep_at,
                last_synced_at=observed_at,
                rail_now=rail_now,
                position=feeds.position,
            )
            self._save_cursor(conn, cursor, run_id)
            conn.execute("commit")
        except BaseException:
            rollback(conn)
            raise
        if writer.next_seq is not None:
            self.step_seq.value = writer.next_seq
        return EntitySyncResult(
            tenant_id, entity.name, writer.stats, cursor, feeds.pages, feeds.tombstones, bool(sweep_reason),
            sweep_reason, approval, restarts,
        )  # fmt: skip

    def _restart(
        self, conn: duckdb.DuckDBPyConnection, restart: Restart, run_id: str, observed_at: datetime, batch_size: int
    ) -> tuple[LogWriter, _Feeds]:
        """Drop what this sync logged (its transaction is rolled back and begun again) and start a new writer at the
        chain head the sync started from."""
        if self._checkpointed:
            raise RuntimeError(f"{self.session.rail} {self.entity.name}: a sync cannot restart after a checkpoint")
        log.info("%s %s %s: the rail voided the reads under way (%s); reading again from the sync's cursor",
                 self.tenant_id, self.session.rail, self.entity.name, restart.reason)  # fmt: skip
        conn.execute("rollback")
        conn.execute("begin")
        writer = self._writer(conn, run_id, observed_at, batch_size)
        return writer, _Feeds(writer, self.entity, self.previous)

    def _writer(self, conn: duckdb.DuckDBPyConnection, run_id: str, observed_at: datetime, batch_size: int) -> LogWriter:
        """A writer at the chain head and the log's next seq this sync started from."""
        return LogWriter(conn, self.tenant_id, self.session.rail, self.entity.name, run_id, observed_at, batch_size,
                         self.head, next_seq=self.step_seq.value)  # fmt: skip

    def _save_cursor(self, conn: duckdb.DuckDBPyConnection, cursor: cursors.Cursor, run_id: str) -> None:
        """The tenant bound to the account if it was not yet, and the cursor saved (inserted the first time)."""
        if not self.already_bound:
            bindings.bind(conn, self.tenant_id, self.session.rail, self.session.account_id, run_id)
            self.already_bound = True
        first = self.previous == cursors.Cursor() and not self._cursor_saved
        cursors.save(conn, self.tenant_id, self.session.rail, self.entity.name, cursor, run_id, first=first)
        self._cursor_saved = True

    def _commit_checkpoint(
        self, conn: duckdb.DuckDBPyConnection, feeds: _Feeds, resume: str, run_id: str, observed_at: datetime
    ) -> None:
        """Commit what the listing logged so far with a cursor that resumes it at `resume`, and go on in a new
        transaction. The cursor keeps the previous sync's times (a resumed sync is still the first)."""
        feeds.writer.flush()
        previous = self.previous
        cursor = dataclasses.replace(
            previous, updated_since=feeds.high, position=feeds.position, resume=resume,
            last_synced_at=previous.last_synced_at or observed_at,  # the column is never empty
        )  # fmt: skip
        self._save_cursor(conn, cursor, run_id)
        conn.execute("commit")
        self._checkpointed = True
        conn.execute("begin")


def sync_entity(
    conn: duckdb.DuckDBPyConnection, session: RailSession, tenant_id: str, entity: Entity, *, run_id: str,
    observed_at: datetime, sweep: str = "auto", batch_size: int = 5_000,
) -> EntitySyncResult:  # fmt: skip
    """Append every new version of `entity` to the log and move its cursor, atomically (no read-ahead of tenants)."""
    sync = EntitySync(conn, session, tenant_id, entity, sweep=sweep)
    try:
        return sync.run(conn, run_id=run_id, observed_at=observed_at, batch_size=batch_size)
    finally:
        sync.close()


def syncs_ahead(
    conn: duckdb.DuckDBPyConnection, rail: str, entity: Entity, tenant_ids: Iterable[str],
    session_for: Callable[[str], RailSession | None], *, sweep: str = "auto", ahead: int = TENANTS_AHEAD,
) -> Iterator[tuple[str, Callable[[], EntitySync | None]]]:
    """One entity's syncs of these tenants in order, each started (session opened, cursor read, rail reads under
    way) up to `ahead` tenants before its turn, between two tenants' transactions: what a log step runs.

    `session_for` gives None for a tenant that has not connected the rail (its sync is None: skipped); a tenant
    that cannot start fails at its own turn. The caller closes each sync it takes with `close_sync`.

    The tenants' bindings, cursors and chain heads are read here, once for all: the caller's connection is the
    ledger's only writer, and each tenant's cursor and chain are written by its own sync alone.
    """
    tenant_ids = list(tenant_ids)
    bound = bindings.load(conn, rail)
    previous = cursors.load_many(conn, tenant_ids, rail, entity.name)
    heads = chain_heads(conn, rail, entity.name, tenant_ids)
    step_seq = StepSeq()

    def start(tenant_id: str) -> EntitySync | None:
        return _start_sync(conn, session_for, tenant_id, entity, sweep, bound, previous[tenant_id], heads[tenant_id],
                           step_seq)  # fmt: skip

    return read_ahead(tenant_ids, start, close_sync, ahead=ahead)


def _start_sync(
    conn: duckdb.DuckDBPyConnection, session_for: Callable[[str], RailSession | None], tenant_id: str,
    entity: Entity, sweep: str, bound: Mapping[str, str], previous: cursors.Cursor, head: ChainHead,
    step_seq: StepSeq,
) -> EntitySync | None:  # fmt: skip
    """A tenant's sync started: its session (None: not connected), rail reads under way."""
    session = session_for(tenant_id)
    if session is None:
        return None
    try:
        return EntitySync(conn, session, tenant_id, entity, sweep=sweep, bound=bound, previous=previous, head=head,
                          step_seq=step_seq)  # fmt: skip
    except BaseException:
        session.close()
        raise


def close_sync(sync: EntitySync | None) -> None:
    """Stop a started sync's reads and close its session."""
    if sync is not None:
        sync.close()
        sync.session.close()


class _Feeds:
    """The rail's reads of one sync as they arrive, each chained by the writer at once (it inserts in batches);
    where the feeds got to."""

    def __init__(self, writer: LogWriter, entity: Entity, previous: cursors.Cursor) -> None:
        self.writer, self.entity = writer, entity
        self.high, self.pages = previous.updated_since, 0
        self.cdc_since: datetime | None = previous.cdc_since
        self.position = previous.position
        self.tombstones, self.rail_count = 0, None
        self.cdc_refused: str | None = None

    def take(self, read: Read) -> None:
        if isinstance(read, Page):
            self.pages += 1
            self.writer.stage(read.observations)
            if read.high is not None and (self.high is None or read.high > self.high):
                self.high = read.high
        elif isinstance(read, ChangeFeed):
            self._log_changes(read)
        else:
            self.rail_count = read.value

    def end(self) -> None:
        """Every staged row inserted: what follows (the sweep, the breaker, the commit) reads the log."""
        self.writer.flush()
        if self.cdc_since is None:
            self.cdc_since = self.high

    def _log_changes(self, feed: ChangeFeed) -> None:
        """Log the change feed's versions (deletes above all); the change position moves to the newest seen."""
        if feed.refused:
            log.info("%s: %s; the id sweep will find deletions", self.entity.name, feed.refused)
            self.cdc_since, self.cdc_refused = self.high, feed.refused
            self.position = feed.position
            return
        newest = self.high
        for obs in feed.observations:
            if obs.source_updated_at and (newest is None or obs.source_updated_at > newest):
                newest = obs.source_updated_at
        self.writer.stage(feed.observations)
        self.cdc_since = newest
        self.tombstones += sum(o.deleted for o in feed.observations)
        if feed.position is not None:
            self.position = feed.position


def _breaker(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, rail: str, entity: Entity, writer: LogWriter,
    clock_back: str | None, run_id: str,
) -> breaker.Approval | None:  # fmt: skip
    """Stop the sync before its commit when it trips the breaker and no operator approved it."""
    reasons = [clock_back] if clock_back else []
    stats = writer.stats
    if stats.deleted >= breaker.MIN_DELETIONS:  # counted only then: the live count reads the entity's whole log
        live_before = live_entity_count(conn, tenant_id, rail, entity.name) + stats.deleted - stats.created
        if tripped := breaker.deletions_trip(stats.deleted, live_before):
            reasons.append(tripped)
    if not reasons:
        return None
    approval = breaker.use_approval(conn, tenant_id, rail, entity.name, run_id, "; ".join(reasons))
    if approval is None:
        raise breaker.halted(tenant_id, rail, entity.name, reasons)
    log.info("%s %s %s: breaker tripped (%s); approval %s by %s lets it through: %s", tenant_id, rail, entity.name,
             "; ".join(reasons), approval.approval_id, approval.approved_by, approval.reason)  # fmt: skip
    return approval


def _sweep_reason(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, rail: str, entity: Entity, sweep: str, first_sync: bool,
    feeds: _Feeds,
) -> str | None:  # fmt: skip
    if sweep == "never" or first_sync:
        return None
    if sweep == "always":
        return "requested"
    if feeds.cdc_refused:
        return feeds.cdc_refused
    if feeds.rail_count is None:
        return None  # the session reads no count for this entity: its change feed is complete
    logged = live_entity_count(conn, tenant_id, rail, entity.name)
    if feeds.rail_count != logged:
        return f"rail count {feeds.rail_count} differs from {logged} live in the log"
    return None


def _sweep(
    conn: duckdb.DuckDBPyConnection, session: RailSession, writer: LogWriter, tenant_id: str, entity: Entity
) -> None:
    """Log a delete for every entity the log holds as live but the rail no longer lists."""
    on_rail = session.ids(entity)
    gone = sorted(live_entity_ids(conn, tenant_id, session.rail, entity.name) - on_rail, key=lambda i: (len(i), i))
    writer.append([Observation(i, session.tombstone(entity, i), "sweep", deleted=True) for i in gone])
