"""The control totals compare what changed: the parties whose documents changed since the tenant's last
comparison that passed, with QBO's report filtered to them; the whole book on a first run, daily and when asked.

Each test drives real sync runs over the sandbox and reads the check's metadata and `meta.check_marks`. The first
starts from nothing (a first run compares the whole book); the others need a tenant whose book was compared
already and start from a copy of the session's shared ledger (shared_ledger.py), where acme is synced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg

from ledger_pipeline.rails.qbo.sandbox import Fault
from ledger_pipeline_tests.helpers import CHANGED_VENDORS

BILLS = dg.AssetKey(["mirror", "qbo_bills"])
AP_AGING = dg.AssetKey(["marts", "ap_aging"])
PAYABLES = "matches_agedpayables"


def _acme_realm(project) -> str:
    return project.registry.get("acme").connection("qbo").realm_id


def _payables(result: dg.ExecuteInProcessResult) -> tuple[bool, dict]:
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == PAYABLES]
    return check.passed, check.metadata["tenants"].value["acme"]


def _mark(project) -> tuple[int, datetime]:
    (row,) = project.query(
        "select log_seq, whole_book_at from meta.check_marks where check_name = ? and tenant_id = 'acme'", [PAYABLES]
    )
    return row


def _head(project) -> int:
    sql = "select max(seq) from raw.entity_log where tenant_id = 'acme' and entity_type in ('Bill', 'BillPayment')"
    return project.query(sql)[0][0]


def test_a_sync_compares_the_vendors_whose_documents_changed_and_a_quiet_one_asks_nothing(project):
    realm = project.add_tenant("acme")
    passed, first = _payables(project.sync("acme"))
    assert passed and first["compared"] == "whole book"
    owing = project.query(
        "select count(distinct vendor_id) from mirror.qbo_bills where balance <> 0 and not is_voided"
    )[0][0]
    assert first["vendors_compared"] == owing > 0
    mark, whole_at = _mark(project)
    assert mark == _head(project)

    project.sandbox.inject(realm, Fault("server_error", endpoint="reports", count=-1, status=500))
    passed, quiet = _payables(project.sync("acme"))
    assert passed, "nothing changed, so QBO's report was not asked for (it would have failed)"
    assert (quiet["compared"], quiet["vendors_compared"]) == (f"vendors changed after log seq {mark}", 0)
    project.sandbox.clear_faults(realm)

    project.sandbox.advance(timedelta(days=3))
    passed, changed = _payables(project.sync("acme"))

    expected = {row[0] for row in project.query(CHANGED_VENDORS, {"t": "acme", "mark": mark})}
    assert passed and changed["compared"] == f"vendors changed after log seq {mark}"
    assert changed["vendors_compared"] == len(expected) and 0 < len(expected) < owing
    assert _mark(project) == (_head(project), whole_at), "the mark moved on; the last whole-book time stayed"


def test_a_changed_vendor_that_disagrees_fails_every_run_until_the_report_agrees(shared_ledger_copy):
    project = shared_ledger_copy  # acme synced: its last sync compared its payables and set its mark
    realm = _acme_realm(project)
    vendor, bill = project.query(
        "select vendor_id, min(qbo_id) from mirror.qbo_bills where tenant_id = 'acme' and balance > 0 "
        "and not is_voided group by vendor_id order by vendor_id limit 1"
    )[0]
    mark, _ = _mark(project)
    project.sandbox.skew_report(realm, "AgedPayables", vendor, Decimal("7.00"))
    project.sandbox.touch(realm, "Bill", bill)

    for _ in range(2):  # the mark waits: the second run compares the same vendor again
        result = project.sync("acme", raise_on_error=False)
        passed, meta = _payables(result)
        assert not passed and [d["id"] for d in meta["first_differences"]] == [vendor]
        assert meta["first_differences"][0]["difference"] == "-7.00"
        assert AP_AGING not in {e.asset_key for e in result.get_asset_materialization_events()}
        assert _mark(project)[0] == mark

    project.sandbox.clear_report_skews(realm)
    passed, meta = _payables(project.sync("acme"))
    assert passed and meta["vendors_compared"] >= 1
    assert _mark(project)[0] == _head(project) > mark


def test_the_whole_book_comes_back_a_day_after_the_last_one(shared_ledger_copy):
    project = shared_ledger_copy
    day_ago = datetime.now(UTC) - timedelta(hours=25)
    conn = project.connect()
    try:
        conn.execute("update meta.check_marks set whole_book_at = ? where tenant_id = 'acme'", [day_ago])
    finally:
        conn.close()

    passed, meta = _payables(project.sync("acme", asset_selection=[BILLS]))

    assert passed and meta["compared"] == "whole book" and meta["vendors_compared"] > 0
    assert _mark(project)[1] > day_ago + timedelta(hours=24)


def test_a_realm_that_ignores_the_filter_costs_a_whole_report_not_a_false_alarm(shared_ledger_copy, monkeypatch):
    from ledger_pipeline.rails.qbo.sandbox import reports as sandbox_reports

    project = shared_ledger_copy
    realm = _acme_realm(project)
    (bill,) = project.query(
        "select min(qbo_id) from mirror.qbo_bills where tenant_id = 'acme' and balance > 0 and not is_voided"
    )[0]
    project.sandbox.touch(realm, "Bill", bill)
    monkeypatch.setattr(sandbox_reports, "_parties_param", lambda params, name: None)  # every vendor answered

    passed, meta = _payables(project.sync("acme"))

    assert passed and meta["compared"].startswith("vendors changed after log seq")
    assert meta["vendors_compared"] == 1
