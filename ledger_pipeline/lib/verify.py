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
    where $tenant is null or tenant_id = $tenant
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
where $tenant is null or tenant_id = $tenant
group by seq having count(*) > 1 order by seq limit 1
"""


def verify(conn: duckdb.DuckDBPyConnection, tenant_id: str | None = None) -> VerifyReport:
    """Check every chain (or one tenant's); the report lists at most one problem per chain."""
    params = {"tenant": tenant_id}
    problems = [ChainProblem(*row) for row in conn.execute(_CHECK_SQL, params).fetchall()]
    duplicate = fetch_one(conn, _DUPLICATE_SEQ_SQL, params)
    if duplicate:
        problems.append(ChainProblem("*", "*", "*", duplicate[0], "*", f"seq {duplicate[0]} used {duplicate[1]} times"))
    rows, chains = fetch_one(
        conn,
        "select count(*), count(distinct (tenant_id, rail, entity_type)) from raw.entity_log "
        "where $tenant is null or tenant_id = $tenant",
        params,
    )
    return VerifyReport(rows=rows, chains=chains, problems=tuple(problems))
