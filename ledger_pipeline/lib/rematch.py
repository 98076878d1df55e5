"""Re-match only the objects near a change: recon.links after an incremental sync.

Two objects are candidates when their rows in the keys table (recon.link_keys, refreshed just before: flow, method,
side, match key, amount, instant) pair up, so a link can change only if a row of one of its objects changed, or a
person decided about it. `meta.<keys>_matched` keeps a fingerprint of each object's key rows as the last matching
saw them (a 64-bit hash: a different one, or one missing either side, names an object that changed: new, edited or
deleted, a bank account turning savings, a payout's composition). What is re-matched, per tenant:

- `changed`: those objects, and the two objects of each link whose latest decision is not the one it shows;
- `rematched`: `changed`, their counterparts now (sharing a key) and before (their links): every object whose
  set of candidates may differ, so every link row to replace touches one of them;
- the model reads the objects two counterpart-steps further (meta.links_scope): a link's status counts the
  candidates of both its objects, and a counterpart's candidates are one step beyond it.

Link rows touching `rematched` are replaced; the rest stand. When no object or decision changed, no statement reads
the model: matching costs the fingerprints and their comparison only. A tenant with no saved keys or no links
(deleted), or a full rebuild, is matched whole. The result equals matching everything
(ledger_pipeline_tests/test_recon_rematch.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ledger_pipeline.lib.sql_models import SqlModel
from ledger_pipeline.lib.warehouse import fetch_one

SCOPE = "meta.links_scope"  # what the model reads of a tenant it matches in part (lib/warehouse.py makes it)
_OBJECT = "tenant_id, rail, entity_type, entity_id"
_SAME_OBJECT = " and ".join(f"{{a}}.{c} = {{b}}.{c}" for c in _OBJECT.split(", "))
_FROM = "l.tenant_id, l.from_rail, l.from_type, l.from_id"
_TO = "l.tenant_id, l.to_rail, l.to_type, l.to_id"


@dataclass(frozen=True)
class Rematch:
    """What one refresh matched: objects in all, how many changed and how many were re-matched (a tenant matched
    whole counts every object of it as both)."""

    objects: int
    changed: int
    rematched: int


def _in(tenants: str, column: str) -> str:
    """`column` is one of the tenants of the named parameter `tenants` (a list, maybe empty)."""
    return f"list_contains(${tenants}::varchar[], {column})"


def _same(a: str, b: str) -> str:
    return _SAME_OBJECT.format(a=a, b=b)


def _with_counterparts(conn: duckdb.DuckDBPyConnection, keys: SqlModel, into: str, of: str) -> None:
    """`into` := the objects of `of` and those sharing a key with one of them, on the other side: candidates or
    more. Temp tables, so that DuckDB plans each join knowing how few objects `of` holds."""
    conn.execute(f"""
        create or replace temp table {into} as
        select {_OBJECT} from {of}
        union
        select p.tenant_id, p.rail, p.entity_type, p.entity_id from {of} x
        join {keys.name} k on {_same("k", "x")}
        join {keys.name} p on p.tenant_id = k.tenant_id and p.flow = k.flow and p.method = k.method
            and p.match_key = k.match_key and p.side <> k.side
    """)  # fmt: skip


def _changed(conn: duckdb.DuckDBPyConnection, model: SqlModel, state: str, part: list[str]) -> None:
    """`_changed`: the objects of the `part` tenants whose fingerprint differs from the saved one, and the two
    objects of each link whose latest decision is not the one it shows."""
    conn.execute(f"""
        create or replace temp table _changed as
        select coalesce(f.tenant_id, s.tenant_id) as tenant_id, coalesce(f.rail, s.rail) as rail,
            coalesce(f.entity_type, s.entity_type) as entity_type, coalesce(f.entity_id, s.entity_id) as entity_id
        from (select * from _fingerprints where {_in('part', 'tenant_id')}) f
        full join (select * from {state} where {_in('part', 'tenant_id')}) s on {_same("f", "s")}
        where f.fingerprint is distinct from s.fingerprint
    """, {"part": part})  # fmt: skip
    conn.execute(f"""
        insert into _changed
        with redecided as (
            select l.* from {model.name} l
            join (select tenant_id, substr(entity_id, 6) as link_id, max_by(observed_at, seq) as decided_at
                  from raw.recon_decisions where entity_id like 'link:%' and {_in('part', 'tenant_id')}
                  group by all) d on d.tenant_id = l.tenant_id and d.link_id = l.link_id
            where l.decided_at is distinct from d.decided_at
        )
        (select {_FROM} from redecided l union select {_TO} from redecided l)
        except select * from _changed
    """, {"part": part})  # fmt: skip


def _scope(conn: duckdb.DuckDBPyConnection, model: SqlModel, keys: SqlModel) -> None:
    """meta.links_scope := the objects within three counterpart-steps of `_changed`, with their `reach`: 0 changed,
    1 re-matched (also the other object of their links as they stand, which may be no candidate now), 2 and 3 read
    for their candidates only."""
    _with_counterparts(conn, keys, "_rematched", "_changed")
    for here, there in ((("from_rail", "from_type", "from_id"), _TO), (("to_rail", "to_type", "to_id"), _FROM)):
        on = " and ".join(f"x.{a} = l.{b}" for a, b in zip(_OBJECT.split(", "), ("tenant_id", *here), strict=True))
        conn.execute(f"insert into _rematched select {there} from {model.name} l semi join _changed x on {on} "
                     "except select * from _rematched")  # fmt: skip
    _with_counterparts(conn, keys, "_near", "_rematched")
    _with_counterparts(conn, keys, "_read", "_near")
    conn.execute(f"delete from {SCOPE}")
    conn.execute(f"""
        insert into {SCOPE}
        select {_OBJECT}, min(reach) from (
            select *, 0 as reach from _changed union all select *, 1 from _rematched
            union all select *, 2 from _near union all select *, 3 from _read
        ) group by all
    """)  # fmt: skip


def rematch_links(
    conn: duckdb.DuckDBPyConnection, model: SqlModel, keys: SqlModel, tenant_ids: list[str], *, full: bool
) -> Rematch:
    """Refresh the tenants' rows of `model` (inside the caller's transaction), re-matching only what changed."""
    state = f"meta.{keys.table}_matched"
    conn.execute(f"create table if not exists {state} (tenant_id varchar not null, rail varchar not null, "
                 "entity_type varchar not null, entity_id varchar not null, fingerprint ubigint not null)")  # fmt: skip
    in_run = {"tenants": tenant_ids}
    conn.execute(f"""
        create or replace temp table _fingerprints as
        select {_OBJECT}, bit_xor(hash(k)) as fingerprint from {keys.name} k
        where {_in('tenants', 'tenant_id')} group by all
    """, in_run)  # fmt: skip
    saved = [t for (t,) in conn.execute(  # matched before, and its links not deleted since
        f"select tenant_id from {state} where {_in('tenants', 'tenant_id')} "
        f"intersect select tenant_id from {model.name} where {_in('tenants', 'tenant_id')}", in_run).fetchall()]
    whole = list(tenant_ids) if full else [t for t in tenant_ids if t not in saved]
    part = [t for t in tenant_ids if t not in whole]
    _changed(conn, model, state, part)
    changed = fetch_one(conn, "select count(*) from _changed")[0]
    rematched = _replace_near_changes(conn, model, keys, state, whole) if whole or changed else 0
    objects, in_whole = fetch_one(conn, f"select count(*), count(*) filter ({_in('whole', 'tenant_id')}) "
                                        "from _fingerprints", {"whole": whole})  # fmt: skip
    for temp in ("_fingerprints", "_changed"):
        conn.execute(f"drop table {temp}")
    return Rematch(objects, changed + in_whole, rematched + in_whole)


def _replace_near_changes(
    conn: duckdb.DuckDBPyConnection, model: SqlModel, keys: SqlModel, state: str, whole: list[str]
) -> int:
    """Replace the link rows of the `whole` tenants and those touching an object re-matched, and save the changed
    objects' fingerprints; the number re-matched in part. Skipped when nothing changed: no statement then reads
    the model."""
    _scope(conn, model, keys)
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
    conn.execute(f"delete from {state} s where {_in('whole', 's.tenant_id')} "
                 f"or exists (select 1 from _changed x where {_same('x', 's')})", {"whole": whole})  # fmt: skip
    conn.execute(f"insert into {state} select * from _fingerprints f where {_in('whole', 'f.tenant_id')} "
                 f"or exists (select 1 from _changed x where {_same('x', 'f')})", {"whole": whole})  # fmt: skip
    (rematched,) = fetch_one(conn, "select count(*) from _rematched")
    conn.execute(f"delete from {SCOPE}")
    for temp in ("_rematched", "_near", "_read"):
        conn.execute(f"drop table {temp}")
    return rematched
