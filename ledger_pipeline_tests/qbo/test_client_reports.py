"""QboClient.report: parsed QBO reports that agree with the sandbox's books, and the failures around them."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from ledger_pipeline.rails.qbo.errors import QboMalformedResponse
from ledger_pipeline.rails.qbo.reports import QboReport, QboReportRow, parse_report
from ledger_pipeline.rails.qbo.sandbox import Fault, QboSandbox
from ledger_pipeline.rails.qbo.sandbox.server import RunningServer
from ledger_pipeline.rails.qbo.wire import PageShapeError
from ledger_pipeline_tests.qbo.test_client_fakes import (CountingTransport, FakeQbo, SleepRecorder, make_client,
                                                         sandbox_client)

REALM = "9130350000000101"
SIDES = {"AgedPayables": ("Bill", "VendorRef"), "AgedReceivables": ("Invoice", "CustomerRef")}
COLUMNS = ["Current", "1 - 30", "31 - 60", "61 - 90", "91 and over", "Total"]


def open_balances(sb: QboSandbox, name: str) -> dict[str, Decimal]:
    entity, ref = SIDES[name]
    out: dict[str, Decimal] = defaultdict(Decimal)
    for doc in sb.live_objects(REALM, entity).values():
        if doc["Balance"] > 0:
            out[doc[ref]["value"]] += Decimal(str(doc["Balance"]))
    return dict(out)


def check_consistent(report: QboReport) -> None:
    assert report.columns == COLUMNS and report.currency == "USD"
    for row in report.rows:
        assert sum(row.amounts[c] for c in COLUMNS[:-1]) == row.amounts["Total"]
    assert report.total == {c: sum((r.amounts[c] for r in report.rows), Decimal(0)) for c in COLUMNS}


@pytest.mark.parametrize("name", SIDES)
def test_client_report_equals_the_sandbox_books(sandbox: QboSandbox, name: str) -> None:
    sandbox.advance(timedelta(days=1, hours=3))
    report = sandbox_client(sandbox, REALM).report(name)
    assert report.name == name
    assert report.report_date == (sandbox.now - timedelta(hours=7)).date()  # the company's today (UTC-7)
    check_consistent(report)
    assert {row.entity_id: row.amounts["Total"] for row in report.rows} == open_balances(sandbox, name)
    assert all(isinstance(v, Decimal) for row in report.rows for v in row.amounts.values())


def test_client_report_over_http_with_a_report_date(served_sandbox: RunningServer, sandbox: QboSandbox) -> None:
    twin = QboSandbox(sandbox.companies, seed=11, rate_limit=None)
    over_http = sandbox_client(sandbox, REALM, base_url=served_sandbox.base_url)
    in_process = sandbox_client(twin, REALM)
    day = date(2026, 12, 1)
    report = over_http.report("AgedReceivables", report_date=day)
    assert report == in_process.report("AgedReceivables", report_date=day)
    assert report.report_date == day
    check_consistent(report)
    assert report.total["Total"] == sum(open_balances(sandbox, "AgedReceivables").values())
    assert report.total["Current"] < in_process.report("AgedReceivables").total["Current"]
    over_http.close()


def test_client_sees_a_skewed_row_as_one_difference_from_the_books(sandbox: QboSandbox) -> None:
    client = sandbox_client(sandbox, REALM)
    victim = client.report("AgedPayables").rows[3].entity_id
    sandbox.skew_report(REALM, "AgedPayables", victim, Decimal("-40.01"))
    books = open_balances(sandbox, "AgedPayables")
    report = client.report("AgedPayables")
    diffs = {row.entity_id: row.amounts["Total"] - books.get(row.entity_id, Decimal(0)) for row in report.rows}
    assert {k: v for k, v in diffs.items() if v} == {victim: Decimal("-40.01")}


@pytest.mark.parametrize("name", SIDES)
def test_a_report_filtered_to_some_parties_has_their_rows_in_requests_of_a_few(sandbox: QboSandbox, name: str,
                                                                               monkeypatch) -> None:
    """QBO's vendor / customer filter, asked PARTIES_PER_REQUEST at a time and answered as one report."""
    from ledger_pipeline.rails.qbo import client as client_module

    monkeypatch.setattr(client_module, "PARTIES_PER_REQUEST", 2)
    sandbox.advance(timedelta(days=2))
    counting = CountingTransport(sandbox.transport())
    client = sandbox_client(sandbox, REALM, transport=counting)
    whole = client.report(name)
    kept = [row.entity_id for row in whole.rows[1:10:2]] + ["999999"]  # five owing, one that owes nothing
    counting.seen.clear()

    report = client.report(name, parties=[*reversed(kept), kept[0]])

    assert {row.entity_id: row.amounts for row in report.rows} == {
        row.entity_id: row.amounts for row in whole.rows if row.entity_id in kept}
    check_consistent(report)
    assert report.report_date == whole.report_date
    party = "vendor" if name == "AgedPayables" else "customer"
    asked = [params[party].split(",") for path, params in counting.seen if path.endswith(name)]
    assert [len(ids) for ids in asked] == [2, 2, 2] and sorted(sum(asked, [])) == sorted(kept)
    assert client.report(name, parties=[]).rows == [] and len(counting.seen) == 3, "no parties, no request"
    with pytest.raises(ValueError, match="Ids"):
        client.report(name, parties=["12", "1,2"])
    assert len(counting.seen) == 3


@pytest.mark.parametrize("name", ["ProfitAndLoss", "agedpayables", "", None])
def test_unknown_report_names_fail_before_any_request(sandbox: QboSandbox, name) -> None:
    counting = CountingTransport(sandbox.transport())
    client = sandbox_client(sandbox, REALM, transport=counting)
    with pytest.raises(ValueError, match="supported reports: AgedPayables, AgedReceivables"):
        client.report(name)
    with pytest.raises(ValueError, match="report_date must be a datetime.date"):
        client.report("AgedPayables", report_date=datetime(2026, 10, 1, tzinfo=timezone.utc))
    assert counting.seen == []


def test_malformed_report_bodies_are_retried_then_reported(sandbox: QboSandbox) -> None:
    sleep = SleepRecorder()
    client = sandbox_client(sandbox, REALM, sleep=sleep, max_retries=2)
    sandbox.inject(REALM, Fault("malformed_page", endpoint="reports", count=1))
    assert client.report("AgedPayables").total["Total"] == sum(open_balances(sandbox, "AgedPayables").values())
    assert len(sleep.delays) == 1

    sandbox.inject(REALM, Fault("malformed_page", endpoint="reports", count=-1))
    assert client.count("Bill") > 0  # the fault is scoped to reports
    with pytest.raises(QboMalformedResponse) as info:
        client.report("AgedReceivables")
    err = info.value
    assert (err.realm_id, err.entity, err.status) == (REALM, "AgedReceivables", 200)
    assert "reports/AgedReceivables body is not valid JSON" in str(err) and REALM in str(err)


def test_report_requests_refresh_an_expired_token(sandbox: QboSandbox) -> None:
    counting = CountingTransport(sandbox.transport())
    client = sandbox_client(sandbox, REALM, transport=counting)
    sandbox.inject(REALM, Fault("expire_token", endpoint="reports"))
    assert client.report("AgedPayables").rows
    assert counting.count("/reports/AgedPayables") == 2 and counting.count("/tokens/bearer") == 2


def _row(name: str, pid: str | None, *cells: str) -> dict:
    first = {"value": name, **({"id": pid} if pid else {})}
    return {"ColData": [first, *({"value": c} for c in cells)], "type": "Data"}


def nested_body() -> dict:
    """A report shaped like QBO's with sub-customers: a parent Section with Header, Rows and Summary."""
    columns = [{"ColTitle": "", "ColType": "Customer"}] + [{"ColTitle": t, "ColType": "Money"} for t in COLUMNS]
    section = {"Header": {"ColData": [{"value": "Parent Co", "id": "7"}, *({"value": ""} for _ in COLUMNS)]},
               "Rows": {"Row": [_row("Parent Co", "7", "10.00", "", "", "", "", "10.00"),
                                _row("Parent Co:Job 1", "8", "", "5.25", "", "", "", "5.25")]},
               "Summary": {"ColData": [{"value": "Total Parent Co"}, *({"value": v} for v in
                                                                        ("10.00", "5.25", "", "", "", "15.25"))]},
               "type": "Section"}
    grand = {"Summary": {"ColData": [{"value": "TOTAL"}, *({"value": v} for v in
                                                             ("10.00", "5.25", "", "", "-1.50", "13.75"))]},
             "type": "Section", "group": "GrandTotal"}
    return {"Header": {"ReportName": "AgedReceivables", "Currency": "USD",
                       "Option": [{"Name": "report_date", "Value": "2026-10-04"}, {"Name": "NoReportData",
                                                                                     "Value": "false"}]},
            "Columns": {"Column": columns},
            "Rows": {"Row": [section, _row("Zed", None, "", "", "", "", "-1.50", "-1.50"), grand]}}


def test_nested_sections_are_flattened_and_subtotals_ignored() -> None:
    report = parse_report(nested_body(), "AgedReceivables")
    assert report.report_date == date(2026, 10, 4) and report.columns == COLUMNS
    assert [(r.entity_id, r.name, r.amounts["Total"]) for r in report.rows] == [
        ("7", "Parent Co", Decimal("10.00")), ("8", "Parent Co:Job 1", Decimal("5.25")),
        (None, "Zed", Decimal("-1.50"))]
    job = dict(zip(COLUMNS, map(Decimal, "0 5.25 0 0 0 5.25".split())))
    assert report.rows[1] == QboReportRow("8", "Parent Co:Job 1", job)
    assert report.total["Total"] == Decimal("13.75") and report.total["1 - 30"] == Decimal("5.25")
    empty = parse_report({"Header": {"ReportName": "AgedPayables"}, "Columns": nested_body()["Columns"], "Rows": {}},
                         "AgedPayables")
    assert (empty.rows, empty.report_date, empty.currency) == ([], None, None)
    assert set(empty.total.values()) == {Decimal(0)}


def _broken(change) -> dict:
    body = nested_body()
    change(body)
    return body


@pytest.mark.parametrize("body, message", [
    (_broken(lambda b: b["Header"].update(ReportName="AgedPayables")), "ReportName"),
    (_broken(lambda b: b["Rows"]["Row"].pop()), "GrandTotal"),
    (_broken(lambda b: b["Rows"]["Row"][1]["ColData"].pop()), "cells for"),
    (_broken(lambda b: b["Rows"]["Row"][1]["ColData"][5].update(value="1,234.00")), "not an amount"),
    (_broken(lambda b: b["Rows"]["Row"][1]["ColData"][5].update(value=1.5)), "no string value"),
    (_broken(lambda b: b["Rows"]["Row"][1]["ColData"][5].update(value="NaN")), "not an amount"),
    (_broken(lambda b: b["Header"]["Option"][0].update(Value="04/10/2026")), "report_date"),
    (_broken(lambda b: b.pop("Columns")), "Columns"),
    (_broken(lambda b: b["Rows"].update(Row={"ColData": []})), "Rows.Row"),
])
def test_malformed_report_shapes_are_refused(body, message) -> None:
    with pytest.raises(PageShapeError, match=message):
        parse_report(body, "AgedReceivables")


def test_a_wrongly_shaped_report_becomes_qbo_malformed_response() -> None:
    body = _broken(lambda b: b["Rows"]["Row"].pop())
    fake = FakeQbo(default=httpx.Response(200, json=body))
    client = make_client(fake, max_retries=1)
    with pytest.raises(QboMalformedResponse, match=r"entity AgedReceivables: malformed response after 1 retry: "
                                                   r"reports/AgedReceivables response: expected one GrandTotal"):
        client.report("AgedReceivables", report_date=date(2026, 10, 4))
    assert [r.url.params["report_date"] for r in fake.requests] == ["2026-10-04"] * 2
    assert fake.requests[0].url.path.endswith("/reports/AgedReceivables")
