"""A ledger and a tenant registry written by the code before rails had a registry (schema 4, fixtures/) open
with today's code and keep syncing: cursors gain an empty position and resume where they were, nothing is
logged twice, the chains stay intact, and the old registry loads as a QBO connection."""

from __future__ import annotations

import gzip
import shutil
from datetime import timedelta
from pathlib import Path

import dagster as dg

from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.defs.qbo.resources import QboResource
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.lib import cursors, warehouse
from ledger_pipeline.lib.tenants import TenantRegistry
from ledger_pipeline.lib.verify import verify
from ledger_pipeline.rails.qbo.rail import QboConnection
from ledger_pipeline.rails.qbo.sandbox import shared_sandbox

FIXTURES = Path(__file__).parent / "fixtures"
OLD_ENTITIES = ("Vendor", "Customer", "Account", "Bill", "Invoice", "BillPayment", "Payment")
SCALE = 0.02  # what the fixture was made at (fixtures/README.md)


def _old_project(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "ledger.duckdb"
    with gzip.open(FIXTURES / "ledger_schema4.duckdb.gz") as src, open(db, "wb") as dst:
        shutil.copyfileobj(src, dst)
    registry = tmp_path / "tenants.json"
    shutil.copy(FIXTURES / "tenants_schema4.json", registry)
    return db, registry


def _counts(db: Path) -> dict[str, int]:
    conn = warehouse.connect(db, read_only=True)
    try:
        return dict(conn.execute("select entity_type, count(*) from raw.entity_log group by 1").fetchall())
    finally:
        conn.close()


def _versions(db: Path) -> dict[tuple[str, str], int]:
    conn = warehouse.connect(db, read_only=True)
    try:
        rows = conn.execute("select entity_type, entity_id, count(*) from raw.entity_log group by 1, 2").fetchall()
        return {(entity, entity_id): n for entity, entity_id, n in rows}
    finally:
        conn.close()


def test_a_schema4_ledger_opens_migrates_and_keeps_syncing(tmp_path):
    db, registry = _old_project(tmp_path)
    before = _counts(db)
    logged_before = _versions(db)
    assert sum(before.values()) == 45 and set(before) <= set(OLD_ENTITIES)

    assert TenantRegistry(registry).get("acme").connection("qbo") == QboConnection("9130350000000001")

    state = tmp_path / "state"
    qbo = QboResource(state_dir=str(state), sandbox_scale=SCALE, sandbox_rate_limit=False)
    defs = build_definitions(
        warehouse=LedgerDuckDB(database=str(db)), qbo=qbo, tenants=TenantRegistryResource(path=str(registry))
    )
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(TENANTS.name, ["acme"])
    job = defs.resolve_job_def("sync_tenants")

    assert job.execute_in_process(partition_key="acme", instance=instance).success
    # Resumed at the old cursors: nothing logged before is logged again. New since the fixture was made: the Purchase
    # entity (its first sync reads it whole), the Ramp Card account in the sandbox's chart (the rail count finds
    # it, and the sweep logs it as the new object it is) and the tombstones CDC shows of objects the old ledger
    # never logged (made and deleted since its last sync).
    after_first = _versions(db)
    assert {key: after_first[key] for key in logged_before} == logged_before
    new = after_first.keys() - logged_before.keys()
    tombstones = {key for key in new if key[0] not in ("Account", "Purchase")}
    conn = warehouse.connect(db, read_only=True)
    try:
        ops = conn.execute("select entity_type, entity_id, op, source from raw.entity_log").fetchall()
    finally:
        conn.close()
    assert {(op, source) for entity, entity_id, op, source in ops if (entity, entity_id) in tombstones} <= {
        ("deleted", "cdc")}

    conn = warehouse.connect(db)
    try:
        assert warehouse.info(conn, "schema_version") == warehouse.SCHEMA_VERSION
        old_cursor = cursors.load(conn, "acme", "qbo", "Bill")
        assert old_cursor.last_synced_at is not None and old_cursor.position is None and old_cursor.resume is None
    finally:
        conn.close()

    shared_sandbox(state, SCALE, False).advance(timedelta(days=2))
    assert job.execute_in_process(partition_key="acme", instance=instance).success
    after_second = _counts(db)
    assert sum(after_second.get(e, 0) for e in OLD_ENTITIES) > sum(before.values())  # new versions logged

    conn = warehouse.connect(db, read_only=True)
    try:
        report = verify(conn, None)
        assert report.ok and report.rows == sum(after_second.values()), report.problems[:3]
        assert cursors.load(conn, "acme", "qbo", "Bill").last_synced_at > old_cursor.last_synced_at
    finally:
        conn.close()
