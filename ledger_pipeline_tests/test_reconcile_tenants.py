"""The reconciliation checks read the ledger's side for all of a run's tenants in one query and still name
each difference under its own tenant: the rail counts, the AP control total and the SQL assertions."""

from __future__ import annotations

from decimal import Decimal

import dagster as dg
import pytest

from ledger_pipeline.lib.reconcile import (
    assertion_violations,
    changed_parties,
    log_heads,
    open_balances,
    published_counts,
)
from ledger_pipeline.lib.sql_models import load_assertions, load_models
from ledger_pipeline.rails.qbo.sandbox import Fault
from ledger_pipeline_tests.helpers import CHANGED_VENDORS, failure_text, threads_left, whole_book_config
from ledger_pipeline_tests.shared_ledger import TENANTS, SharedLedger
from ledger_pipeline_tests.test_mirror_refresh_scope import RecordingConnection

BILLS = dg.AssetKey(["mirror", "qbo_bills"])
VOIDED_IS_ZERO = next(a for a in load_assertions() if a.table == "qbo_bills" and a.name == "voided_is_zero")
BILL_MODEL = next(m for m in load_models() if m.name == "mirror.qbo_bills")
SETTLED_BILL = "select min(qbo_id) from mirror.qbo_bills where tenant_id = ? and balance = 0 and total_amt <> 0"


@pytest.fixture
def project(shared_ledger: SharedLedger, tmp_path):
    with shared_ledger.copy(tmp_path / "ledger") as project:
        yield project


def test_each_check_names_only_the_tenant_whose_ledger_differs_in_a_run_over_two(project):
    realm = project.registry.get("acme").connection("qbo").realm_id
    conn = project.connect()
    try:
        (voided,) = conn.execute(SETTLED_BILL, ["acme"]).fetchone()
        conn.execute("update mirror.qbo_bills set is_voided = true where tenant_id = 'acme' and qbo_id = ?", [voided])
        (gone,) = conn.execute(SETTLED_BILL, ["globex"]).fetchone()
        conn.execute("delete from mirror.qbo_bills where tenant_id = 'globex' and qbo_id = ?", [gone])
        (vendor,) = conn.execute(
            "select min(vendor_id) from mirror.qbo_bills where tenant_id = 'acme' and balance > 0 and not is_voided"
        ).fetchone()
    finally:
        conn.close()
    project.sandbox.skew_report(realm, "AgedPayables", vendor, Decimal("12.34"))

    # The checks alone (as from the UI): a refresh would run matches_log, which blocks on the edited rows.
    tags = {"dagster/asset_partition_range_start": "acme", "dagster/asset_partition_range_end": "globex"}
    checks = {
        dg.AssetCheckKey(BILLS, name) for name in ("rail_count_matches", "matches_agedpayables", "voided_is_zero")
    }
    job = project.defs.resolve_job_def("sync_tenants").get_subset(asset_selection=set(), asset_check_selection=checks)
    result = job.execute_in_process(
        instance=project.instance, tags=tags, run_config=whole_book_config("AgedPayables"), raise_on_error=False
    )

    checks = {c.check_name: c.metadata["tenants"].value for c in result.get_asset_check_evaluations()}
    counts = checks["rail_count_matches"]
    assert {t: (c["ok"], c["missing_from_mirror"] if not c["ok"] else None) for t, c in counts.items()} == {
        "acme": (True, None), "globex": (False, [gone])}  # fmt: skip
    assert counts["acme"]["mirror_and_quarantine"] == counts["acme"]["rail_count"]
    totals = checks["matches_agedpayables"]
    assert {t: (c["ok"], c["parties_differing"]) for t, c in totals.items()} == {"acme": (False, 1), "globex": (True, 0)}
    assert totals["acme"]["first_differences"][0]["id"] == vendor
    voids = checks["voided_is_zero"]
    assert {t: (v["violations"], [row["qbo_id"] for row in v["sample"]]) for t, v in voids.items()} == {
        "acme": (1, [voided]), "globex": (0, [])}  # fmt: skip


def test_the_ledger_side_of_every_tenant_comes_from_one_query_and_equals_each_tenant_alone(project):
    conn = project.connect()
    try:
        (voided,) = conn.execute(SETTLED_BILL, ["initech"]).fetchone()
        conn.execute("update mirror.qbo_bills set is_voided = true where tenant_id = 'initech' and qbo_id = ?", [voided])
        recording = RecordingConnection(conn)
        tenants = list(TENANTS)

        violations = assertion_violations(recording, VOIDED_IS_ZERO.body, tenants)
        assert violations == {
            "acme": (0, [], {}), "globex": (0, [], {}), "initech": (1, [violations["initech"][1][0]], {})}  # fmt: skip
        assert violations["initech"][1][0]["qbo_id"] == voided
        assert len(recording.statements) == 2  # the counts of all three, the sample of the one with any

        recording.statements.clear()
        counts = published_counts(recording, BILL_MODEL, tenants)
        balances = open_balances(recording, "mirror.qbo_bills", "vendor_id", tenants)
        assert len(recording.statements) == 2
        for tenant in tenants:
            assert counts[tenant] == published_counts(conn, BILL_MODEL, [tenant])[tenant] > 0
            assert balances[tenant] == open_balances(conn, "mirror.qbo_bills", "vendor_id", [tenant])[tenant]
            assert sum(balances[tenant].values(), Decimal(0)) == conn.execute(
                "select coalesce(sum(balance), 0) from mirror.qbo_bills "
                "where tenant_id = ? and not is_voided and vendor_id is not null",
                [tenant],
            ).fetchone()[0]
        assert published_counts(conn, BILL_MODEL, ["nobody"]) == {"nobody": 0}
    finally:
        conn.close()


def test_changed_parties_and_their_balances_for_many_tenants_equal_each_tenant_alone(project):
    """Each tenant's own mark; one tenant compared whole while the others are scoped to their parties."""
    conn = project.connect()
    try:
        heads = {t: conn.execute(
            "select max(seq) from raw.entity_log where tenant_id = ? and entity_type in ('Bill', 'BillPayment')", [t]
        ).fetchone()[0] for t in TENANTS}  # fmt: skip
        since = {"acme": heads["acme"] - 40, "globex": heads["globex"] - 5, "initech": heads["initech"]}
        recording = RecordingConnection(conn)
        documents = ["Bill", "BillPayment"]
        views = ["raw.qbo_bills", "raw.qbo_bill_payments"]

        together = changed_parties(recording, views, "$.VendorRef.value", since)

        assert len(recording.statements) == 4  # per view: the changed documents, then their parties
        for tenant, mark in since.items():
            alone = changed_parties(conn, views, "$.VendorRef.value", {tenant: mark})
            assert together[tenant] == alone[tenant]
            expected = {row[0] for row in conn.execute(CHANGED_VENDORS, {"t": tenant, "mark": mark}).fetchall()}
            assert together[tenant] == expected
        assert together["acme"] and together["globex"] and together["initech"] == set()
        assert log_heads(conn, "qbo", documents, [*TENANTS, "nobody"]) == {**heads, "nobody": -1}

        scoped = {"acme": together["acme"], "initech": set()}
        balances = open_balances(conn, "mirror.qbo_bills", "vendor_id", list(TENANTS), scoped)
        whole = open_balances(conn, "mirror.qbo_bills", "vendor_id", list(TENANTS))
        assert balances["acme"] == {v: a for v, a in whole["acme"].items() if v in together["acme"]}
        assert balances["globex"] == whole["globex"] and balances["initech"] == {}
    finally:
        conn.close()


def test_a_rail_fault_of_the_middle_tenant_fails_the_check_naming_it_and_leaves_no_question_running(project):
    """The next tenants' reports are asked in threads while one is compared: a fault still lands on its tenant."""
    realm = project.registry.get("globex").connection("qbo").realm_id
    project = project.with_qbo(max_retries=1, backoff_base=0.0)
    project.sandbox.inject(realm, Fault("server_error", endpoint="reports", count=-1, status=500))
    tags = {"dagster/asset_partition_range_start": "acme", "dagster/asset_partition_range_end": "initech"}
    payables = {dg.AssetCheckKey(BILLS, "matches_agedpayables")}
    job = project.defs.resolve_job_def("sync_tenants").get_subset(asset_selection=set(), asset_check_selection=payables)

    result = job.execute_in_process(
        instance=project.instance, tags=tags, run_config=whole_book_config("AgedPayables"), raise_on_error=False
    )

    assert not result.success
    message = failure_text(result)
    assert "tenant globex, rail qbo, reconciliation AgedPayables" in message and "500" in message
    assert "tenant acme" not in message and "tenant initech" not in message
    assert not threads_left("rail-check")
