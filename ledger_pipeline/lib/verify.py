"""Recompute every hash chain of the log and name the first row that breaks it.

Each row's two hashes are recomputed from its own columns (DuckDB spells the
inputs, hashlib hashes them: lib/verify_hashes.py), and one vectorised DuckDB
query compares each row's `prev_hash` with the hash of the row before it in its
chain, so an edited, deleted, inserted or reordered row is caught. A chain can
be checked from a row already vouched for (`after`) instead of from its start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb

from ledger_pipeline.lib import chain
from ledger_pipeline.lib.verify_hashes import hash_problems
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


ChainKey = tuple[str, str, str]  # (tenant_id, rail, entity_type)
ChainPoint = tuple[int, str]  # (seq, row_hash) of a row already vouched for

# The rows in scope: the filters, and for a chain with a vouched point only the rows after it.
_SCOPE_SQL = """
with vouched as (
    select unnest($after_tenant::varchar[]) as tenant_id, unnest($after_rail::varchar[]) as rail,
        unnest($after_entity::varchar[]) as entity_type, unnest($after_seq::bigint[]) as after_seq,
        unnest($after_hash::varchar[]) as after_hash
),
scoped as (
    select l.*, v.after_seq, v.after_hash
    from raw.entity_log l left join vouched v using (tenant_id, rail, entity_type)
    where ($tenants is null or list_contains($tenants::varchar[], l.tenant_id))
      and ($rail is null or l.rail = $rail) and ($entity_type is null or l.entity_type = $entity_type)
      and (v.after_seq is null or l.seq > v.after_seq)
      and ($floor_seq is null or l.seq > $floor_seq)
)"""

# Links: each row's prev_hash against the row before it in its chain (or the vouched row); first bad per chain.
_LINK_SQL = f"""{_SCOPE_SQL},
links as (
    select tenant_id, rail, entity_type, seq, entity_id, prev_hash, after_seq, after_hash,
        lag(row_hash) over chain_order as expected_prev,
        lag(seq) over chain_order as prev_seq,
        row_number() over chain_order as position
    from scoped
    window chain_order as (partition by tenant_id, rail, entity_type order by seq)
),
problems as (
    select *,
        case
            when position = 1 and after_seq is null and prev_hash is not null
                then 'first row of its chain points at a previous row (rows deleted or chain truncated before it)'
            when position = 1 and prev_hash is distinct from after_hash
                then 'prev_hash does not match the row before it, seq=' || after_seq
                     || ' (a row was deleted, inserted or reordered)'
            when position > 1 and prev_hash is distinct from expected_prev
                then 'prev_hash does not match the row before it, seq=' || prev_seq
                     || ' (a row was deleted, inserted or reordered)'
        end as reason
    from links
)
select tenant_id, rail, entity_type, seq, entity_id, reason
from problems
where reason is not null
qualify row_number() over (partition by tenant_id, rail, entity_type order by seq) = 1
"""

# Hash inputs: DuckDB spells each row's texts, Python's hashlib (OpenSSL) hashes them.
_HASH_INPUT_SQL = f"""{_SCOPE_SQL}
select tenant_id, rail, entity_type, seq, entity_id, payload_hash, row_hash,
    cast(payload as varchar) as payload_text, {chain.row_hash_input_sql()} as row_input
from scoped
"""

_DUPLICATE_SEQ_SQL = f"""{_SCOPE_SQL}
select seq, count(*) from scoped group by seq having count(*) > 1 order by seq limit 1
"""

_COUNT_SQL = f"""{_SCOPE_SQL}
select count(*), count(distinct (tenant_id, rail, entity_type)) from scoped
"""


def _params(
    tenants: list[str] | None, rail: str | None, entity_type: str | None, after: Mapping[ChainKey, ChainPoint]
) -> dict[str, object]:
    keys = sorted(after)
    # Every chain in scope has a vouched row: a constant bound on seq lets DuckDB skip the row groups before them.
    in_scope = [(t, rail, entity_type) for t in tenants or []] if rail and entity_type else []
    floor_seq = min(after[c][0] for c in in_scope) if in_scope and all(c in after for c in in_scope) else None
    return {
        "floor_seq": floor_seq,
        "tenants": tenants, "rail": rail, "entity_type": entity_type,
        "after_tenant": [k[0] for k in keys], "after_rail": [k[1] for k in keys],
        "after_entity": [k[2] for k in keys], "after_seq": [after[k][0] for k in keys],
        "after_hash": [after[k][1] for k in keys],
    }  # fmt: skip


def verify(
    conn: duckdb.DuckDBPyConnection,
    tenant_id: str | Sequence[str] | None = None,
    *,
    rail: str | None = None,
    entity_type: str | None = None,
    after: Mapping[ChainKey, ChainPoint] | None = None,
) -> VerifyReport:
    """Check every chain (or those of one tenant or a list of tenants, or one chain); at most one problem per chain.

    `after` maps a chain to a row already vouched for (its seq and row_hash): only that chain's rows
    after it are checked, the first of them against that row_hash. The caller checks that the log
    still holds that row (`compare_heads`); rows before it are not re-read.
    """
    tenants = [tenant_id] if isinstance(tenant_id, str) else None if tenant_id is None else list(tenant_id)
    params = _params(tenants, rail, entity_type, after or {})
    first = {key: ChainProblem(*problem) for key, problem in hash_problems(conn, _HASH_INPUT_SQL, params).items()}
    for row in conn.execute(_LINK_SQL, params).fetchall():
        link = ChainProblem(*row)
        key = (link.tenant_id, link.rail, link.entity_type)
        if key not in first or link.seq < first[key].seq:  # on the same row a hash problem is named first
            first[key] = link
    problems = [first[key] for key in sorted(first)]
    duplicate = fetch_one(conn, _DUPLICATE_SEQ_SQL, params)
    if duplicate:
        problems.append(ChainProblem("*", "*", "*", duplicate[0], "*", f"seq {duplicate[0]} used {duplicate[1]} times"))
    rows, chains = fetch_one(conn, _COUNT_SQL, params)
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
    return [message for _, message in head_mismatches(conn, heads)]


def head_mismatches(conn: duckdb.DuckDBPyConnection, heads: list[RecordedHead]) -> list[tuple[RecordedHead, str]]:
    """Each recorded head the log no longer holds as recorded, with the message naming it, in the order given."""
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
        problems.append((
            head,
            f"tenant {head.tenant_id}, {head.rail} {head.entity_type}: the materialisation of run "
            f"{head.run_id[:8]} at {head.recorded_at} recorded chain head seq={head.seq} "
            f"row_hash {head.row_hash[:12]}.., but the log holds {what} (log rewritten or truncated)",
        ))
    return problems
