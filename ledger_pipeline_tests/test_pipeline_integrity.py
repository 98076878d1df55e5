"""Failures, quarantine, rebuilds and tamper detection, through real Dagster runs on the real DuckDB file.

Tests that need a synced tenant start from the session's shared ledger (shared_ledger.py: acme, globex and
initech synced, the sandbox moved three days, acme and globex synced again): a copy where they write, the file
itself where they only read."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from ledger_pipeline import cli
from ledger_pipeline.lib import cursors
from ledger_pipeline.lib.entity_log import LogWriter, Observation
from ledger_pipeline.rails.qbo.entities import ENTITIES
from ledger_pipeline.rails.qbo.sandbox import Fault
from ledger_pipeline_tests.helpers import failure_text, log_count, op_config
from ledger_pipeline_tests.shared_ledger import SharedLedger

BILLS = dg.AssetKey(["raw", "qbo_bills"])
BILL_MIRROR = dg.AssetKey(["mirror", "qbo_bills"])


def test_run_failing_half_way_leaves_no_partial_rows_and_cursor_unmoved(project):
    project = project.with_qbo(page_size=20, max_retries=1, backoff_base=0.0)
    realm = project.add_tenant("acme")
    project.sandbox.inject(realm, Fault("server_error", endpoint="query", after=3, count=-1, status=503))

    failed = project.sync(
        "acme", asset_selection=[BILLS], run_config=op_config("raw__qbo_bills", batch_size=20), raise_on_error=False
    )

    assert not failed.success
    message = failure_text(failed)
    assert "tenant acme" in message and "rail qbo" in message and "entity Bill" in message and "503" in message
    assert log_count(project) == 0
    conn = project.connect()
    try:
        assert cursors.load(conn, "acme", "qbo", "Bill") == cursors.Cursor()
    finally:
        conn.close()

    project.sandbox.clear_faults(realm)
    assert project.sync("acme", asset_selection=[BILLS]).success
    conn = project.connect()
    try:
        first = cursors.load(conn, "acme", "qbo", "Bill")
    finally:
        conn.close()
    logged = log_count(project)
    project.sandbox.advance(timedelta(days=3))
    project.sandbox.inject(realm, Fault("server_error", endpoint="any", after=1, count=-1, status=502))

    assert not project.sync("acme", asset_selection=[BILLS], raise_on_error=False).success
    assert log_count(project) == logged
    conn = project.connect()
    try:
        assert cursors.load(conn, "acme", "qbo", "Bill") == first
    finally:
        conn.close()


def test_record_failing_its_contract_is_quarantined_not_lost(shared_ledger_copy):
    project = shared_ledger_copy  # acme synced, its bill mirror up to date
    conn = project.connect()
    try:
        bill_id, payload = project_bill(conn, "acme")
        payload["TotalAmt"] = "twelve dollars"
        payload["SyncToken"] = str(int(payload["SyncToken"]) + 1)
        conn.execute("begin")
        LogWriter(conn, "acme", "qbo", "Bill", "test-drift", datetime.now(UTC)).append(
            [Observation(bill_id, payload, "query", source_version=payload["SyncToken"])]
        )
        conn.execute("commit")
    finally:
        conn.close()

    result = project.sync("acme", asset_selection=[BILL_MIRROR], raise_on_error=False)

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["rows_valid"].passed
    assert checks["matches_log"].passed
    sample = checks["rows_valid"].metadata["tenants"].value["acme"]["sample"]
    assert sample[0]["entity_id"] == bill_id and "total_amt" in sample[0]["reason"]
    # acme's rows: another tenant of the shared ledger may have a bill of the same id
    mirrored = project.query("select count(*) from mirror.qbo_bills where tenant_id = 'acme' and qbo_id = ?", [bill_id])
    assert mirrored == [(0,)]
    assert project.query(
        "select reason from quarantine.mirror_rows where tenant_id = 'acme' and entity_id = ?", [bill_id]
    )
    assert project.query(
        "select count(*) from raw.entity_log where entity_id = ? and run_id = 'test-drift'", [bill_id]
    ) == [(1,)]


def project_bill(conn, tenant_id: str) -> tuple[str, dict]:
    import json

    entity_id, payload = conn.execute(
        "select entity_id, payload from raw.qbo_bills where tenant_id = ? and op <> 'deleted' order by seq limit 1",
        [tenant_id],
    ).fetchall()[0]
    return entity_id, json.loads(payload)


def test_incremental_mirrors_equal_full_rebuild_row_for_row(shared_ledger_copy):
    # The shared ledger synced acme, moved the sandbox three days and synced it again: with one more round here,
    # acme's mirrors had two incremental refreshes after the first, as with three syncs from scratch.
    project = shared_ledger_copy
    project.sandbox.advance(timedelta(days=2))
    assert project.sync("acme").success
    tables = [f"mirror.qbo_{e.table}" for e in ENTITIES]
    incremental = {t: project.query(f"select * from {t} order by all") for t in tables}
    for table in tables:
        assert project.query(f"select count(*) from {table} where tenant_id = 'acme'")[0][0], table

    rebuilt = project.sync("acme", run_config=op_config("mirror__", full_rebuild=True))

    assert rebuilt.success
    for table in tables:
        assert incremental[table], table
        assert project.query(f"select * from {table} order by all") == incremental[table], table


@pytest.mark.parametrize(
    "tamper, expected",
    [
        ("update raw.entity_log set payload = '{\"Id\":\"x\"}' where seq = 5", "seq=5"),
        ("update raw.entity_log set op = 'updated' where seq = 7", "seq=7"),
        ("delete from raw.entity_log where seq = 9", "seq=10"),
        (
            "insert into raw.entity_log select seq + 1000000, tenant_id, rail, entity_type, entity_id, op, source, "
            "source_version, source_updated_at, observed_at, payload, changes, payload_hash, prev_hash, row_hash, "
            "run_id from raw.entity_log where seq = 3",
            "seq=1000003",
        ),
    ],
    ids=["edited-payload", "edited-op", "deleted", "inserted"],
)
def test_verify_names_the_first_bad_row(shared_ledger: SharedLedger, tmp_path, monkeypatch, capsys, tamper, expected):
    ledger = shared_ledger.project  # read only: the tampering is done to a copy of its file
    # acme was synced first: the rows tampered with (seq 3 to 10) are its own, and each one's chain goes on after it.
    assert ledger.query("select distinct tenant_id from raw.entity_log where seq between 3 and 10") == [("acme",)]
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(ledger.db_path))
    assert cli.main(["verify"]) == 0
    assert "OK" in capsys.readouterr().out

    copy = tmp_path / "tampered.duckdb"
    shutil.copy(ledger.db_path, copy)
    import duckdb

    conn = duckdb.connect(str(copy))
    conn.execute(tamper)
    conn.close()
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(copy))

    assert cli.main(["verify", "--tenant", "acme"]) == 1
    assert expected in capsys.readouterr().err
