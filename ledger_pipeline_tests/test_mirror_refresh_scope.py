"""A mirror refresh costs what changed, and whatever changed it equals a rebuild from the log.

One changed bill out of a tenant's many: the refresh rewrites that bill's row
alone, and the model query it runs types and windows that bill's log versions
alone (EXPLAIN ANALYZE of the very statement it ran). Nothing changed: no model
query, no delete. Random creates, updates, invalid amounts, deletes and
re-creates across every QBO mirror: incremental refreshes, a full rebuild and
a refresh from scratch give the same mirror and quarantine rows.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl
import pytest

from ledger_pipeline.defs.models.checks import CheckScope, mirror_check_results
from ledger_pipeline.lib import mirrors, warehouse
from ledger_pipeline.lib.entity_log import LogWriter, Observation
from ledger_pipeline.lib.marts import refresh_tenant_tables
from ledger_pipeline.lib.mirrors import RefreshStats, refresh_tenants
from ledger_pipeline.lib.sql_models import SqlModel, load_models, log_source
from ledger_pipeline.lib.validation import row_failures
from ledger_pipeline.rails.qbo.entities import ENTITIES, QboEntity
from ledger_pipeline.rails.qbo.schemas import MIRROR_SCHEMAS
from ledger_pipeline_tests.shared_ledger import TENANTS, SharedLedger

MODELS = {m.name: m for m in load_models()}
QUARANTINE_ROWS = (
    "select model, tenant_id, entity_id, log_seq, payload_hash, reason from quarantine.mirror_rows order by all"
)


class RecordingConnection:
    """A DuckDB connection that remembers every statement (and its parameters) run through it."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self.statements: list[tuple[str, Any]] = []

    def execute(self, sql: str, params: Any = None) -> Any:
        self.statements.append((sql, params))
        return self.conn.execute(sql, params) if params is not None else self.conn.execute(sql)

    def sql(self, sql: str, params: Any = None) -> Any:
        self.statements.append((sql, params))
        return self.conn.sql(sql, params=params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


@pytest.fixture
def ledger(shared_ledger: SharedLedger, tmp_path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writable copy of the shared three-tenant ledger, its mirrors up to date."""
    with shared_ledger.copy(tmp_path / "ledger") as project:
        conn = warehouse.connect(project.db_path)
        try:
            yield conn
        finally:
            conn.close()


def mirror_model(entity: QboEntity) -> SqlModel:
    return MODELS[f"mirror.qbo_{entity.table}"]


def refresh_all(conn, model: SqlModel, tenant_ids: list[str], *, full: bool = False) -> list[RefreshStats]:
    """One run's refresh of a mirror for the tenants, validating with the mirror's contract."""
    return refresh_tenants(
        conn, model, tenant_ids, source=log_source(model, MODELS),
        validate=lambda frame: row_failures(MIRROR_SCHEMAS[model.name], frame),
        run_id="scope-test", now=datetime.now(UTC), full=full,
    )  # fmt: skip


def refresh(conn, model: SqlModel, tenant_id: str, *, full: bool = False) -> RefreshStats:
    (stats,) = refresh_all(conn, model, [tenant_id], full=full)
    return stats


def log(conn: duckdb.DuckDBPyConnection, tenant_id: str, entity: QboEntity, observations: list[Observation]) -> None:
    conn.execute("begin")
    LogWriter(conn, tenant_id, "qbo", entity.name, "scope-test", datetime.now(UTC)).append(observations)
    conn.execute("commit")


def latest(conn: duckdb.DuckDBPyConnection, tenant_id: str, entity: QboEntity) -> dict[str, tuple[str, dict]]:
    """{entity id: (op, payload)} of each entity's newest log row."""
    rows = conn.execute(
        f"select entity_id, op, payload from raw.qbo_{entity.table} where tenant_id = ? "
        "qualify row_number() over (partition by entity_id order by seq desc) = 1",
        [tenant_id],
    ).fetchall()
    return {entity_id: (op, json.loads(payload)) for entity_id, op, payload in rows}


def window_rows(conn: duckdb.DuckDBPyConnection, sql: str, params: Any) -> int:
    """Rows the statement's window operators took in, from DuckDB's own profile of running it."""
    plan = json.loads(conn.execute(f"explain (analyze, format json) {sql}", params).fetchall()[0][1])
    pending, total = list(plan["operator"]), 0
    while pending:
        node = pending.pop()
        pending.extend(node.get("children", []))
        if "WINDOW" in node.get("type", ""):
            total += node.get("intermediate_rows", node.get("operator_cardinality", 0))
    return total


def test_one_changed_bill_is_all_a_refresh_reads_and_writes(ledger):
    conn, bills = ledger, next(e for e in ENTITIES if e.name == "Bill")
    model = mirror_model(bills)
    changed, bystander = [r[0] for r in conn.execute(
        "select qbo_id from mirror.qbo_bills where tenant_id = 'acme' order by qbo_id limit 2").fetchall()]  # fmt: skip
    versions_in_tenant = conn.execute("select count(*) from raw.qbo_bills where tenant_id = 'acme'").fetchall()[0][0]
    since = conn.execute(
        "select log_seq from meta.model_watermarks where model = ? and tenant_id = 'acme'", [model.name]
    ).fetchall()[0][0]
    # A row the refresh must not touch: if it recomputed the bystander, the marker would be gone.
    conn.execute("update mirror.qbo_bills set doc_number = 'not recomputed' where tenant_id = 'acme' and qbo_id = ?",
                 [bystander])  # fmt: skip
    payload = latest(conn, "acme", bills)[changed][1] | {"DocNumber": "SCOPE-1"}
    log(conn, "acme", bills, [Observation(changed, payload, "query")])
    head = conn.execute("select max(seq) from raw.qbo_bills where tenant_id = 'acme'").fetchall()[0][0]
    versions = conn.execute(
        "select count(*) from raw.qbo_bills where tenant_id = 'acme' and entity_id = ?", [changed]
    ).fetchall()[0][0]

    recorder = RecordingConnection(conn)
    stats = refresh(recorder, model, "acme")

    assert (stats.entities_refreshed, stats.rows_written, stats.rows_quarantined) == (1, 1, 0)
    assert (stats.since, stats.watermark) == (since, head)
    docs = dict(conn.execute("select qbo_id, doc_number from mirror.qbo_bills where tenant_id = 'acme'").fetchall())
    assert docs[changed] == "SCOPE-1"
    assert docs[bystander] == "not recomputed"
    ran = recorder.statements
    model_queries = [(sql, params) for sql, params in ran if sql.startswith("select") and model.body in sql]
    assert len(model_queries) == 1
    assert 2 <= versions < versions_in_tenant
    assert window_rows(conn, *model_queries[0]) == versions, "the changed-id filter did not reach the log scan"

    recorder = RecordingConnection(conn)
    stats = refresh(recorder, model, "acme")

    assert (stats.entities_refreshed, stats.rows_written, stats.since, stats.watermark) == (0, 0, head, head)
    ran = [sql for sql, _ in recorder.statements]
    assert not [sql for sql in ran if model.body in sql or sql.lstrip().lower().startswith("delete")], ran


def model_query_tenants(recorder: RecordingConnection, model: SqlModel) -> list[list[str]]:
    """The tenants each model query the connection ran covers, in order (the scope's first parameter)."""
    queries = [p for sql, p in recorder.statements if sql.lstrip().startswith(("select", "with")) and model.body in sql]
    return [first if isinstance(first, list) else [first] for first, *_ in queries]


def test_a_run_over_many_tenants_recomputes_only_tenants_with_new_log_rows_and_validates_them_at_once(ledger):
    conn, bills = ledger, next(e for e in ENTITIES if e.name == "Bill")
    model = mirror_model(bills)
    marks = dict(conn.execute(
        "select tenant_id, log_seq from meta.model_watermarks where model = ?", [model.name]).fetchall())  # fmt: skip
    changed = conn.execute("select min(qbo_id) from mirror.qbo_bills where tenant_id = 'globex'").fetchall()[0][0]
    log(conn, "globex", bills, [Observation(changed, latest(conn, "globex", bills)[changed][1] | {"DocNumber": "N"},
                                            "query")])  # fmt: skip
    conn.execute("delete from meta.model_watermarks where model = ? and tenant_id = 'initech'", [model.name])
    validated: list[pl.DataFrame] = []

    def validate(frame: pl.DataFrame) -> dict[int, str]:
        validated.append(frame)
        return row_failures(MIRROR_SCHEMAS[model.name], frame)

    recorder = RecordingConnection(conn)
    stats = {s.tenant_id: s for s in refresh_tenants(
        recorder, model, list(TENANTS), source=log_source(model, MODELS), validate=validate,
        run_id="scope-test", now=datetime.now(UTC),
    )}  # fmt: skip

    assert model_query_tenants(recorder, model) == [["globex"], ["initech"]], "acme logged nothing past its watermark"
    (candidates,) = validated
    assert sorted(candidates["tenant_id"].unique()) == ["globex", "initech"], "one validation for the whole run"
    idle = stats["acme"]
    assert (idle.entities_refreshed, idle.rows_written, idle.since, idle.watermark) == (0, 0, marks["acme"],
                                                                                        marks["acme"])  # fmt: skip
    assert (stats["globex"].entities_refreshed, stats["globex"].rows_written) == (1, 1)
    initech_bills = conn.execute("select count(*) from mirror.qbo_bills where tenant_id = 'initech'").fetchall()[0][0]
    assert stats["initech"].since == -1 and stats["initech"].rows_written == initech_bills > 1
    docs = dict(conn.execute("select qbo_id, doc_number from mirror.qbo_bills where tenant_id = 'globex'").fetchall())
    assert docs[changed] == "N"
    after = snapshot(conn)
    assert dict(conn.execute(
        "select tenant_id, log_seq from meta.model_watermarks where model = ?", [model.name]).fetchall()) == {
        "acme": marks["acme"], "globex": stats["globex"].watermark, "initech": marks["initech"]}  # fmt: skip

    recorder = RecordingConnection(conn)
    refresh_all(recorder, model, list(TENANTS), full=True)
    assert model_query_tenants(recorder, model) == [list(TENANTS)], "a full rebuild: every tenant, one model query"
    assert snapshot(conn) == after, "the refreshes of the changed tenants equal a rebuild"


def test_the_changed_entities_of_every_tenant_are_recomputed_in_one_statement_and_no_others(ledger):
    conn, bills = ledger, next(e for e in ENTITIES if e.name == "Bill")
    model = mirror_model(bills)
    shared = [r[0] for r in conn.execute(
        "select qbo_id from mirror.qbo_bills group by qbo_id having count(distinct tenant_id) = ? order by qbo_id "
        "limit ?", [len(TENANTS), len(TENANTS)]).fetchall()]  # fmt: skip
    assert len(shared) == len(TENANTS), "the tenants share no bill ids: the test lost its edge case"
    # Each tenant changes a different one of the shared ids: its other tenants' rows of that id must stay as is.
    conn.execute("update mirror.qbo_bills set doc_number = 'not recomputed'")
    for tenant_id, bill_id in zip(TENANTS, shared, strict=True):
        payload = latest(conn, tenant_id, bills)[bill_id][1] | {"DocNumber": f"new in {tenant_id}"}
        log(conn, tenant_id, bills, [Observation(bill_id, payload, "query")])

    recorder = RecordingConnection(conn)
    stats = refresh_all(recorder, model, list(TENANTS))

    assert model_query_tenants(recorder, model) == [list(TENANTS)], "one model query for the run's changes"
    assert [(s.entities_refreshed, s.rows_written) for s in stats] == [(1, 1)] * len(TENANTS)
    recomputed = conn.execute(
        "select tenant_id, qbo_id, doc_number from mirror.qbo_bills "
        "where doc_number is distinct from 'not recomputed' order by all"
    ).fetchall()
    assert recomputed == sorted((t, b, f"new in {t}") for t, b in zip(TENANTS, shared, strict=True))


def test_matches_log_compares_every_tenants_touched_entities_in_one_query_each_under_its_own_tenant(ledger):
    conn, bills = ledger, next(e for e in ENTITIES if e.name == "Bill")
    model = mirror_model(bills)
    (shared,) = conn.execute(
        "select min(qbo_id) from (select qbo_id from mirror.qbo_bills group by qbo_id "
        "having count(distinct tenant_id) = ?)", [len(TENANTS)]).fetchall()[0]  # fmt: skip
    acme, globex, initech = TENANTS
    for tenant_id in TENANTS:  # the same id changes in every tenant; in acme to an amount its contract rejects
        payload = latest(conn, tenant_id, bills)[shared][1] | {"PrivateNote": f"touched in {tenant_id}"}
        log(conn, tenant_id, bills, [Observation(shared, payload | ({"TotalAmt": "a lot"} if tenant_id == acme
                                                                   else {}), "query")])  # fmt: skip
    stats = refresh_all(conn, model, list(TENANTS))
    wrong = "update mirror.qbo_bills set doc_number = 'wrong' where tenant_id = ? and qbo_id = ?"
    conn.execute(wrong, [globex, shared])

    recorder = RecordingConnection(conn)
    results = mirror_check_results(recorder, model, log_source(model, MODELS),
                                   [CheckScope.after_refresh(s, full_check=False) for s in stats])  # fmt: skip

    assert len(model_query_tenants(recorder, model)) == 1, "one column-for-column comparison for the run"
    (matches,) = [r for r in results if r.check_name == "matches_log"]
    found = matches.metadata["tenants"].value
    assert not matches.passed
    assert {t: (m["scope"], m["compared_column_for_column"], m["differing_ids"]) for t, m in found.items()} == {
        acme: ("incremental", 1, []), globex: ("incremental", 1, [shared]), initech: ("incremental", 1, [])}, (
        "acme's quarantined bill must not hide the other tenants' bill of the same id, nor be reported itself")
    quarantined = conn.execute("select tenant_id, entity_id from quarantine.mirror_rows where model = ?",
                               [model.name]).fetchall()  # fmt: skip
    assert (acme, shared) in quarantined

    recorder = RecordingConnection(conn)
    results = mirror_check_results(recorder, model, log_source(model, MODELS),
                                   [CheckScope.after_refresh(s, full_check=True) for s in stats])  # fmt: skip

    assert model_query_tenants(recorder, model) == [list(TENANTS)], "the whole tenants compared in one query"
    (matches,) = [r for r in results if r.check_name == "matches_log"]
    found = matches.metadata["tenants"].value
    assert {t: (m["scope"], m["differing_ids"]) for t, m in found.items()} == {
        acme: ("full", []), globex: ("full", [shared]), initech: ("full", [])}  # fmt: skip
    assert all(m["compared_column_for_column"] == m["live_in_log"] > 1 for m in found.values())


def test_a_mart_refresh_over_many_tenants_gives_each_tenant_its_own_rows_in_one_statement(ledger):
    conn = ledger
    # The marts over QBO alone (this ledger's tenants connect no other rail): the aging and spend marts.
    marts = [m for m in MODELS.values() if m.materialized == "tenant_table" and m.schema == "marts"
             and all(schema == "meta" or table.startswith("qbo_") for schema, table in m.depends_on)]  # fmt: skip
    assert len(marts) == 3
    for model in marts:
        conn.execute(f"delete from {model.name} where tenant_id = ?", [TENANTS[1]])  # lost rows: written again
        conn.execute(f"insert into {model.name} select * from {model.name} where tenant_id = ?", [TENANTS[0]])

        recorder = RecordingConnection(conn)
        counts = refresh_tenant_tables(recorder, [model], list(TENANTS))[model.name].rows

        alone = {t: conn.execute(f"select * from ({model.body}) m where m.tenant_id = ? order by all", [t]).fetchall()
                 for t in TENANTS}  # fmt: skip
        stored = {t: conn.execute(f"select * from {model.name} where tenant_id = ? order by all", [t]).fetchall()
                  for t in TENANTS}  # fmt: skip
        assert stored == alone, model.name
        assert counts == {t: len(rows) for t, rows in alone.items()} and all(counts.values()), model.name
        assert len([sql for sql, _ in recorder.statements if model.body in sql]) == 1, "one model statement per run"


def change_at_random(conn: duckdb.DuckDBPyConnection, rng: random.Random, tenant_id: str, entity: QboEntity) -> set:
    """Log creates, updates (one with an amount the contract rejects), deletes and re-creates; return the ids."""
    current = latest(conn, tenant_id, entity)
    live = sorted(i for i, (op, _) in current.items() if op != "deleted")
    gone = sorted(i for i, (op, _) in current.items() if op == "deleted")
    picked = rng.sample(live, min(len(live), 6))
    updates, deletes = picked[:4], picked[4:]
    observations = [
        Observation(i, current[i][1] | {"PrivateNote": f"note {rng.random():.6f}"}, "query") for i in updates
    ]
    if "TotalAmt" in current[updates[0]][1]:  # with its own note: the same id may get "a lot" in both rounds
        bad = {"TotalAmt": "a lot", "PrivateNote": f"bad amount {rng.random():.6f}"}
        observations[0] = Observation(updates[0], current[updates[0]][1] | bad, "query")
    observations += [Observation(i, {"Id": i, "status": "Deleted"}, "cdc", deleted=True) for i in deletes]
    template = current[live[0]][1]
    fresh = [str(900000 + rng.randrange(100000)) for _ in range(2)]
    observations += [Observation(i, template | {"Id": i}, "query") for i in fresh]
    observations += [Observation(i, template | {"Id": i}, "query") for i in gone[:1]]  # re-created
    log(conn, tenant_id, entity, observations)
    return {o.entity_id for o in observations}


def snapshot(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    tables = {e.table: conn.execute(f"select * from mirror.qbo_{e.table} order by all").fetchall() for e in ENTITIES}
    return tables | {"quarantine": conn.execute(QUARANTINE_ROWS).fetchall()}


def test_incremental_equals_rebuild_after_random_changes_in_every_mirror(ledger):
    conn, rng = ledger, random.Random(20261126)
    for _ in range(2):  # the second round changes what the first one refreshed incrementally
        changed = {(t, e.name): change_at_random(conn, rng, t, e) for t in TENANTS[:2] for e in ENTITIES}
        for tenant_id in TENANTS:
            for entity in ENTITIES:
                stats = refresh(conn, mirror_model(entity), tenant_id)
                assert not stats.full and stats.since >= 0
                assert stats.entities_refreshed == len(changed.get((tenant_id, entity.name), ())), entity.name
    incremental = snapshot(conn)
    assert incremental["quarantine"], "no invalid amount reached quarantine: the test lost its edge case"

    for entity in ENTITIES:  # one run over every tenant: their rows validated together
        refresh_all(conn, mirror_model(entity), list(TENANTS), full=True)
    assert snapshot(conn) == incremental

    conn.execute("delete from meta.model_watermarks")  # the next refresh starts from the beginning of the log
    for entity in ENTITIES:
        assert {s.since for s in refresh_all(conn, mirror_model(entity), list(TENANTS))} == {-1}
    assert snapshot(conn) == incremental


def test_a_run_rebuilt_in_batches_equals_one_in_a_single_pass(ledger, monkeypatch):
    conn = ledger
    rng = random.Random(7)
    for entity in ENTITIES:  # an invalid amount among the batches too
        change_at_random(conn, rng, TENANTS[0], entity)
    for entity in ENTITIES:
        refresh_all(conn, mirror_model(entity), list(TENANTS), full=True)
    single_pass = snapshot(conn)

    monkeypatch.setattr(mirrors, "BATCH_ENTITIES", 7)
    recomputed: list[str] = []
    fetch = mirrors.fetch_polars
    monkeypatch.setattr(mirrors, "fetch_polars", lambda c, sql, params: recomputed.append(sql) or fetch(c, sql, params))
    held: list[int] = []
    for entity in ENTITIES:
        contract = MIRROR_SCHEMAS[mirror_model(entity).name]
        stats = refresh_tenants(
            conn, mirror_model(entity), list(TENANTS), source=log_source(mirror_model(entity), MODELS),
            validate=lambda frame, contract=contract: held.append(frame.height) or row_failures(contract, frame),
            run_id="scope-test", now=datetime.now(UTC), full=True,
        )  # fmt: skip
        assert all(s.full for s in stats) and stats[0].entities_refreshed > 7, entity.name

    assert len(recomputed) > 2 * len(ENTITIES) * len(TENANTS), "the whole-tenant refreshes did not run in batches"
    assert held and max(held) <= 7, "a validation held more candidate rows than a batch"
    assert snapshot(conn) == single_pass
