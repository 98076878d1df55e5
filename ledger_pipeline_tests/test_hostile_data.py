"""Hostile and odd data through real syncs: the log keeps every payload verbatim, valid oddities reach the
mirrors with the right values, invalid ones are quarantined with the reason and fail `rows_valid`, and the
rest of the tenant is published."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.defs.qbo.resources import QboResource
from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.rails.qbo.entities import ENTITIES
from ledger_pipeline.rails.qbo.sandbox.drift import SHARED_DOC_NUMBER, SQL_LOOKING_ID, UNICODE_TEXT
from ledger_pipeline.rails.qbo.schemas import EXACT_MONEY
from ledger_pipeline_tests.conftest import TEST_SCALE, Project
from ledger_pipeline_tests.helpers import mirror, truth
from ledger_pipeline_tests.rail_faults_support import assert_log_verifies

NOT_A_NUMBER = f"{EXACT_MONEY} (got None)"
MARTS = {"marts/ap_aging", "marts/ar_aging", "marts/vendor_spend"}


@dataclass
class Hostile:
    project: Project
    realm: str
    targets: dict[tuple[str, str], str]  # (entity, kind) -> real Id
    first: dg.ExecuteInProcessResult
    rerun: dg.ExecuteInProcessResult
    logged_after_first: int

    def payload(self, entity: str, entity_id: str) -> dict:
        """The newest logged payload of an object, parsed."""
        rows = self.project.query("select payload from raw.entity_log where tenant_id = 'acme' and entity_type = ? "
                                  "and entity_id = ? order by seq desc limit 1", [entity, entity_id])
        return json.loads(rows[0][0])



def _checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}


def _pick(bills: dict[str, dict], deposits: dict[str, dict], purchases: dict[str, dict]) -> dict[tuple[str, str], str]:
    """Paid bills (no open balance, so the AP control total is unaffected) for what must be quarantined,
    unpaid ones for odd but valid data; deposits and purchases for both."""
    paid = sorted((i for i, b in bills.items() if b["Balance"] == 0 and b["TotalAmt"] and b["LinkedTxn"]), key=int)
    unpaid = sorted((i for i, b in bills.items() if b["Balance"] == b["TotalAmt"] > 0 and not b["LinkedTxn"]),
                    key=int)
    bad = ("type_change", "missing_required", "extra_decimals", "negative", "sql_id")
    odd = ("new_field", "unicode", "long_note", "zero", "far_past", "far_future", "shared_doc_number", "dup2")
    return {**{("Bill", k): paid[n] for n, k in enumerate(bad)}, **{("Bill", k): unpaid[n] for n, k in enumerate(odd)},
            ("Vendor", "unicode"): "2", ("Vendor", "negative"): "3", ("Customer", "missing_required"): "4",
            ("Account", "type_change"): "5",
            **dict(zip([("Deposit", k) for k in ("type_change", "missing_required", "unicode")],
                       sorted(deposits, key=int))),
            **dict(zip([("Purchase", k) for k in ("type_change", "missing_required", "unicode")],
                       sorted(purchases, key=int)))}  # fmt: skip


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Hostile:
    root: Path = tmp_path_factory.mktemp("hostile")
    qbo = QboResource(state_dir=str(root / "state"), sandbox_scale=TEST_SCALE, sandbox_rate_limit=False)
    defs = build_definitions(warehouse=LedgerDuckDB(database=str(root / "ledger.duckdb")), qbo=qbo,
                             tenants=TenantRegistryResource(path=str(root / "tenants.json")))
    with dg.DagsterInstance.ephemeral() as instance:
        project = Project(root, instance, qbo, defs)
        realm = project.add_tenant("acme")
        targets = _pick(*(project.sandbox.live_objects(realm, e) for e in ("Bill", "Deposit", "Purchase")))
        for (entity, kind), object_id in targets.items():
            project.sandbox.drift(realm, entity, object_id, "shared_doc_number" if kind == "dup2" else kind)
        first = project.sync("acme", raise_on_error=False)
        logged = project.query("select count(*) from raw.entity_log")[0][0]
        rerun = project.sync("acme", raise_on_error=False)
        yield Hostile(project, realm, targets, first, rerun, logged)


def test_the_log_keeps_every_hostile_payload_verbatim(hostile):
    sandbox = hostile.project.sandbox
    for (entity, kind), object_id in hostile.targets.items():
        logged_id = SQL_LOOKING_ID if kind == "sql_id" else object_id
        assert hostile.payload(entity, logged_id) == sandbox.live_objects(hostile.realm, entity)[logged_id], kind

    def bill(kind: str) -> dict:
        return hostile.payload("Bill", hostile.targets[("Bill", kind)])

    changed = bill("type_change")
    assert changed["TotalAmt"].endswith(" USD") and changed["Line"][0]["Amount"].endswith(" USD")
    assert "VendorRef" not in bill("missing_required")
    assert len(str(bill("extra_decimals")["TotalAmt"]).split(".")[1]) == 3
    assert len(bill("long_note")["PrivateNote"]) == 4000
    stored = hostile.project.query("select entity_id, payload ->> '$.Id' from raw.entity_log where entity_id "
                                   "like '%drop table%'")
    assert stored == [(SQL_LOOKING_ID, SQL_LOOKING_ID)]  # data, quotes and all: nothing was executed
    assert hostile.project.query("select count(*) from raw.entity_log")[0][0] == hostile.logged_after_first
    assert_log_verifies(hostile.project)


def test_invalid_rows_are_quarantined_with_their_reasons(hostile):
    t = hostile.targets
    negative = Decimal(str(hostile.payload("Bill", t[("Bill", "negative")])["TotalAmt"]))
    assert negative < 0
    rows = hostile.project.query("select model, entity_id, reason from quarantine.mirror_rows where tenant_id = 'acme'")
    assert {(m, i): r for m, i, r in rows} == {
        ("mirror.qbo_bills", t[("Bill", "type_change")]):
            f"line_amount_total: {NOT_A_NUMBER}; total_amt: {NOT_A_NUMBER}",
        ("mirror.qbo_bills", t[("Bill", "missing_required")]): "vendor_id: not_nullable (got None)",
        ("mirror.qbo_bills", t[("Bill", "extra_decimals")]):
            f"line_amount_total: {NOT_A_NUMBER}; total_amt: {NOT_A_NUMBER}",
        ("mirror.qbo_bills", t[("Bill", "negative")]): f"total_amt: greater_than_or_equal_to(0) (got {negative:.2f})",
        ("mirror.qbo_bills", SQL_LOOKING_ID): f"qbo_id: str_matches('^[0-9]{{1,20}}$') (got {SQL_LOOKING_ID})",
        ("mirror.qbo_customers", t[("Customer", "missing_required")]): "display_name: not_nullable (got None)",
        ("mirror.qbo_accounts", t[("Account", "type_change")]): f"current_balance: {NOT_A_NUMBER}",
        ("mirror.qbo_deposits", t[("Deposit", "type_change")]):
            f"line_amount_total: {NOT_A_NUMBER}; total_amt: {NOT_A_NUMBER}",
        ("mirror.qbo_deposits", t[("Deposit", "missing_required")]): "deposit_account_id: not_nullable (got None)",
        ("mirror.qbo_purchases", t[("Purchase", "type_change")]):
            f"line_amount_total: {NOT_A_NUMBER}; total_amt: {NOT_A_NUMBER}",
        ("mirror.qbo_purchases", t[("Purchase", "missing_required")]): "account_id: not_nullable (got None)",
    }


def test_rows_valid_fails_where_rows_were_quarantined_and_every_other_check_passes(hostile):
    checks = _checks(hostile.first)
    failing = {key for key, check in checks.items() if not check.passed}
    assert failing == {("mirror/qbo_bills", "rows_valid"), ("mirror/qbo_customers", "rows_valid"),
                       ("mirror/qbo_accounts", "rows_valid"), ("mirror/qbo_deposits", "rows_valid"),
                       ("mirror/qbo_purchases", "rows_valid")}
    bills = checks[("mirror/qbo_bills", "rows_valid")]
    assert bills.metadata["quarantined_rows"].value == 5
    sample = bills.metadata["tenants"].value["acme"]["sample"]
    assert {s["entity_id"] for s in sample} == {hostile.targets[("Bill", k)] for k in
                                                ("type_change", "missing_required", "extra_decimals", "negative")} | {
        SQL_LOOKING_ID}
    reasons = dict(hostile.project.query("select entity_id, reason from quarantine.mirror_rows "
                                         "where model = 'mirror.qbo_bills'"))
    assert {s["entity_id"]: s["reason"] for s in sample} == reasons
    assert {key for key, check in _checks(hostile.rerun).items() if not check.passed} == failing  # still, no more


def test_the_rest_of_the_tenant_is_published(hostile):
    project, realm = hostile.project, hostile.realm
    quarantined = set(project.query("select model, entity_id from quarantine.mirror_rows"))
    for entity in ENTITIES:
        model = f"mirror.qbo_{entity.table}"
        expected = {i: h for i, h in truth(project, realm, entity).items() if (model, i) not in quarantined}
        assert mirror(project, "acme", entity) == expected, entity.name
    materialized = {e.asset_key.to_user_string() for e in hostile.first.get_asset_materialization_events()}
    assert MARTS <= materialized
    assert not [e for e in hostile.first.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]


def test_valid_odd_data_reaches_the_mirror_with_the_right_values(hostile):
    project, t = hostile.project, hostile.targets
    columns = "qbo_id, total_amt, balance, line_amount_total, txn_date, due_date, doc_number, private_note, vendor_id"
    rows = {r[0]: r for r in project.query(f"select {columns} from mirror.qbo_bills where tenant_id = 'acme'")}
    for kind in ("new_field", "unicode", "long_note", "zero", "far_past", "far_future", "shared_doc_number", "dup2"):
        payload = hostile.payload("Bill", t[("Bill", kind)])
        expected = (
            payload["Id"], Decimal(str(payload["TotalAmt"])), Decimal(str(payload["Balance"])),
            sum((Decimal(str(line["Amount"])) for line in payload["Line"]), Decimal(0)),
            date.fromisoformat(payload["TxnDate"]), date.fromisoformat(payload["DueDate"]), payload.get("DocNumber"),
            payload.get("PrivateNote"), payload["VendorRef"]["value"],
        )
        assert rows[payload["Id"]] == expected, kind
    assert "ledgersandboxdriftfield" not in {c.lower() for (c,) in project.query(
        "select column_name from information_schema.columns where table_name = 'qbo_bills'")}
    assert rows[t[("Bill", "zero")]][1:4] == (0, 0, 0)
    assert rows[t[("Bill", "far_past")]][4] == date(1, 1, 1)
    assert rows[t[("Bill", "far_future")]][5] == date(9999, 12, 31)
    assert len(rows[t[("Bill", "long_note")]][7]) == 4000
    assert rows[t[("Bill", "unicode")]][7] == f"{UNICODE_TEXT} #{t[('Bill', 'unicode')]}"
    shared = project.query("select qbo_id from mirror.qbo_bills where doc_number = ? order by qbo_id",
                           [SHARED_DOC_NUMBER])
    assert sorted(i for (i,) in shared) == sorted([t[("Bill", "shared_doc_number")], t[("Bill", "dup2")]])
    vendors = dict(project.query("select qbo_id, display_name from mirror.qbo_vendors"))
    assert vendors[t[("Vendor", "unicode")]] == f"{UNICODE_TEXT} #{t[('Vendor', 'unicode')]}"
    credit = project.query("select balance from mirror.qbo_vendors where qbo_id = ?", [t[("Vendor", "negative")]])
    assert credit[0][0] < 0  # a vendor credit is published as it is
    deposit = t[("Deposit", "unicode")]
    noted = project.query("select private_note, payout_id from mirror.qbo_deposits where qbo_id = ?", [deposit])
    assert noted == [(f"{UNICODE_TEXT} #{deposit}", None)]  # the note no longer names its payout: none is made up
    purchase = t[("Purchase", "unicode")]
    noted = project.query("select private_note, ramp_transaction_id from mirror.qbo_purchases where qbo_id = ?",
                          [purchase])
    assert noted == [(f"{UNICODE_TEXT} #{purchase}", None)]  # nor its card transaction


def test_a_quarantined_open_bill_holds_back_the_ap_marts_only(project):
    realm = project.add_tenant("acme")
    bills = project.sandbox.live_objects(realm, "Bill")
    oid = min((i for i, b in bills.items() if b["Balance"] == b["TotalAmt"] > 0 and not b["LinkedTxn"]), key=int)
    project.sandbox.drift(realm, "Bill", oid, "missing_required")

    result = project.sync("acme", raise_on_error=False)

    checks = _checks(result)
    failing = {key for key, check in checks.items() if not check.passed}
    assert failing == {("mirror/qbo_bills", "rows_valid"), ("mirror/qbo_bills", "matches_agedpayables")}
    difference = checks[("mirror/qbo_bills", "matches_agedpayables")].metadata["tenants"].value["acme"]
    assert difference["first_differences"][0]["id"] == bills[oid]["VendorRef"]["value"]
    assert Decimal(difference["first_differences"][0]["difference"]) == -Decimal(str(bills[oid]["Balance"]))
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "marts/ar_aging" in materialized and not {"marts/ap_aging", "marts/vendor_spend"} & materialized
    assert all(f"mirror/qbo_{e.table}" in materialized for e in ENTITIES)
