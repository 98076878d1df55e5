"""A log rewritten wholesale with every hash recomputed passes chain verification, and is still caught:
by the chain heads each log materialisation recorded in Dagster's event log."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
import pytest

from ledger_pipeline import cli
from ledger_pipeline.defs.heads import recorded_heads
from ledger_pipeline.defs.qbo.assets import LOG_ASSETS
from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.lib import chain
from ledger_pipeline.lib.canonical import canonical_json, sha256_hex
from ledger_pipeline.lib.entity_log import LOG_COLUMNS
from ledger_pipeline.lib.verify import compare_heads, verify
from ledger_pipeline_tests.conftest import Project

# The log assets: their chain_intact checks record the heads in Dagster's event log. The tests that only look at
# the log and the heads sync these alone (mirrors, history and marts add steps, not evidence).
LOGS = [a.key for a in LOG_ASSETS]


@pytest.fixture
def persistent_project(project, fast_tmp_path):
    """The project on a Dagster instance kept in files (in memory when there is room: SQLite fsyncs every
    event), so the CLI can read its event log through DAGSTER_HOME."""
    home = fast_tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        defs = build_definitions(
            warehouse=project.defs.resources["warehouse"], qbo=project.qbo, tenants=project.defs.resources["tenants"]
        )
        yield Project(project.root, instance, project.qbo, defs), home


def rewrite_log_with_fresh_hashes(conn, tenant_id: str) -> str:
    """What an attacker with write access would do: change one bill's amount and recompute every hash after it."""
    rows = conn.execute(f"select {', '.join(LOG_COLUMNS)} from raw.entity_log order by seq").fetchall()
    rows = [dict(zip(LOG_COLUMNS, r)) for r in rows]
    target = next(r for r in rows if r["tenant_id"] == tenant_id and r["entity_type"] == "Bill")
    payload = json.loads(target["payload"])
    payload["TotalAmt"] = 1.0
    target["payload"] = canonical_json(payload)
    target["payload_hash"] = sha256_hex(target["payload"])
    heads: dict[tuple, str] = {}
    for row in rows:
        key = (row["tenant_id"], row["rail"], row["entity_type"])
        row["prev_hash"] = heads.get(key)
        row["row_hash"] = heads[key] = chain.row_hash(row)
    conn.execute("delete from raw.entity_log")
    conn.executemany(
        f"insert into raw.entity_log ({', '.join(LOG_COLUMNS)}) values ({', '.join('?' for _ in LOG_COLUMNS)})",
        [[r[c] for c in LOG_COLUMNS] for r in rows],
    )
    return target["entity_id"]


def test_rewritten_log_passes_chain_verification_but_not_the_recorded_heads(persistent_project, monkeypatch, capsys):
    project, home = persistent_project
    project.add_tenant("acme")
    project.sync("acme", asset_selection=LOGS)
    project.sandbox.advance(timedelta(days=2))
    project.sync("acme", asset_selection=LOGS)
    keys = LOGS
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(project.db_path))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert cli.main(["verify"]) == 0
    assert "chain heads recorded in Dagster's event log match" in capsys.readouterr().out

    conn = project.connect()
    try:
        rewrite_log_with_fresh_hashes(conn, "acme")
        assert verify(conn).ok, "the rewrite is internally consistent: chain verification alone cannot see it"
        problems = compare_heads(conn, recorded_heads(project.instance, keys, ["acme"]))
    finally:
        conn.close()

    assert problems and all("tenant acme" in p and "materialisation of run" in p for p in problems)
    assert any("Bill" in p for p in problems)
    assert cli.main(["verify", "--tenant", "acme"]) == 1
    err = capsys.readouterr().err
    assert "log rewritten or truncated" in err and "tenant acme, qbo Bill" in err


def test_chain_check_fails_after_a_rewrite_and_blocks_the_mirror(project):
    project.add_tenant("acme")
    project.sync("acme", asset_selection=LOGS)  # the heads the next run's check compares with
    conn = project.connect()
    try:
        rewrite_log_with_fresh_hashes(conn, "acme")
    finally:
        conn.close()

    result = project.sync("acme", raise_on_error=False)

    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    bills = checks[("raw/qbo_bills", "chain_intact")]
    assert not bills.passed
    assert "log rewritten or truncated" in " ".join(bills.metadata["problems"].value)
    assert checks[("raw/qbo_vendors", "chain_intact")].passed, "other entities' chains were not touched"
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "mirror/qbo_vendors" in materialized
    assert "stg/qbo_bills" not in materialized and "mirror/qbo_bills" not in materialized, "blocked by the check"
