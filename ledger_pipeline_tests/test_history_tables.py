"""History is a table refreshed like a mirror: every logged version, kept incrementally, checked against the log.

The as-of answers themselves are tested in test_history_asof.py; here, how the table is kept: a run refreshes
only the entities whose log grew, its rows equal the model recomputed from the log, and `matches_log` catches
missing, extra and duplicated versions on every run and a column edit of an untouched version nightly.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from ledger_pipeline.defs.resources import LedgerDuckDB
from ledger_pipeline.defs.schedules import nightly_audit
from ledger_pipeline.lib.sql_models import load_models
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES

LOG = dg.AssetKey(["raw", "qbo_bills"])
HISTORY = dg.AssetKey(["history", "qbo_bills"])
HISTORY_AFTER_LOG = [LOG, HISTORY]
MODEL = next(m for m in load_models() if m.name == "history.qbo_bills")
ACME_REALM = DEMO_COMPANIES[0].realm_id  # the company the synced_acme fixture's acme is on


def _history_events(result: dg.ExecuteInProcessResult) -> tuple[dg.AssetCheckEvaluation, dict]:
    (check,) = [c for c in result.get_asset_check_evaluations() if c.asset_key == HISTORY]
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == HISTORY]
    metadata = {k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()}
    return check, metadata


def _differences_from_model(project) -> int:
    """Rows of the history table and of the model recomputed from the log that are not in the other."""
    sql = f"""
        select count(*) from (
            (select * from history.qbo_bills except all select * from ({MODEL.body}))
            union all
            (select * from ({MODEL.body}) except all select * from history.qbo_bills)
        )
    """
    return project.query(sql)[0][0]


def _bill_ids(project, count: int) -> list[str]:
    return [r[0] for r in project.query("select qbo_id from mirror.qbo_bills order by qbo_id limit ?", [count])]


def _edit(project, *statements: tuple[str, list]) -> None:
    conn = project.connect()
    try:
        for sql, params in statements:
            conn.execute(sql, params)
    finally:
        conn.close()


def test_history_holds_every_logged_version_and_a_run_refreshes_only_the_changed_entities(synced_acme):
    project, realm = synced_acme, ACME_REALM  # acme synced once
    assert project.query(
        "select count(*) from duckdb_tables() where schema_name = 'history' and table_name = 'qbo_bills'"
    )[0][0] == 1
    for bill_id in _bill_ids(project, 3):
        project.sandbox.touch(realm, "Bill", bill_id)

    result = project.sync("acme", asset_selection=HISTORY_AFTER_LOG)

    check, metadata = _history_events(result)
    logged = project.query("select count(*) from raw.qbo_bills where tenant_id = 'acme'")[0][0]
    stored = project.query("select count(*) from history.qbo_bills where tenant_id = 'acme'")[0][0]
    assert check.passed and check.metadata["scope"].value == "incremental: 3 entities compared column for column"
    assert metadata["entities_refreshed"] == 3 and stored == logged > 3
    assert _differences_from_model(project) == 0
    current = project.query("select count(*) from history.qbo_bills where is_current and tenant_id = 'acme'")[0][0]
    assert current == project.query("select count(*) from mirror.qbo_bills where tenant_id = 'acme'")[0][0]


def test_missing_extra_and_duplicated_versions_are_caught_on_every_run(synced_acme):
    project = synced_acme  # acme synced once
    first, second, third = project.query(
        "select log_seq from history.qbo_bills where tenant_id = 'acme' order by log_seq limit 3"
    )
    _edit(
        project,
        ("delete from history.qbo_bills where log_seq = ?", [first[0]]),
        ("insert into history.qbo_bills select * replace (log_seq + 1000000 as log_seq) from history.qbo_bills "
         "where log_seq = ?", [second[0]]),
        ("insert into history.qbo_bills select * from history.qbo_bills where log_seq = ?", [third[0]]),
    )  # fmt: skip

    result = project.sync("acme", asset_selection=HISTORY_AFTER_LOG, raise_on_error=False)

    check, _ = _history_events(result)
    meta = check.metadata["tenants"].value["acme"]
    assert not check.passed
    assert (meta["missing"], meta["extra"], meta["duplicated"]) == (1, 1, 1)
    assert meta["missing_seqs"] == [first[0]] and meta["extra_seqs"] == [second[0] + 1000000]


def test_an_untouched_version_edited_in_place_is_caught_by_the_nightly_audit(synced_acme):
    project = synced_acme  # acme synced once
    (bill_id,) = _bill_ids(project, 1)
    _edit(project, ("update history.qbo_bills set doc_number = 'edited' where qbo_id = ?", [bill_id]))

    hourly = project.sync("acme", asset_selection=HISTORY_AFTER_LOG, raise_on_error=False)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", ["acme"])
        resources = {"tenants": project.defs.resources["tenants"]}
        with dg.build_schedule_context(instance, datetime.now(UTC), resources=resources) as tick:
            request = nightly_audit(tick)
    audit = project.defs.resolve_job_def("sync_tenants").execute_in_process(
        instance=project.instance, run_config=request.run_config, tags=request.tags,
        asset_selection=HISTORY_AFTER_LOG, raise_on_error=False,
    )  # fmt: skip

    assert _history_events(hourly)[0].passed, "a column edit of a version no run refreshed is outside the per-run scope"
    check, _ = _history_events(audit)
    assert not check.passed and check.metadata["scope"].value == "full"
    assert check.metadata["tenants"].value["acme"]["differing_ids"] == [bill_id]


@pytest.mark.parametrize(
    "outdated",
    [
        pytest.param(("drop table history.qbo_bills", f"create view history.qbo_bills as {MODEL.body}"), id="a-view"),
        pytest.param(("alter table history.qbo_bills add column retired varchar",), id="other-columns"),
    ],
)
def test_a_history_relation_the_model_no_longer_describes_is_rebuilt_from_the_log(synced_acme, outdated):
    """Ledgers written when history was a view, or before a model's columns changed, get the model's table."""
    project = synced_acme  # acme synced once
    # The SQL of this code differs from what the file was built with: the views fingerprint no longer matches.
    forget_fingerprint = ("delete from meta.ledger_info where key = 'views_fingerprint'", [])
    _edit(project, *((sql, []) for sql in outdated), forget_fingerprint)

    with LedgerDuckDB(database=str(project.db_path)).ledger() as conn:  # a writer's open: what the next run does first
        kinds = conn.execute(
            "select (select count(*) from duckdb_views() where schema_name = 'history' and view_name = 'qbo_bills'), "
            "(select count(*) from history.qbo_bills), "
            "(select count(*) from meta.model_watermarks where model = 'history.qbo_bills')"
        ).fetchall()[0]
    result = project.sync("acme", asset_selection=HISTORY_AFTER_LOG)

    assert kinds == (0, 0, 0), "an empty table of the model's columns, to be refilled from the first version"
    check, metadata = _history_events(result)
    assert check.passed and check.metadata["scope"].value == "full"
    logged = project.query("select count(*) from raw.qbo_bills")[0][0]
    assert metadata["rows_written"] == logged == project.query("select count(*) from history.qbo_bills")[0][0]
    assert _differences_from_model(project) == 0
