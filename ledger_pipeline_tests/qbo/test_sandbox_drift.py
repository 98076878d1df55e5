"""Data drift switches: hostile and odd payloads shown the same way by every endpoint, as new versions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from ledger_pipeline.rails.qbo.sandbox import QboSandbox
from ledger_pipeline.rails.qbo.sandbox.drift import DRIFT_KINDS, NEW_FIELD, SQL_LOOKING_ID

REALM = "9130350000000101"


def query(api: httpx.Client, text: str) -> dict:
    response = api.get(f"/v3/company/{REALM}/query", params={"query": text})
    assert response.status_code == 200, response.text
    return response.json()["QueryResponse"]


def open_bill(sb: QboSandbox) -> tuple[str, dict]:
    """The lowest-numbered unpaid bill with a balance."""
    bills = sb.live_objects(REALM, "Bill")
    oid = min((i for i, b in bills.items() if b["Balance"] and not b["LinkedTxn"]), key=int)
    return oid, bills[oid]


@pytest.mark.parametrize(
    ("entity", "kind", "check"),
    [
        ("Bill", "new_field", lambda old, new: new[NEW_FIELD]["Enabled"] is True),
        ("Bill", "type_change", lambda old, new: new["TotalAmt"] == f"{Decimal(str(old['TotalAmt'])):.2f} USD"),
        ("Bill", "missing_required", lambda old, new: "VendorRef" not in new and "VendorRef" in old),
        ("Vendor", "missing_required", lambda old, new: "DisplayName" not in new),
        ("Vendor", "unicode", lambda old, new: "東京" in new["DisplayName"] and "🍣" in new["PrintOnCheckName"]),
        ("Invoice", "long_note", lambda old, new: len(new["PrivateNote"]) == 4000),
        ("Bill", "extra_decimals",
         lambda old, new: Decimal(str(new["TotalAmt"])) - Decimal(str(old["TotalAmt"])) == Decimal("0.005")),
        ("Payment", "negative", lambda old, new: new["TotalAmt"] == -old["TotalAmt"] and all(
            n["Amount"] == -o["Amount"] for n, o in zip(new["Line"], old["Line"]))),
        ("Customer", "negative", lambda old, new: new["Balance"] < 0),
        ("Bill", "zero", lambda old, new: new["TotalAmt"] == 0 == new["Balance"] and all(
            line["Amount"] == 0 for line in new["Line"])),
        ("Bill", "far_past", lambda old, new: (new["TxnDate"], new["DueDate"]) == ("0001-01-01", "0001-01-31")),
        ("Invoice", "far_future", lambda old, new: new["TxnDate"] == "9999-12-01"),
        ("BillPayment", "shared_doc_number", lambda old, new: new["DocNumber"] == "DUP-0001"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_every_endpoint_shows_the_drifted_payload_as_a_new_version(sandbox, qbo_api, entity, kind, check) -> None:
    api = qbo_api(sandbox, REALM)
    oid = "3"
    old = sandbox.live_objects(REALM, entity)[oid]
    since = sandbox.now.isoformat()
    sandbox.advance(timedelta(seconds=5))
    sandbox.drift(REALM, entity, oid, kind)

    new = sandbox.live_objects(REALM, entity)[oid]
    assert check(old, new)
    assert int(new["SyncToken"]) == int(old["SyncToken"]) + 1
    where = " WHERE Active IN (true,false)" if entity in ("Vendor", "Customer") else ""
    page = query(api, f"SELECT * FROM {entity}{where} MAXRESULTS 1000")[entity]
    assert next(o for o in page if o["Id"] == oid) == new
    assert api.get(f"/v3/company/{REALM}/{entity.lower()}/{oid}").json()[entity] == new
    cdc = api.get(f"/v3/company/{REALM}/cdc", params={"entities": entity, "changedSince": since}).json()
    assert new in cdc["CDCResponse"][0]["QueryResponse"][0][entity]


def test_sql_looking_id_replaces_the_id_everywhere(sandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    sandbox.drift(REALM, "Bill", "4", "sql_id")
    live = sandbox.live_objects(REALM, "Bill")
    assert "4" not in live and live[SQL_LOOKING_ID]["Id"] == SQL_LOOKING_ID
    ids = [o["Id"] for o in query(api, "SELECT Id FROM Bill ORDERBY Id MAXRESULTS 1000")["Bill"]]
    assert SQL_LOOKING_ID in ids and "4" not in ids
    assert query(api, "SELECT COUNT(*) FROM Bill")["totalCount"] == len(live)


def test_drifts_stack_persist_and_clear(sandbox, tmp_path) -> None:
    path = tmp_path / "state.json"
    first = QboSandbox(sandbox.companies, seed=11, rate_limit=None, state_path=path)
    first.drift(REALM, "Bill", "5", "zero")
    first.drift(REALM, "Bill", "5", "far_future")
    first.drift(REALM, "Bill", "5", "zero")  # already on: no second entry
    second = QboSandbox(sandbox.companies, seed=11, rate_limit=None, state_path=path)
    assert second.drifts(REALM) == [("Bill", "5", "zero"), ("Bill", "5", "far_future")]
    bill = second.live_objects(REALM, "Bill")["5"]
    assert bill["TotalAmt"] == 0 and bill["TxnDate"] == "9999-12-01"
    second.clear_drifts(REALM)
    assert first.drifts(REALM) == [] and first.live_objects(REALM, "Bill")["5"]["TotalAmt"] != 0


def test_bad_drift_requests_are_refused(sandbox) -> None:
    with pytest.raises(ValueError, match="unknown drift kind"):
        sandbox.drift(REALM, "Bill", "1", "gremlins")
    with pytest.raises(ValueError, match="does not apply to Account"):
        sandbox.drift(REALM, "Account", "1", "long_note")
    with pytest.raises(ValueError, match="no live Bill"):
        sandbox.drift(REALM, "Bill", "999999", "zero")
    assert sandbox.drifts(REALM) == [] and set(DRIFT_KINDS) >= {"type_change", "sql_id"}


def test_reports_follow_drifted_document_balances(sandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    oid, bill = open_bill(sandbox)
    vendor = bill["VendorRef"]["value"]

    def vendor_total() -> Decimal:
        report = api.get(f"/v3/company/{REALM}/reports/AgedPayables").json()
        row = next((r for r in report["Rows"]["Row"] if r.get("ColData", [{}])[0].get("id") == vendor), None)
        return Decimal(row["ColData"][-1]["value"]) if row else Decimal(0)

    before = vendor_total()
    sandbox.drift(REALM, "Bill", oid, "zero")
    assert vendor_total() == before - Decimal(str(bill["Balance"]))
    sandbox.drift(REALM, "Bill", oid, "type_change")  # a TotalAmt of the wrong type moves no balance
    assert vendor_total() == before - Decimal(str(bill["Balance"]))
