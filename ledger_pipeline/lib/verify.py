"""Recompute every hash chain of the log and name the first row that breaks it.

Runs as one vectorised DuckDB query: each row's hashes are recomputed from its
own columns and its `prev_hash` compared with the hash of the row before it in
its chain, so an edited, deleted, inserted or reordered row is caught.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ledger_pipeline.lib import chain
from ledger_pipeline.lib.warehouse import fetch_one


@dataclass(frozen=True)
class ChainProblem:
    tenant_id: str
    rail: str
    entity_type: str
    seq: int
    entity_id: str
    reason: str

    def __str__(self) -> str:
        return (
            f"tenant {self.tenant_id}, {self.rail} {self.entity_type}: first bad row seq={self.seq} "
            f"(entity {self.entity_id}): {self.reason}"
        )


@dataclass(frozen=True)
class VerifyReport:
    rows: int
    chains: int
    problems: tuple[ChainProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


_CHECK_SQL = f"""
with rows as (
    select
        tenant_id, rail, entity_type, seq, entity_id, prev_hash, row_hash,
        payload_hash = sha256(cast(payload as varchar)) as payload_ok,
        row_hash = {chain.row_hash_sql()} as row_ok,
        lag(row_hash) over chain_order as expected_prev,
        lag(seq) over chain_order as prev_seq,
        row_number() over chain_order as position
    from raw.entity_log
    where ($tenant is null or tenant_id = $tenant)
      and ($rail is null or rail = $rail) and ($entity_type is null or entity_type = $entity_type)
    window chain_order as (partition by tenant_id, rail, entity_type order by seq)
),
problems as (
    select *,
        case
            when not payload_ok then 'payload does not match payload_hash (payload edited)'
            when not row_ok then 'row content does not match row_hash (row edited)'
            when position = 1 and prev_hash is not null
                then 'first row of its chain points at a previous row (rows deleted or chain truncated before it)'
            when position > 1 and prev_hash is distinct from expected_prev
                then 'prev_hash does not match the row before it, seq=' || prev_seq
                     || ' (a row was deleted, inserted or reordered)'
        end as reason
    from rows
)
select tenant_id, rail, entity_type, seq, entity_id, reason
from problems
where reason is not null
qualify row_number() over (partition by tenant_id, rail, entity_type order by seq) = 1
order by tenant_id, rail, entity_type
"""

_DUPLICATE_SEQ_SQL = """
select seq, count(*) from raw.entity_log
where ($tenant is null or tenant_id = $tenant)
  and ($rail is null or rail = $rail) and ($entity_type is null or entity_type = $entity_type)
group by seq having count(*) > 1 order by seq limit 1
"""


def verify(
    conn: duckdb.DuckDBPyConnection,
    tenant_id: str | None = None,
    *,
    rail: str | None = None,
    entity_type: str | None = None,
) -> VerifyReport:
    """Check every chain (or one tenant's, or one chain); the report lists at most one problem per chain."""
    params = {"tenant": tenant_id, "rail": rail, "entity_type": entity_type}
    problems = [ChainProblem(*row) for row in conn.execute(_CHECK_SQL, params).fetchall()]
    duplicate = fetch_one(conn, _DUPLICATE_SEQ_SQL, params)
    if duplicate:
        problems.append(ChainProblem("*", "*", "*", duplicate[0], "*", f"seq {duplicate[0]} used {duplicate[1]} times"))
    rows, chains = fetch_one(
        conn,
        "select count(*), count(distinct (tenant_id, rail, entity_type)) from raw.entity_log "
        "where ($tenant is null or tenant_id = $tenant) "
        "and ($rail is null or rail = $rail) and ($entity_type is null or entity_type = $entity_type)",
        params,
    )
    return VerifyReport(rows=rows, chains=chains, problems=tuple(problems))


@dataclass(frozen=True)
class RecordedHead:
    """A chain head as a log materialisation recorded it in Dagster's event log, outside DuckDB."""

    tenant_id: str
    rail: str
    entity_type: str
    seq: int
    row_hash: str
    run_id: str
    recorded_at: str


def compare_heads(conn: duckdb.DuckDBPyConnection, heads: list[RecordedHead]) -> list[str]:
    """Recorded heads that the DuckDB log no longer holds at the same seq with the same hash.

    Catches what chain verification cannot: a log rewritten wholesale with
    every hash recomputed, or truncated after the last recorded head.
    """
    if not heads:
        return []
    rows = conn.execute(
        "select seq, tenant_id, rail, entity_type, row_hash from raw.entity_log "
        "where seq in (select unnest(?::bigint[]))",
        [sorted({h.seq for h in heads})],
    ).fetchall()
    stored = {seq: (tenant, rail, entity, row_hash) for seq, tenant, rail, entity, row_hash in rows}
    problems = []
    for head in heads:
        found = stored.get(head.seq)
        expected = (head.tenant_id, head.rail, head.entity_type, head.row_hash)
        if found == expected:
            continue
        what = "no row" if found is None else f"row_hash {found[3][:12]}.. of {found[0]} {found[1]} {found[2]}"
        problems.append(
            f"tenant {head.tenant_id}, {head.rail} {head.entity_type}: the materialisation of run "
            f"{head.run_id[:8]} at {head.recorded_at} recorded chain head seq={head.seq} "
            f"row_hash {head.row_hash[:12]}.., but the log holds {what} (log rewritten or truncated)"
        )
    return problems
