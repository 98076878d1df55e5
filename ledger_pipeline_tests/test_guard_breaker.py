"""The circuit breaker: a rail that lost its data, or whose clock went back, stops the sync before it commits,
until an operator approves one sync (issue 20, defect 3).

The tests start from a copy of the session's shared ledger (shared_ledger.py): acme synced, the sandbox moved
three days, acme synced again."""

from __future__ import annotations

import pytest

from ledger_pipeline import cli
from ledger_pipeline.rails.qbo.entities import ENTITIES
from ledger_pipeline_tests.helpers import failure_text
from ledger_pipeline_tests.shared_ledger import ADVANCE


def _approve(monkeypatch: pytest.MonkeyPatch, project, *argv: str) -> int:
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(project.db_path))
    return cli.main(["approve-sync", "--tenant", "acme", "--rail", "qbo", *argv])


def _state(project) -> list[tuple]:
    """The log and the cursors: what a halted sync must leave as they were."""
    return project.query("select count(*), max(seq) from raw.entity_log") + project.query(
        "select tenant_id, rail, entity_type, updated_since, cdc_since, rail_now from meta.sync_cursors order by all"
    )


def test_a_rail_clock_gone_back_halts_until_approved(shared_ledger_copy, monkeypatch, capsys) -> None:
    project = shared_ledger_copy
    start = project.sandbox.now - ADVANCE  # the clock of acme's first sync; its second read the clock now
    before = _state(project)
    project.sandbox.set_clock(start)  # the rail restored from an older state

    halted = project.sync("acme", raise_on_error=False)
    message = failure_text(halted)
    assert not halted.success
    assert "tenant acme, rail qbo, entity" in message and "circuit breaker: the rail's clock reads" in message
    assert "ledger-pipeline approve-sync --tenant acme --rail qbo" in message
    assert _state(project) == before
    assert project.sync("acme", raise_on_error=False).success is False  # still halted: nothing approved yet

    assert _approve(monkeypatch, project, "--reason", "rail restored from backup; its books are right", "--by", "ops") == 0
    assert "approval #1 recorded by ops" in capsys.readouterr().out
    approved = project.sync("acme")
    approvals = [
        m.metadata["breaker_approvals"].value
        for e in approved.get_asset_materialization_events()
        if "breaker_approvals" in (m := e.step_materialization_data.materialization).metadata
    ]
    assert approvals and all(a["acme"]["approved_by"] == "ops" for a in approvals)
    used = project.query("select used_by_run, used_for from meta.sync_approvals")
    assert used[0][0] == approved.run_id and "clock" in used[0][1]
    clocks = project.query("select distinct rail_now::date from meta.sync_cursors where tenant_id = 'acme'")
    assert clocks == [(start.date(),)]
    quiet = project.sync("acme")  # the next one needs no approval, and the approved one left nothing to read
    assert sum(
        e.step_materialization_data.materialization.metadata["appended"].value
        for e in quiet.get_asset_materialization_events()
        if "appended" in e.step_materialization_data.materialization.metadata
    ) == 0


def _counts(project) -> dict[str, int]:
    """Log rows per QBO entity table of tenant acme."""
    tables = {e.name: e.table for e in ENTITIES}
    rows = project.query("select entity_type, count(*) from raw.entity_log where tenant_id = 'acme' group by 1")
    return {tables[entity]: n for entity, n in rows if entity in tables}


def _deleted(project) -> int:
    return project.query("select count(*) from raw.entity_log where tenant_id = 'acme' and op = 'deleted'")[0][0]


def test_a_mass_disappearance_halts_until_approved(shared_ledger_copy, monkeypatch) -> None:
    """The same company, shrunk to a fifth with the clock unchanged: the sweep would log most of it as deleted."""
    project = shared_ledger_copy
    logged, deleted_before = _counts(project), _deleted(project)
    shrunk = project.with_qbo(sandbox_scale=0.05, state_dir=str(project.root / "state-lost"))
    shrunk.sandbox.advance(project.sandbox.now - shrunk.sandbox.now)  # a new sandbox starts at the first instant
    assert shrunk.sandbox.now == project.sandbox.now

    halted = shrunk.sync("acme", raise_on_error=False)
    message = failure_text(halted)
    assert not halted.success and "circuit breaker: the sync would log" in message and "deletions" in message
    assert "clock" not in message.split("circuit breaker:")[1].split("Nothing was committed")[0]
    stopped = {e.step_key.removeprefix("raw__qbo_") for e in halted.get_step_failure_events()}
    assert stopped and {t: n for t, n in _counts(project).items() if t in stopped} == {t: logged[t] for t in stopped}

    assert _approve(monkeypatch, project, "--reason", "the company archived most of its books") == 0
    # The smaller company's remaining books differ too, so the control totals may fail after it: the log is the point.
    approved = shrunk.sync("acme", raise_on_error=False)
    logged_assets = {e.asset_key.path[-1] for e in approved.get_asset_materialization_events()}
    assert {"qbo_vendors", "qbo_customers", "qbo_bills"} <= logged_assets
    assert _deleted(project) - deleted_before >= 10
    assert project.query("select count(*) from meta.sync_approvals where used_by_run is not null") == [(1,)]


def test_approve_sync_refuses_what_it_cannot_record(shared_ledger_copy, monkeypatch, capsys) -> None:
    project = shared_ledger_copy
    assert _approve(monkeypatch, project, "--reason", "  ") == 2
    assert "reason" in capsys.readouterr().err
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(project.db_path))
    argv = ["approve-sync", "--tenant", "nosuchco", "--rail", "qbo", "--reason", "x"]
    assert cli.main(argv) == 2
    assert "nosuchco" in capsys.readouterr().err
    assert project.query("select count(*) from meta.sync_approvals") == [(0,)]
