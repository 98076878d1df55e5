"""The sandbox's AgedPayables / AgedReceivables reports: agree with its books, age by DueDate, can be skewed."""

from __future__ import annotations

import gc
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from ledger_pipeline.rails.qbo.sandbox import CompanySpec, Fault, QboSandbox, RateLimit
from ledger_pipeline.rails.qbo.sandbox.server import RunningServer

REALM = "9130350000000101"
OTHER_REALM = "9130350000000102"
SIDES = {"AgedPayables": ("Bill", "Vendor", "VendorRef"), "AgedReceivables": ("Invoice", "Customer", "CustomerRef")}
TITLES = ["Current", "1 - 30", "31 - 60", "61 - 90", "91 and over"]


def get_report(api: httpx.Client, name: str, realm: str = REALM, **params: str) -> dict:
    response = api.get(f"/v3/company/{realm}/reports/{name}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    return response.json()


def data_rows(body: dict) -> dict[str, list[str]]:
    """Party Id -> cell values (name first) of every data row."""
    return {row["ColData"][0]["id"]: [c["value"] for c in row["ColData"]] for row in body["Rows"]["Row"][:-1]}


def amount(text: str) -> Decimal:
    return Decimal(text) if text else Decimal(0)


def expected_aging(sb: QboSandbox, name: str, report_date: date, period: int = 30,
                   periods: int = 4) -> dict[str, list[Decimal]]:
    """Party Id -> buckets (Current first), recomputed from the documents' Balance and DueDate."""
    doc_entity, _, ref = SIDES[name]
    out: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * (periods + 1))
    for doc in sb.live_objects(REALM, doc_entity).values():
        balance = Decimal(str(doc["Balance"]))
        if balance > 0:
            days = (report_date - date.fromisoformat(doc["DueDate"])).days
            out[doc[ref]["value"]][0 if days <= 0 else min(periods, (days - 1) // period + 1)] += balance
    return dict(out)


def assert_all_strings(node: object) -> None:
    if isinstance(node, dict):
        for value in node.values():
            assert_all_strings(value)
    elif isinstance(node, list):
        for value in node:
            assert_all_strings(value)
    else:
        assert isinstance(node, str), node


@pytest.mark.parametrize("name", SIDES)
def test_report_equals_open_balances_of_the_books_bucket_by_bucket(sandbox: QboSandbox, qbo_api, name: str) -> None:
    sandbox.advance(timedelta(days=2, hours=5))  # a few payments, voids and deletions on top of the past
    body = get_report(qbo_api(sandbox, REALM), name)
    assert_all_strings(body)
    _, party_entity, _ = SIDES[name]
    today = (sandbox.now + timedelta(hours=-7)).date()  # the company's local date (UTC-7)
    header = body["Header"]
    assert (header["ReportName"], header["DateMacro"], header["Currency"], header["EndPeriod"]) == \
        (name, "today", "USD", today.isoformat())
    assert {"Name": "report_date", "Value": today.isoformat()} in header["Option"]
    columns = body["Columns"]["Column"]
    assert [c["ColTitle"] for c in columns] == ["", *TITLES, "Total"]
    assert [c["ColType"] for c in columns] == [party_entity] + ["Money"] * 6

    expected = expected_aging(sandbox, name, today)
    rows = data_rows(body)
    assert rows.keys() == expected.keys() and len(rows) > 10
    for party_id, cells in rows.items():
        buckets = [amount(v) for v in cells[1:6]]
        assert buckets == expected[party_id]
        assert sum(buckets) == Decimal(cells[6]) > 0
        assert all(v == "" or (v.count(".") == 1 and len(v.split(".")[1]) == 2) for v in cells[1:])
    parties = sandbox.live_objects(REALM, party_entity)
    names = [(cells[0], parties[pid]["DisplayName"]) for pid, cells in rows.items()]
    assert all(shown == display for shown, display in names)
    assert [n for n, _ in names] == sorted((n for n, _ in names), key=str.casefold)
    books = {pid: sum(Decimal(str(d["Balance"])) for d in sandbox.live_objects(REALM, SIDES[name][0]).values()
                      if d[SIDES[name][2]]["value"] == pid) for pid in rows}
    assert {pid: Decimal(cells[6]) for pid, cells in rows.items()} == books

    grand = body["Rows"]["Row"][-1]
    assert (grand["type"], grand["group"]) == ("Section", "GrandTotal")
    assert grand["Summary"]["ColData"][0]["value"] == "TOTAL"
    totals = [amount(c["value"]) for c in grand["Summary"]["ColData"][1:]]
    assert totals == [sum((amount(cells[i]) for cells in rows.values()), Decimal(0)) for i in range(1, 7)]


@pytest.mark.parametrize("name", SIDES)
def test_report_asked_again_after_edits_ages_by_the_due_dates_rendered_now(sandbox: QboSandbox, qbo_api,
                                                                          name: str) -> None:
    """The sandbox keeps what it derived for a document between reports; an edit that pushes a due
    date must show in the next report exactly as the document renders now (day-wide buckets around
    a pushed document's new due date, so 7 days either way change its bucket)."""
    doc_entity, _, ref = SIDES[name]
    get_report(qbo_api(sandbox, REALM), name)
    before = {i: d["DueDate"] for i, d in sandbox.live_objects(REALM, doc_entity).items()}
    sandbox.advance(timedelta(days=14))
    pushed = [d for i, d in sandbox.live_objects(REALM, doc_entity).items()
              if i in before and d["DueDate"] != before[i] and Decimal(str(d["Balance"])) > 0]
    assert pushed, "no open document had its due date pushed: nothing tested"
    day = date.fromisoformat(pushed[0]["DueDate"]) + timedelta(days=3)
    body = get_report(qbo_api(sandbox, REALM), name, report_date=day.isoformat(), aging_period="1",
                      num_periods="12")  # a new token: the first expired meanwhile
    got = {pid: [amount(v) for v in cells[1:14]] for pid, cells in data_rows(body).items()}
    assert got == expected_aging(sandbox, name, day, period=1, periods=12)
    assert got[pushed[0][ref]["value"]][3] >= Decimal(str(pushed[0]["Balance"]))  # 3 days past due


def test_report_leaves_the_cyclic_collector_as_it_found_it(sandbox: QboSandbox, qbo_api) -> None:
    """Reports are built with the collector paused (speed at 1M objects); the process's setting survives."""
    api = qbo_api(sandbox, REALM)
    assert gc.isenabled()
    get_report(api, "AgedPayables")
    assert gc.isenabled()
    gc.disable()
    try:
        get_report(api, "AgedReceivables")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_report_date_moves_documents_between_buckets_but_not_the_totals(sandbox: QboSandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    today = get_report(api, "AgedPayables")
    day = date.fromisoformat(today["Header"]["EndPeriod"])
    later = get_report(api, "AgedPayables", report_date=(day + timedelta(days=45)).isoformat())
    assert "DateMacro" not in later["Header"]
    assert {"Name": "report_date", "Value": (day + timedelta(days=45)).isoformat()} in later["Header"]["Option"]
    now_totals = [amount(c["value"]) for c in today["Rows"]["Row"][-1]["Summary"]["ColData"][1:]]
    later_totals = [amount(c["value"]) for c in later["Rows"]["Row"][-1]["Summary"]["ColData"][1:]]
    assert now_totals[-1] == later_totals[-1]
    assert later_totals[0] < now_totals[0] and later_totals[4] > now_totals[4]
    moved = [pid for pid, cells in data_rows(later).items() if cells != data_rows(today)[pid]]
    assert moved
    expected = expected_aging(sandbox, "AgedPayables", day + timedelta(days=45))
    assert {pid: [amount(v) for v in cells[1:6]] for pid, cells in data_rows(later).items()} == expected

    custom = get_report(api, "AgedReceivables", report_date=day.isoformat(), aging_period="15", num_periods="2")
    assert [c["ColTitle"] for c in custom["Columns"]["Column"]] == ["", "Current", "1 - 15", "16 and over", "Total"]
    expected = expected_aging(sandbox, "AgedReceivables", day, period=15, periods=2)
    assert {pid: [amount(v) for v in cells[1:4]] for pid, cells in data_rows(custom).items()} == expected


@pytest.mark.parametrize("path, params, code", [
    ("reports/ProfitAndLoss", {}, "4000"),
    ("reports/AgedPayables", {"report_date": "2026-13-01"}, "4001"),
    ("reports/AgedPayables", {"report_date": "20261004"}, "4001"),
    ("reports/AgedReceivables", {"num_periods": "0"}, "4001"),
    ("reports/AgedReceivables", {"aging_period": "x"}, "4001"),
    ("reports/AgedPayables", {"vendor": "3,x"}, "4001"),
    ("reports/AgedReceivables", {"customer": "0"}, "4001"),
])
def test_bad_report_requests_get_validation_faults(sandbox: QboSandbox, qbo_api, path, params, code) -> None:
    response = qbo_api(sandbox, REALM).get(f"/v3/company/{REALM}/{path}", params=params)
    assert response.status_code == 400
    fault = response.json()["Fault"]
    assert (fault["type"], fault["Error"][0]["code"]) == ("ValidationFault", code)


def test_skew_changes_exactly_one_row_and_the_totals(sandbox: QboSandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    before = get_report(api, "AgedPayables")
    victim = sorted(data_rows(before))[0]
    sandbox.skew_report(REALM, "AgedPayables", victim, Decimal("12.50"))
    assert sandbox.report_skews(REALM) == {("AgedPayables", victim): Decimal("12.50")}
    after = get_report(api, "AgedPayables")
    old, new = data_rows(before), data_rows(after)
    assert [pid for pid in old if old[pid] != new[pid]] == [victim] and old.keys() == new.keys()
    assert amount(new[victim][1]) - amount(old[victim][1]) == Decimal("12.50")
    assert Decimal(new[victim][6]) - Decimal(old[victim][6]) == Decimal("12.50")
    grand = [[amount(c["value"]) for c in b["Rows"]["Row"][-1]["Summary"]["ColData"][1:]] for b in (before, after)]
    assert [b - a for a, b in zip(*grand)] == [Decimal("12.50"), 0, 0, 0, 0, Decimal("12.50")]
    twin = QboSandbox(sandbox.companies, seed=11, rate_limit=None)
    assert get_report(api, "AgedReceivables") == get_report(qbo_api(twin, REALM), "AgedReceivables")  # untouched

    # A vendor with nothing open gets a row of its own; a zero delta removes the skew.
    idle = next(v for v in sandbox.live_objects(REALM, "Vendor") if v not in old)
    sandbox.skew_report(REALM, "AgedPayables", idle, Decimal("-3"))
    assert data_rows(get_report(api, "AgedPayables"))[idle][1:] == ["-3.00", "", "", "", "", "-3.00"]
    sandbox.skew_report(REALM, "AgedPayables", idle, Decimal(0))
    assert sandbox.report_skews(REALM) == {("AgedPayables", victim): Decimal("12.50")}
    sandbox.clear_report_skews(REALM)
    assert sandbox.report_skews(REALM) == {} and get_report(api, "AgedPayables")["Rows"] == before["Rows"]


@pytest.mark.parametrize("args, message", [
    (("AgedPayables", "1", 1.5), "two decimals"),
    (("AgedPayables", "1", Decimal("0.005")), "two decimals"),
    (("ProfitAndLoss", "1", Decimal(1)), "unknown report"),
    (("AgedPayables", "99999", Decimal(1)), "no Vendor with Id"),
    (("AgedReceivables", "abc", Decimal(1)), "no Customer with Id"),
])
def test_skew_arguments_are_checked(sandbox: QboSandbox, args, message) -> None:
    with pytest.raises(ValueError, match=message):
        sandbox.skew_report(REALM, *args)
    assert sandbox.report_skews(REALM) == {}


def test_skews_are_shared_through_the_state_file(tmp_path: Path, qbo_api) -> None:
    spec = (CompanySpec(REALM, "Test Alpha LLC", size=300, utc_offset="-07:00"),)
    first = QboSandbox(spec, seed=3, state_path=tmp_path / "state.json", rate_limit=None)
    second = QboSandbox(spec, seed=3, state_path=tmp_path / "state.json", rate_limit=None)
    clean = get_report(qbo_api(second, REALM), "AgedReceivables")
    first.skew_report(REALM, "AgedReceivables", "2", Decimal("7.25"))
    assert second.report_skews(REALM) == {("AgedReceivables", "2"): Decimal("7.25")}
    skewed = get_report(qbo_api(second, REALM), "AgedReceivables")
    assert data_rows(skewed)["2"] != data_rows(clean).get("2")
    second.clear_report_skews()
    assert first.report_skews(REALM) == {}


def test_reports_over_real_http_match_the_transport_and_need_auth(served_sandbox: RunningServer, qbo_api) -> None:
    sb = served_sandbox.sandbox
    twin = QboSandbox(sb.companies, seed=11, rate_limit=None)
    over_http, in_process = qbo_api(sb, REALM, base_url=served_sandbox.base_url), qbo_api(twin, REALM)
    for name, params in (("AgedPayables", {}), ("AgedReceivables", {"report_date": "2026-12-31"})):
        a = over_http.get(f"/v3/company/{REALM}/reports/{name}", params=params)
        b = in_process.get(f"/v3/company/{REALM}/reports/{name}", params=params)
        assert (a.status_code, a.content) == (200, b.content)

    anonymous = httpx.Client(base_url=served_sandbox.base_url)
    refused = anonymous.get(f"/v3/company/{REALM}/reports/AgedPayables")
    assert refused.status_code == 401 and refused.json()["Fault"]["Error"][0]["code"] == "3200"
    other = qbo_api(sb, OTHER_REALM, base_url=served_sandbox.base_url)
    assert other.get(f"/v3/company/{REALM}/reports/AgedPayables").status_code == 403

    admin = httpx.Client(base_url=served_sandbox.base_url)
    victim = sorted(data_rows(get_report(over_http, "AgedPayables")))[0]
    made = admin.post(f"/_sandbox/skews/{REALM}", json={"report": "AgedPayables", "entity_id": victim, "delta": "5.5"})
    assert made.status_code == 201 and made.json() == {"skews": [{"report": "AgedPayables", "entity_id": victim,
                                                                  "delta": "5.50"}]}
    assert admin.post(f"/_sandbox/skews/{REALM}", json={"report": "AgedPayables"}).status_code == 400
    assert admin.post(f"/_sandbox/skews/{REALM}", json={"report": "AgedPayables", "entity_id": victim,
                                                        "delta": "abc"}).status_code == 400
    assert data_rows(get_report(over_http, "AgedPayables"))[victim] != \
        data_rows(get_report(in_process, "AgedPayables"))[victim]
    assert admin.delete(f"/_sandbox/skews/{REALM}").json() == {"skews": []}
    anonymous.close()
    admin.close()


def test_report_endpoint_gets_faults_and_throttling_like_the_others(qbo_api) -> None:
    sb = QboSandbox((CompanySpec(REALM, "Test Alpha LLC", size=200),), seed=2, rate_limit=RateLimit(per_minute=6))
    api = qbo_api(sb, REALM)  # the token request does not count against the API throttle
    sb.inject(REALM, Fault("server_error", endpoint="reports", status=503, retry_after=1))
    count = {"query": "SELECT COUNT(*) FROM Bill"}
    assert api.get(f"/v3/company/{REALM}/query", params=count).status_code == 200  # not a report: untouched
    failed = api.get(f"/v3/company/{REALM}/reports/AgedPayables")
    assert (failed.status_code, failed.headers["retry-after"]) == (503, "1")
    sb.inject(REALM, Fault("malformed_page", endpoint="reports"))
    cut = api.get(f"/v3/company/{REALM}/reports/AgedPayables")
    assert cut.status_code == 200 and cut.content.startswith(b'{"Header"')
    with pytest.raises(ValueError):
        cut.json()
    assert api.get(f"/v3/company/{REALM}/reports/AgedPayables").status_code == 200
    statuses = [api.get(f"/v3/company/{REALM}/reports/AgedReceivables").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
