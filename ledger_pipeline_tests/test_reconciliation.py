"""Each reconciliation invariant broken on purpose: the matching check fails with metadata a person can act on.
(The healthy case, every check passing, is test_pipeline_sync.test_initial_sync_...)

Tests that break a synced tenant start from a copy of the session's shared ledger (shared_ledger.py), where acme
is synced and its checks passed; the ones about a new ledger or a never-synced tenant start from nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg

from ledger_pipeline.lib.entity_log import LogWriter, Observation
from ledger_pipeline_tests.helpers import failure_text, op_config, whole_book_config

BILLS = dg.AssetKey(["mirror", "qbo_bills"])
AP_AGING = dg.AssetKey(["marts", "ap_aging"])
ACME_FIRST_BILL = "select qbo_id from mirror.qbo_bills where tenant_id = 'acme' order by qbo_id limit 1"


def _checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}


def _realm(project) -> str:
    return project.registry.get("acme").connection("qbo").realm_id


def _tenant_meta(check: dg.AssetCheckEvaluation) -> dict:
    return check.metadata["tenants"].value["acme"]


def test_edited_mirror_row_fails_matches_log_naming_the_row(shared_ledger_copy):
    project = shared_ledger_copy
    conn = project.connect()
    try:
        bill_id = conn.execute(ACME_FIRST_BILL).fetchall()[0][0]
        conn.execute("update mirror.qbo_bills set total_amt = total_amt + 1 where tenant_id = 'acme' and qbo_id = ?",
                     [bill_id])  # fmt: skip
    finally:
        conn.close()

    # Nothing changed on the rail, so this run refreshes no bill: only a full check compares the untouched row
    # column for column (the incremental case is in test_matches_log_scope.py).
    result = project.sync(
        "acme", asset_selection=[BILLS], run_config=op_config("mirror__", full_check=True), raise_on_error=False
    )

    check = _checks(result)[("mirror/qbo_bills", "matches_log")]
    assert not check.passed
    assert check.metadata["scope"].value == "full"
    assert _tenant_meta(check)["differing_ids"] == [bill_id]
    assert _tenant_meta(check)["missing"] == 0


def test_deleted_mirror_row_fails_matches_log_and_holds_back_the_marts(shared_ledger_copy):
    project = shared_ledger_copy
    conn = project.connect()
    try:
        bill_id = conn.execute(ACME_FIRST_BILL).fetchall()[0][0]
        conn.execute("delete from mirror.qbo_bills where tenant_id = 'acme' and qbo_id = ?", [bill_id])
    finally:
        conn.close()

    result = project.sync("acme", asset_selection=[BILLS, AP_AGING], raise_on_error=False)

    check = _checks(result)[("mirror/qbo_bills", "matches_log")]
    assert not check.passed
    matches = _tenant_meta(check)
    assert matches["missing"] == 1 and matches["missing_ids"] == [bill_id]
    assert AP_AGING not in {e.asset_key for e in result.get_asset_materialization_events()}


def test_rail_moving_ahead_of_the_mirror_fails_the_rail_count(shared_ledger_copy):
    project = shared_ledger_copy
    project.sandbox.advance(timedelta(days=3))

    result = project.sync("acme", asset_selection=[BILLS], raise_on_error=False)

    check = _checks(result)[("mirror/qbo_bills", "rail_count_matches")]
    assert not check.passed
    assert _tenant_meta(check)["missing_from_mirror"], "new bills on the rail are named"


def test_report_disagreeing_with_the_mirror_fails_the_control_total(shared_ledger_copy):
    project = shared_ledger_copy
    realm = _realm(project)
    vendor_id = project.query(
        "select vendor_id from mirror.qbo_bills where tenant_id = 'acme' and balance > 0 and not is_voided "
        "order by vendor_id limit 1"
    )[0][0]
    project.sandbox.skew_report(realm, "AgedPayables", vendor_id, Decimal("12.34"))

    # None of the vendor's documents changed, as with a change the syncs missed: an hourly run compares only
    # the vendors whose documents changed, so only the whole book (the nightly audit, daily) shows it.
    hourly = project.sync("acme", asset_selection=[BILLS, AP_AGING], raise_on_error=False)
    check = _checks(hourly)[("mirror/qbo_bills", "matches_agedpayables")]
    assert check.passed and _tenant_meta(check)["vendors_compared"] == 0
    result = project.sync(
        "acme", asset_selection=[BILLS, AP_AGING], run_config=whole_book_config("AgedPayables"), raise_on_error=False
    )

    checks = _checks(result)
    check = checks[("mirror/qbo_bills", "matches_agedpayables")]
    assert not check.passed
    meta = _tenant_meta(check)
    assert meta["parties_differing"] == 1
    assert meta["first_differences"] == [
        {
            "id": vendor_id,
            "mirror": meta["first_differences"][0]["mirror"],
            "report": str(Decimal(meta["first_differences"][0]["mirror"]) + Decimal("12.34")),
            "difference": "-12.34",
        }
    ]
    assert checks[("mirror/qbo_bills", "matches_log")].passed
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert BILLS in materialized and AP_AGING not in materialized, "the blocking check held the mart back"


def test_unlinked_payment_fails_the_balance_invariant_naming_the_bill(shared_ledger_copy):
    project = shared_ledger_copy
    conn = project.connect()
    try:
        payment_id, payload = conn.execute(
            "select qbo_id, l.payload from mirror.qbo_bill_payments p join raw.qbo_bill_payments l on l.seq = p.log_seq "
            "where p.tenant_id = 'acme' and not p.is_voided and len(p.linked_bill_ids) = 1 order by qbo_id limit 1"
        ).fetchall()[0]
        payload = json.loads(payload)
        bill_id = payload["Line"][0]["LinkedTxn"][0]["TxnId"]
        del payload["Line"][0]["LinkedTxn"]
        payload["SyncToken"] = str(int(payload["SyncToken"]) + 1)
        conn.execute("begin")
        LogWriter(conn, "acme", "qbo", "BillPayment", "test-unlink", datetime.now(UTC)).append(
            [Observation(payment_id, payload, "query", source_version=payload["SyncToken"])]
        )
        conn.execute("commit")
    finally:
        conn.close()

    result = project.sync(
        "acme", asset_selection=[dg.AssetKey(["mirror", "qbo_bill_payments"]), BILLS],
        raise_on_error=False,
    )

    check = _checks(result)[("mirror/qbo_bills", "balance_matches_payments")]
    assert not check.passed
    meta = _tenant_meta(check)
    assert meta["violations"] == 1 and meta["sample"][0]["qbo_id"] == bill_id


def test_an_assertion_over_a_table_not_built_yet_fails_naming_it(project):
    """Materialising bills alone on a new ledger: the balance invariant reads the bill payments mirror too."""
    project.add_tenant("acme")

    result = project.sync("acme", asset_selection=[dg.AssetKey(["raw", "qbo_bills"]), BILLS], raise_on_error=False)

    assert not result.success
    text = failure_text(result)
    assert "balance_matches_payments on mirror.qbo_bills" in text and "mirror.qbo_bill_payments" in text
    assert "materialise them first" in text
    assert project.sync("acme").success, "with every table built the same assertion runs"


def test_stale_and_never_synced_tenants_fail_freshness(synced_acme):
    project = synced_acme  # acme synced once (at the session's start: well within the 180 minutes allowed)
    project.add_tenant("globex", company=1)
    freshness = project.defs.resolve_job_def("check_freshness")

    first = freshness.execute_in_process(instance=project.instance)
    conn = project.connect()
    try:
        conn.execute("update meta.sync_cursors set last_synced_at = last_synced_at - interval 5 hours")
    finally:
        conn.close()
    second = freshness.execute_in_process(instance=project.instance)

    (check,) = first.get_asset_check_evaluations()
    assert not check.passed and check.metadata["stale"].value == {"globex": "never synced"}
    (check,) = second.get_asset_check_evaluations()
    stale = check.metadata["stale"].value
    assert set(stale) == {"acme", "globex"} and "allowed 180" in stale["acme"]


def test_rail_fault_during_a_check_fails_it_naming_tenant_and_cause(shared_ledger_copy):
    from ledger_pipeline.rails.qbo.sandbox import Fault

    realm = _realm(shared_ledger_copy)
    project = shared_ledger_copy.with_qbo(max_retries=1, backoff_base=0.0)
    project.sandbox.inject(realm, Fault("server_error", endpoint="reports", count=-1, status=500))

    result = project.sync(
        "acme", asset_selection=[BILLS], run_config=whole_book_config("AgedPayables"), raise_on_error=False
    )

    assert not result.success
    message = failure_text(result)
    assert "tenant acme, rail qbo, reconciliation AgedPayables" in message and "500" in message
