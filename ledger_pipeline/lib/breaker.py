"""The circuit breaker: a sync that looks like the rail lost its data stops before it commits.

A rail restored from an old backup, a sandbox whose state was wiped, or a rail pointed at an
emptied company all look, to an id sweep, like objects deleted en masse; the log would keep those
deletion markers for ever. So before a sync commits it asks two questions: does it log more
deletions than a stated share of the entity's live objects, and is the rail's clock earlier than
at the last sync? Either one stops the sync (nothing is committed) until an operator approves
one sync, recorded in meta.sync_approvals with who and why, and used up by the sync it lets through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from ledger_pipeline.lib.warehouse import fetch_one

MAX_DELETED_SHARE = 0.2  # of the entity's live objects before the sync
MIN_DELETIONS = 10  # fewer deletions than this always pass: a small book's ordinary churn
CLOCK_SLACK = timedelta(minutes=5)  # the rail's clock is read from its answers, a little behind at times
MAX_REASON_CHARS = 500


class SyncHalted(RuntimeError):
    """The breaker stopped a sync before it committed; an operator's approval lets the next one through."""


@dataclass(frozen=True)
class Approval:
    approval_id: int
    approved_by: str
    reason: str


def deletions_trip(deleted: int, live_before: int) -> str | None:
    """Why `deleted` deletions out of `live_before` live objects trip the breaker, or None."""
    if deleted < MIN_DELETIONS or deleted <= MAX_DELETED_SHARE * live_before:
        return None
    share = f"{deleted / live_before:.0%} of the {live_before}" if live_before else f"more than the {live_before}"
    return (
        f"the sync would log {deleted} deletions, {share} objects live before it "
        f"(the breaker stops more than {MAX_DELETED_SHARE:.0%} once there are {MIN_DELETIONS} or more)"
    )


def clock_trip(rail_now: datetime | None, last_rail_now: datetime | None) -> str | None:
    """Why the rail's clock now stops the sync (it went back since the last sync), or None (also when the rail
    tells no clock)."""
    if rail_now is None or last_rail_now is None or rail_now >= last_rail_now - CLOCK_SLACK:
        return None
    return (
        f"the rail's clock reads {rail_now.isoformat(timespec='seconds')}, earlier than "
        f"{last_rail_now.isoformat(timespec='seconds')} at the last sync: its data may have been restored from an "
        "older state"
    )


def halted(tenant_id: str, rail: str, entity_type: str, reasons: list[str]) -> SyncHalted:
    """The error a tripped sync fails with: what it saw, and the two ways on."""
    return SyncHalted(
        f"circuit breaker: {'; and '.join(reasons)}. Nothing was committed. If the rail's data were lost "
        "(a restore, a reset sandbox), bring them back and run again. If the change is real, approve one sync: "
        f"`ledger-pipeline approve-sync --tenant {tenant_id} --rail {rail} --entity {entity_type} "
        "--reason '...'` (without --entity: every entity of the next run), then run again (docs/reliability.md, "
        "circuit breaker)"
    )


def approve(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, rail: str, entity_type: str | None, approved_by: str, reason: str
) -> int:
    """Record an operator's approval of the next tripped sync of (tenant, rail, entity; None: any entity)."""
    reason, approved_by = reason.strip(), approved_by.strip()
    if not reason or len(reason) > MAX_REASON_CHARS or not reason.isprintable():
        raise ValueError(f"the reason must be 1-{MAX_REASON_CHARS} printable characters: say why the change is real")
    if not approved_by or len(approved_by) > 100 or not approved_by.isprintable():
        raise ValueError("--by must name who approves, 1-100 printable characters")
    conn.execute("begin")
    try:
        (approval_id,) = fetch_one(conn, "select coalesce(max(approval_id), 0) + 1 from meta.sync_approvals")
        conn.execute(
            "insert into meta.sync_approvals (approval_id, tenant_id, rail, entity_type, approved_by, reason, "
            "approved_at) values (?, ?, ?, ?, ?, ?, ?)",
            [approval_id, tenant_id, rail, entity_type, approved_by, reason, datetime.now(UTC)],
        )
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return approval_id


def use_approval(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, rail: str, entity_type: str, run_id: str, tripped: str
) -> Approval | None:
    """Use up the oldest approval that covers this sync, inside its transaction; None when there is none.

    An approval for one entity lets one sync through; one for every entity (entity_type null) lets
    through every entity of the run that first uses it.
    """
    row = fetch_one(
        conn,
        "select approval_id, approved_by, reason from meta.sync_approvals where tenant_id = ? and rail = ? "
        "and (entity_type = ? and used_by_run is null or entity_type is null and coalesce(used_by_run, ?) = ?) "
        "order by approval_id limit 1",
        [tenant_id, rail, entity_type, run_id, run_id],
    )
    if row is None:
        return None
    conn.execute(
        "update meta.sync_approvals set used_by_run = ?, used_at = ?, "
        "used_for = coalesce(used_for || '; ', '') || ? where approval_id = ?",
        [run_id, datetime.now(UTC), f"{entity_type}: {tripped}", row[0]],
    )
    return Approval(*row)
