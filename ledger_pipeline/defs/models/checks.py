"""Checks run with every mirror refresh: its rows are valid, and it holds exactly the log's live entities."""

from __future__ import annotations

import dagster as dg
import duckdb

from ledger_pipeline.lib.sql_models import SqlModel
from ledger_pipeline.lib.warehouse import fetch_one

MIRROR_CHECKS = {
    "rows_valid": "No row of the mirror was rejected by its pandera contract (rejected rows sit in "
    "quarantine.mirror_rows with the reason, and stay in the log).",
    "matches_log": "Mirror plus quarantine hold exactly the live entities of the log, once each, with the "
    "payload hash of each entity's latest logged version, and every mirror row equals, column for column, what "
    "the model computes from the log now (mirror = f(log)).",
}
SAMPLE = 10
# A mirror that disagrees with its log must not feed the marts; quarantined rows alone do not stop them.
BLOCKING_CHECKS = {"matches_log"}


def mirror_check_results(
    conn: duckdb.DuckDBPyConnection, model: SqlModel, source: str, tenant_ids: list[str]
) -> list[dg.AssetCheckResult]:
    key = dg.AssetKey([model.schema, model.table])
    valid = {t: _quarantined(conn, model, t) for t in tenant_ids}
    matches = {t: _log_comparison(conn, model, source, t) for t in tenant_ids}
    bad_valid = {t: v for t, v in valid.items() if v["quarantined"]}
    problems = ("missing", "extra", "stale", "duplicated", "differing_from_rebuild")
    bad_match = {t: m for t, m in matches.items() if any(m[p] for p in problems)}
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
        dg.AssetCheckResult(
            asset_key=key,
            check_name="matches_log",
            passed=not bad_match,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "live_in_log": dg.MetadataValue.int(sum(m["live_in_log"] for m in matches.values())),
                "published": dg.MetadataValue.int(sum(m["published"] for m in matches.values())),
                "tenants": dg.MetadataValue.json(matches),
            },
        ),
    ]


def _quarantined(conn: duckdb.DuckDBPyConnection, model: SqlModel, tenant_id: str) -> dict:
    rows = conn.execute(
        "select entity_id, reason from quarantine.mirror_rows where model = ? and tenant_id = ? "
        "order by log_seq",
        [model.name, tenant_id],
    ).fetchall()
    return {"quarantined": len(rows), "sample": [{"entity_id": e, "reason": r} for e, r in rows[:SAMPLE]]}


def _log_comparison(conn: duckdb.DuckDBPyConnection, model: SqlModel, source: str, tenant_id: str) -> dict:
    key = model.key
    conn.execute(
        f"""
        create or replace temp table _lp_compare as
        with latest as (
            select entity_id, arg_max(payload_hash, seq) as payload_hash, arg_max(op, seq) as op
            from {source} where tenant_id = ? group by entity_id
        ),
        live as (select entity_id, payload_hash from latest where op <> 'deleted'),
        published as (
            select {key} as entity_id, payload_hash from {model.name} where tenant_id = ?
            union all
            select entity_id, payload_hash from quarantine.mirror_rows where model = ? and tenant_id = ?
        )
        select
            coalesce(l.entity_id, p.entity_id) as entity_id,
            l.entity_id is not null as in_log,
            p.entity_id is not null as published,
            l.payload_hash is distinct from p.payload_hash as stale
        from live l full outer join published p on l.entity_id = p.entity_id
        """,
        [tenant_id, tenant_id, model.name, tenant_id],
    )
    counts = fetch_one(
        conn,
        "select count(*) filter (in_log), count(*) filter (published), "
        "count(*) filter (in_log and not published), count(*) filter (published and not in_log), "
        "count(*) filter (in_log and published and stale), count(*) - count(distinct entity_id) from _lp_compare",
    )
    samples = {
        kind: [r[0] for r in conn.execute(f"select entity_id from _lp_compare where {cond} order by entity_id "
                                          f"limit {SAMPLE}").fetchall()]
        for kind, cond in (
            ("missing_ids", "in_log and not published"),
            ("extra_ids", "published and not in_log"),
            ("stale_ids", "in_log and published and stale"),
        )
    }
    conn.execute("drop table _lp_compare")
    edited = _rows_differing_from_rebuild(conn, model, tenant_id)
    live, published, missing, extra, stale, duplicated = counts
    return {
        "live_in_log": live, "published": published, "missing": missing, "extra": extra,
        "stale": stale, "duplicated": duplicated, "differing_from_rebuild": len(edited),
        "differing_ids": edited[:SAMPLE], **samples,
    }  # fmt: skip


def _rows_differing_from_rebuild(conn: duckdb.DuckDBPyConnection, model: SqlModel, tenant_id: str) -> list[str]:
    """Ids whose mirror row is not, column for column, what the model computes from the log now."""
    key = model.key
    rows = conn.execute(
        f"""
        with rebuilt as (
            select * from ({model.body}) m
            where m.tenant_id = ?
              and m.{key} not in (select entity_id from quarantine.mirror_rows where model = ? and tenant_id = ?)
        ),
        stored as (select * from {model.name} where tenant_id = ?),
        differing as (
            (select * from stored except all select * from rebuilt)
            union all
            (select * from rebuilt except all select * from stored)
        )
        select distinct {key} from differing order by 1
        """,
        [tenant_id, model.name, tenant_id, tenant_id],
    ).fetchall()
    return [r[0] for r in rows]
