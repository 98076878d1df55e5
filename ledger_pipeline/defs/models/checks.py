"""Checks run with every mirror and history refresh: rows valid, and exactly the log's entities or versions.

`matches_log` has two halves. The key and hash comparison (missing, extra, stale, duplicated) reads only
the log's ids, sequence numbers, ops and payload hashes, so it covers every entity of the tenant on every
run. The column-for-column comparison recomputes the model from the log (JSON typing of every version),
so per run it covers the entities the refresh of this step touched; a full check (nightly, or
`full_check`/`full_rebuild` in the run config, or a tenant's first refresh) covers every entity.
A history table's `matches_log` compares log sequence numbers instead of live entities: one row per
logged version, none other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import duckdb

from ledger_pipeline.lib.entity_scope import EntityScope
from ledger_pipeline.lib.mirrors import BATCH_ENTITIES, RefreshStats, logged_after
from ledger_pipeline.lib.sql_models import SqlModel

MIRROR_CHECKS = {
    "rows_valid": "No row of the mirror was rejected by its pandera contract (rejected rows sit in "
    "quarantine.mirror_rows with the reason, and stay in the log).",
    "matches_log": "Mirror plus quarantine hold exactly the live entities of the log, once each, with the "
    "payload hash of each entity's latest logged version (every entity, every run), and mirror rows equal, "
    "column for column, what the model computes from the log now (mirror = f(log)): for the entities this "
    "run refreshed, or for every entity with full_check or full_rebuild (metadata 'scope' says which).",
}
HISTORY_CHECKS = {
    "matches_log": "The history table holds one row per logged version of the entity, no other (every version, "
    "every run), and its rows equal, column for column, what the model computes from the log now: for the "
    "entities this run refreshed, or for every entity with full_check or full_rebuild (metadata 'scope').",
}
SAMPLE = 10
# A mirror that disagrees with its log must not feed the marts; quarantined rows alone do not stop them.
BLOCKING_CHECKS = {"matches_log"}
FULL = "full"


@dataclass(frozen=True)
class CheckScope:
    """Which log rows' entities one tenant's column-for-column comparison covers: (since, watermark], or all."""

    tenant_id: str
    full: bool
    since: int = -1
    watermark: int = -1

    @classmethod
    def after_refresh(cls, stats: RefreshStats, *, full_check: bool) -> CheckScope:
        """The entities this refresh touched; a first refresh (since = -1) wrote every row, so compare every row."""
        full = full_check or stats.full or stats.since < 0
        return cls(stats.tenant_id, full, stats.since, stats.watermark)


def mirror_check_results(
    conn: duckdb.DuckDBPyConnection, model: SqlModel, source: str, scopes: Sequence[CheckScope]
) -> list[dg.AssetCheckResult]:
    key = dg.AssetKey([model.schema, model.table])
    tenant_ids = [s.tenant_id for s in scopes]
    valid = _quarantined(conn, model, tenant_ids)
    counts = _key_and_hash_comparison(conn, model, source, tenant_ids)
    compared = _column_comparisons(conn, model, source, scopes, {t: c["live_in_log"] for t, c in counts.items()})
    matches = {t: counts[t] | compared[t] for t in tenant_ids}
    bad_valid = {t: v for t, v in valid.items() if v["quarantined"]}
    problems = ("missing", "extra", "stale", "duplicated", "differing_from_rebuild")
    return [
        dg.AssetCheckResult(
            asset_key=key,
            check_name="rows_valid",
            passed=not bad_valid,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "quarantined_rows": dg.MetadataValue.int(sum(v["quarantined"] for v in valid.values())),
                "tenants": dg.MetadataValue.json(valid),
            },
        ),
        _matches_log_result(key, matches, problems, totals=("live_in_log", "published")),
    ]


def _matches_log_result(
    key: dg.AssetKey, matches: dict[str, dict], problems: Sequence[str], *, totals: Sequence[str]
) -> dg.AssetCheckResult:
    """`matches_log` from each tenant's comparison: passed when no tenant has any of `problems`."""
    metadata = {"scope": dg.MetadataValue.text(_scope_summary(matches))}
    metadata |= {name: dg.MetadataValue.int(sum(m[name] for m in matches.values())) for name in totals}
    metadata["tenants"] = dg.MetadataValue.json(matches)
    passed = not any(m[p] for m in matches.values() for p in problems)
    return dg.AssetCheckResult(
        asset_key=key, check_name="matches_log", passed=passed, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata
    )


def _scope_summary(matches: dict[str, dict]) -> str:
    """'full', or 'incremental: N entities compared column for column' (naming any tenant compared in full)."""
    full = [t for t, m in matches.items() if m["scope"] == FULL]
    if len(full) == len(matches):
        return FULL
    compared = sum(m["compared_column_for_column"] for m in matches.values() if m["scope"] != FULL)
    text = f"incremental: {compared} entities compared column for column"
    return text + (f"; full for tenant(s) {', '.join(full)}" if full else "")


def _quarantined(conn: duckdb.DuckDBPyConnection, model: SqlModel, tenant_ids: list[str]) -> dict[str, dict]:
    """Per tenant: how many of its rows sit in quarantine, and the first few (by log order) with the reason."""
    rows = conn.execute(
        "select tenant_id, count(*), list({'entity_id': entity_id, 'reason': reason} order by log_seq)[1:?] "
        "from quarantine.mirror_rows where model = ? and list_contains(?::varchar[], tenant_id) group by tenant_id",
        [SAMPLE, model.name, tenant_ids],
    ).fetchall()
    found = {tenant: {"quarantined": count, "sample": sample} for tenant, count, sample in rows}
    return {t: found.get(t, {"quarantined": 0, "sample": []}) for t in tenant_ids}


def history_check_result(
    conn: duckdb.DuckDBPyConnection, model: SqlModel, source: str, scopes: Sequence[CheckScope]
) -> dg.AssetCheckResult:
    tenant_ids = [s.tenant_id for s in scopes]
    counts = _version_comparison(conn, model, source, tenant_ids)
    compared = _column_comparisons(conn, model, source, scopes, {t: c["entities_in_log"] for t, c in counts.items()})
    matches = {t: counts[t] | compared[t] for t in tenant_ids}
    problems = ("missing", "extra", "duplicated", "differing_from_rebuild")
    return _matches_log_result(
        dg.AssetKey([model.schema, model.table]), matches, problems, totals=("versions_in_log", "rows")
    )


def _column_comparisons(
    conn: duckdb.DuckDBPyConnection,
    model: SqlModel,
    source: str,
    scopes: Sequence[CheckScope],
    entities: dict[str, int],
) -> dict[str, dict]:
    """Per tenant: rows against the model recomputed from the log, for the entities its refresh touched, or all
    of them (a full scope, or most of the tenant touched: recomputing all is cheaper than listing the ids).
    The listed entities of every tenant are compared in one statement, whole tenants up to BATCH_ENTITIES
    entities a statement (planning the model costs ~8 ms a statement)."""
    refreshed = [s for s in scopes if not s.full and s.since != s.watermark]  # the others touched nothing
    logged = logged_after(conn, source, {s.tenant_id: s.since for s in refreshed},
                          {s.tenant_id: s.watermark for s in refreshed})  # fmt: skip
    touched = {t: ids for t, (_, ids) in logged.items()}
    listed = {}  # tenant -> the ids compared, for the tenants compared incrementally
    for scope in scopes:
        ids = touched.get(scope.tenant_id, [])
        if not scope.full and len(ids) * 2 <= entities[scope.tenant_id]:
            listed[scope.tenant_id] = ids
    pairs = [[t, i] for t, ids in listed.items() for i in ids]
    differing = _rows_differing_from_rebuild(conn, model, EntityScope.listed(pairs)) if pairs else {}
    whole = {s.tenant_id: entities[s.tenant_id] for s in scopes if s.tenant_id not in listed}
    for scope in EntityScope.whole_tenants(whole, BATCH_ENTITIES):
        differing |= _rows_differing_from_rebuild(conn, model, scope)
    compared = {}
    for scope in scopes:
        t = scope.tenant_id
        edited = differing.get(t, [])
        compared[t] = {
            "scope": "incremental" if t in listed else FULL,
            "compared_column_for_column": len(listed[t]) if t in listed else entities[t],
            "differing_from_rebuild": len(edited), "differing_ids": edited[:SAMPLE],
        }  # fmt: skip
    return compared


def _version_comparison(
    conn: duckdb.DuckDBPyConnection, model: SqlModel, source: str, tenant_ids: list[str]
) -> dict[str, dict]:
    """Per tenant: every log row of its chain against its history rows, by sequence number (no JSON read)."""
    rows = conn.execute(
        f"""
        with logged as (
            select tenant_id, seq, entity_id from {source} where list_contains($tenants::varchar[], tenant_id)
        ),
        stored as (
            select tenant_id, log_seq as seq from {model.name} where list_contains($tenants::varchar[], tenant_id)
        ),
        compared as (
            select coalesce(l.tenant_id, s.tenant_id) as tenant_id, coalesce(l.seq, s.seq) as seq, l.entity_id,
                l.seq is not null as in_log, s.seq is not null as stored
            from logged l full outer join stored s on l.tenant_id = s.tenant_id and l.seq = s.seq
        )
        select tenant_id,
            count(*) filter (in_log), count(distinct entity_id), count(*) filter (stored),
            count(*) filter (in_log and not stored), count(*) filter (stored and not in_log),
            count(*) - count(distinct seq),
            coalesce(min(seq, {SAMPLE}) filter (in_log and not stored), []),
            coalesce(min(seq, {SAMPLE}) filter (stored and not in_log), [])
        from compared group by tenant_id
        """,
        {"tenants": tenant_ids},
    ).fetchall()
    names = ("versions_in_log", "entities_in_log", "rows", "missing", "extra", "duplicated", "missing_seqs",
             "extra_seqs")  # fmt: skip
    return _per_tenant(rows, names, tenant_ids)


def _key_and_hash_comparison(
    conn: duckdb.DuckDBPyConnection, model: SqlModel, source: str, tenant_ids: list[str]
) -> dict[str, dict]:
    """Per tenant, every entity: latest (payload hash, op) in the log against mirror + quarantine, no JSON read."""
    rows = conn.execute(
        f"""
        with latest as (
            select tenant_id, entity_id, arg_max(payload_hash, seq) as payload_hash, arg_max(op, seq) as op
            from {source} where list_contains($tenants::varchar[], tenant_id) group by tenant_id, entity_id
        ),
        live as (select tenant_id, entity_id, payload_hash from latest where op <> 'deleted'),
        published as (
            select tenant_id, {model.key} as entity_id, payload_hash from {model.name}
            where list_contains($tenants::varchar[], tenant_id)
            union all
            select tenant_id, entity_id, payload_hash from quarantine.mirror_rows
            where model = $model and list_contains($tenants::varchar[], tenant_id)
        ),
        compared as (
            select
                coalesce(l.tenant_id, p.tenant_id) as tenant_id,
                coalesce(l.entity_id, p.entity_id) as entity_id,
                l.entity_id is not null as in_log,
                p.entity_id is not null as published,
                l.payload_hash is distinct from p.payload_hash as stale
            from live l full outer join published p on l.tenant_id = p.tenant_id and l.entity_id = p.entity_id
        )
        select tenant_id,
            count(*) filter (in_log), count(*) filter (published),
            count(*) filter (in_log and not published), count(*) filter (published and not in_log),
            count(*) filter (in_log and published and stale), count(*) - count(distinct entity_id),
            coalesce(min(entity_id, {SAMPLE}) filter (in_log and not published), []),
            coalesce(min(entity_id, {SAMPLE}) filter (published and not in_log), []),
            coalesce(min(entity_id, {SAMPLE}) filter (in_log and published and stale), [])
        from compared group by tenant_id
        """,
        {"tenants": tenant_ids, "model": model.name},
    ).fetchall()
    names = ("live_in_log", "published", "missing", "extra", "stale", "duplicated", "missing_ids", "extra_ids",
             "stale_ids")  # fmt: skip
    return _per_tenant(rows, names, tenant_ids)


def _per_tenant(rows: list[tuple], names: Sequence[str], tenant_ids: list[str]) -> dict[str, dict]:
    """Grouped comparison rows (tenant first) as {tenant: {name: value}}; a tenant with no rows at all has zeros."""
    found = {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}
    return {t: found.get(t) or {n: [] if n.endswith(("_ids", "_seqs")) else 0 for n in names} for t in tenant_ids}


def _rows_differing_from_rebuild(
    conn: duckdb.DuckDBPyConnection, model: SqlModel, scope: EntityScope
) -> dict[str, list[str]]:
    """{tenant: ids} of the scope's entities whose row is not, column for column, what the model computes from
    the log now (quarantined entities aside: a correlated `not exists` cost 70 ms against 19 for this `not in`).

    The scope's condition sits on the model's partition columns, so DuckDB pushes it through the window down
    to the log scan and only those entities' versions are typed (EXPLAIN ANALYZE: 115 of a tenant's 2,716 bill
    versions for 100 ids). A semi join against a table of ids is not pushed down: the whole tenant would be typed.
    """
    key = model.key
    on_model, model_params = scope.condition("m.tenant_id", f"m.{key}")
    on_stored, stored_params = scope.condition("tenant_id", key)
    rows = conn.execute(
        f"""
        with rebuilt as (
            select * from ({model.body}) m
            where {on_model} and [m.tenant_id, m.{key}] not in (
                select [tenant_id, entity_id] from quarantine.mirror_rows
                where model = ? and list_contains(?::varchar[], tenant_id)
            )
        ),
        stored as (select * from {model.name} where {on_stored}),
        differing as (
            (select * from stored except all select * from rebuilt)
            union all
            (select * from rebuilt except all select * from stored)
        )
        select tenant_id, list(distinct {key} order by {key}) from differing group by tenant_id
        """,
        [*model_params, model.name, scope.tenant_ids, *stored_params],
    ).fetchall()
    return dict(rows)
