"""Re-match only the objects near a change: recon.links after an incremental sync.

Two objects are candidates when their rows in the keys table (recon.link_keys, refreshed just before: flow, method,
side, match key, amount, instant) pair up, so a link can change only if a row of one of its objects changed, or a
person decided about it. `meta.<keys>_matched` keeps the key rows the last matching saw; their difference with
today's names the objects that changed (a new, edited or deleted object, a bank account turning savings, a payout's
composition). What is re-matched, per tenant:

- `changed`: those objects, and the two objects of each link whose latest decision is not the one it shows;
- `rematched`: `changed`, their counterparts now (sharing a key) and before (their links): every object whose
  set of candidates may differ, so every link row to replace touches one of them;
- the model reads the objects two counterpart-steps further (meta.links_scope): a link's status counts the
  candidates of both its objects, and a counterpart's candidates are one step beyond it.

Link rows touching `rematched` are replaced; the rest stand. A tenant with no saved keys or no links (deleted), or
a full rebuild, is matched whole. The result equals matching everything (ledger_pipeline_tests/test_recon_rematch.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ledger_pipeline.lib.sql_models import SqlModel
from ledger_pipeline.lib.warehouse import fetch_one

SCOPE = "meta.links_scope"  # what the model reads of a tenant it matches in part (lib/warehouse.py makes it)
_OBJECT = "tenant_id, rail, entity_type, entity_id"
_FROM = "l.tenant_id, l.from_rail, l.from_type, l.from_id"
_TO = "l.tenant_id, l.to_rail, l.to_type, l.to_id"


def _in(tenants: str, column: str) -> str:
    """`column` is one of the tenants of the named parameter `tenants` (a list, maybe empty)."""
    return f"list_contains(${tenants}::varchar[], {column})"


@dataclass(frozen=True)
class Rematch:
    """What one refresh matched: objects in all, how many changed and how many were re-matched (a tenant matched
    whole counts every object of it as both)."""

    objects: int
    changed: int
    rematched: int
    whole_tenants: list[str]


def _counterparts(of: str) -> str:
    """The objects sharing a key, on the other side, with one of `of` (a CTE of objects): candidates or more."""
    return f"""
        select p.tenant_id, p.rail, p.entity_type, p.entity_id from {of} x
        join keys k on k.tenant_id = x.tenant_id and k.rail = x.rail and k.entity_type = x.entity_type
            and k.entity_id = x.entity_id
        join keys p on p.tenant_id = k.tenant_id and p.flow = k.flow and p.method = k.method
            and p.match_key = k.match_key and p.side <> k.side"""


def _scope_sql(model: SqlModel, keys: SqlModel, state: str) -> str:
    """Every object of the `$part` tenants within three counterpart-steps of a change, with its `reach`: 0 changed,
    1 re-matched, 2 and 3 read for their candidates only."""
    return f"""
        insert into {SCOPE}
        with keys as (select * from {keys.name} where {_in('part', 'tenant_id')}),
        saved as (select * from {state} where {_in('part', 'tenant_id')}),
        redecided as (  -- links whose latest decision is not the one they show
            select l.* from {model.name} l
            join (select tenant_id, substr(entity_id, 6) as link_id, max_by(observed_at, seq) as decided_at
                  from raw.recon_decisions where entity_id like 'link:%' and {_in('part', 'tenant_id')}
                  group by all) d on d.tenant_id = l.tenant_id and d.link_id = l.link_id
            where l.decided_at is distinct from d.decided_at
        ),
        changed as (
            select {_OBJECT} from ((select * from keys except select * from saved)
                                   union all (select * from saved except select * from keys))
            union select {_FROM} from redecided l
            union select {_TO} from redecided l
        ),
        rematched as (  -- and the other object of their links as they stand, which may be no candidate now
            select * from changed
            union {_counterparts("changed")}
            union select {_TO} from {model.name} l semi join changed x
                on x.tenant_id = l.tenant_id and x.rail = l.from_rail and x.entity_type = l.from_type
                and x.entity_id = l.from_id
            union select {_FROM} from {model.name} l semi join changed x
                on x.tenant_id = l.tenant_id and x.rail = l.to_rail and x.entity_type = l.to_type
                and x.entity_id = l.to_id
        ),
        near as (select * from rematched union {_counterparts("rematched")}),
        read as (select * from near union {_counterparts("near")}),
        reached as (
            select *, 0 as reach from changed
            union all select *, 1 from rematched
            union all select *, 2 from near
            union all select *, 3 from read
        )
        select {_OBJECT}, min(reach) from reached group by all
    """


def _ensure_state(conn: duckdb.DuckDBPyConnection, keys: SqlModel, state: str) -> None:
    """The saved key rows, (re)made empty, so that every tenant is matched whole, when missing or when the keys
    model's columns changed."""
    schema, table = state.split(".")
    columns = conn.execute(
        "select table_name, list(column_name || ' ' || data_type order by column_index) from duckdb_columns() "
        "where database_name = current_database() and (schema_name, table_name) in ((?, ?), (?, ?)) group by all",
        [schema, table, keys.schema, keys.table],
    ).fetchall()
    found = dict(columns)
    if found.get(table) == found.get(keys.table):
        return
    conn.execute(f"drop table if exists {state}")
    conn.execute(f"create table {state} as select * from {keys.name} where false")


def rematch_links(
    conn: duckdb.DuckDBPyConnection, model: SqlModel, keys: SqlModel, tenant_ids: list[str], *, full: bool
) -> Rematch:
    """Refresh the tenants' rows of `model` (inside the caller's transaction), re-matching only what changed."""
    state = f"meta.{keys.table}_matched"
    _ensure_state(conn, keys, state)
    in_run = {"tenants": tenant_ids}
    saved = [t for (t,) in conn.execute(  # matched before, and its links not deleted since
        f"select tenant_id from {state} where {_in('tenants', 'tenant_id')} "
        f"intersect select tenant_id from {model.name} where {_in('tenants', 'tenant_id')}", in_run).fetchall()]
    whole = list(tenant_ids) if full else [t for t in tenant_ids if t not in saved]
    part = [t for t in tenant_ids if t not in whole]
    conn.execute(f"delete from {SCOPE}")
    conn.execute(_scope_sql(model, keys, state), {"part": part})
    active = whole + [t for (t,) in conn.execute(f"select distinct tenant_id from {SCOPE}").fetchall()]
    touches = (
        f"(exists (select 1 from {SCOPE} x where x.reach <= 1 and x.tenant_id = m.tenant_id and x.rail = m.from_rail "
        "and x.entity_type = m.from_type and x.entity_id = m.from_id) "
        f"or exists (select 1 from {SCOPE} x where x.reach <= 1 and x.tenant_id = m.tenant_id and x.rail = m.to_rail "
        "and x.entity_type = m.to_type and x.entity_id = m.to_id))"
    )
    params = {"whole": whole, "active": active}
    conn.execute(
        f"delete from {model.name} m where {_in('active', 'm.tenant_id')} "
        f"and ({_in('whole', 'm.tenant_id')} or {touches})",
        params,
    )
    conn.execute(
        f"insert into {model.name} by name select * from ({model.body}) m "
        f"where {_in('active', 'm.tenant_id')} and ({_in('whole', 'm.tenant_id')} or {touches})",
        params,
    )
    changed_here = (
        f"exists (select 1 from {SCOPE} x where x.reach = 0 and x.tenant_id = s.tenant_id and x.rail = s.rail "
        "and x.entity_type = s.entity_type and x.entity_id = s.entity_id)"
    )
    conn.execute(f"delete from {state} s where {_in('whole', 's.tenant_id')} or {changed_here}", {"whole": whole})
    conn.execute(
        f"insert into {state} select * from {keys.name} s "
        f"where {_in('active', 's.tenant_id')} and ({_in('whole', 's.tenant_id')} or {changed_here})",
        params,
    )
    objects, in_whole, changed, rematched = fetch_one(conn, f"""
        select count(*), count(*) filter ({_in('whole', 'tenant_id')}),
            (select count(*) from {SCOPE} where reach = 0), (select count(*) from {SCOPE} where reach <= 1)
        from (select distinct {_OBJECT} from {keys.name} where {_in('tenants', 'tenant_id')})
    """, {"whole": whole, "tenants": tenant_ids})  # fmt: skip
    conn.execute(f"delete from {SCOPE}")
    return Rematch(objects, changed + in_whole, rematched + in_whole, whole)
