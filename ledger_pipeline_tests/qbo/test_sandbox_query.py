"""The sandbox's query endpoint, through raw httpx requests: paging, counts, filters, ordering, errors."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from ledger_pipeline.rails.qbo.sandbox import CompanySpec, QboSandbox

BIG = CompanySpec("9130350000000201", "Paging Heavy Co.", size=9300, change_rate=0.02, utc_offset="-07:00")
REALM = BIG.realm_id


@pytest.fixture(scope="module")
def big() -> QboSandbox:
    return QboSandbox((BIG,), seed=3, rate_limit=None)


@pytest.fixture
def api(big: QboSandbox, qbo_api) -> httpx.Client:
    return qbo_api(big, REALM)


def query(api: httpx.Client, text: str, realm: str = REALM) -> httpx.Response:
    return api.get(f"/v3/company/{realm}/query", params={"query": text})


def rows(api: httpx.Client, text: str, entity: str = "Bill") -> list[dict]:
    response = query(api, text)
    assert response.status_code == 200, response.text
    return response.json()["QueryResponse"].get(entity, [])


def updated(obj: dict) -> datetime:
    return datetime.fromisoformat(obj["MetaData"]["LastUpdatedTime"])


def test_pages_through_several_full_pages_then_an_empty_body(big: QboSandbox, api: httpx.Client) -> None:
    truth = big.live_objects(REALM, "Bill")
    assert len(truth) > 2000
    seen: list[dict] = []
    start = 1
    while True:
        text = f"SELECT * FROM Bill ORDERBY MetaData.LastUpdatedTime STARTPOSITION {start} MAXRESULTS 1000"
        response = query(api, text)
        body = response.json()
        assert response.headers["content-type"].startswith("application/json")
        assert body["time"].endswith("-07:00")
        if not body["QueryResponse"]:
            break
        page = body["QueryResponse"]
        assert page["startPosition"] == start and page["maxResults"] == len(page["Bill"]) <= 1000
        seen += page["Bill"]
        start += 1000
    assert start == 1 + 1000 * (len(truth) // 1000 + 1)
    assert [o["Id"] for o in seen] == sorted(truth, key=lambda i: (updated(truth[i]), int(i)))
    assert {o["Id"]: o for o in seen} == truth
    count = query(api, "SELECT COUNT(*) FROM Bill").json()["QueryResponse"]
    assert count == {"totalCount": len(truth)}


def test_name_lists_return_active_rows_unless_asked(big: QboSandbox, api: httpx.Client) -> None:
    truth = big.live_objects(REALM, "Vendor")
    inactive = {i for i, o in truth.items() if not o["Active"]}
    assert inactive and len(inactive) < len(truth)

    def count(where: str) -> int:
        return query(api, f"select count(*) from Vendor {where}").json()["QueryResponse"]["totalCount"]

    assert count("") == len(truth) - len(inactive)
    assert count("WHERE Active IN (true, false)") == len(truth)
    assert count("WHERE Active = false") == len(inactive)
    assert count("WHERE Active = true AND Active = false") == 0
    listed = rows(api, "SELECT * FROM Vendor MAXRESULTS 1000", "Vendor")
    assert {o["Id"] for o in listed} == set(truth) - inactive
    every = rows(api, "SELECT * FROM Vendor WHERE Active IN (true,false) MAXRESULTS 1000", "Vendor")
    assert {o["Id"] for o in every} == set(truth)


def every(api: httpx.Client, entity: str, order: str = "MetaData.LastUpdatedTime") -> list[dict]:
    out, start = [], 1
    while page := rows(api, f"SELECT * FROM {entity} ORDERBY {order} STARTPOSITION {start} MAXRESULTS 1000", entity):
        out += page
        start += 1000
    return out


def count(api: httpx.Client, entity: str, where: str) -> int:
    response = query(api, f"SELECT COUNT(*) FROM {entity} WHERE {where}")
    return response.json()["QueryResponse"]["totalCount"]


def test_time_bounds_are_exact_to_the_second_in_any_offset(api: httpx.Client) -> None:
    times = [updated(o) for o in every(api, "Invoice")]
    shared = next(t for t in reversed(times) if times.count(t) > 1)  # QBO stamps several objects with one second
    z = shared.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    field = "MetaData.LastUpdatedTime"
    assert count(api, "Invoice", f"{field} >= '{z}'") == count(api, "Invoice", f"{field} >= '{shared.isoformat()}'")
    assert count(api, "Invoice", f"{field} >= '{z}'") == sum(1 for t in times if t >= shared)
    assert count(api, "Invoice", f"{field} >= '{z}'") - count(api, "Invoice", f"{field} > '{z}'") == times.count(shared)
    assert count(api, "Invoice", f"{field} <= '{z}'") - count(api, "Invoice", f"{field} < '{z}'") == times.count(shared)
    fraction = z.replace("Z", ".5Z")  # between two whole seconds
    assert count(api, "Invoice", f"{field} > '{fraction}'") == count(api, "Invoice", f"{field} > '{z}'")
    assert count(api, "Invoice", f"{field} < '{fraction}'") == count(api, "Invoice", f"{field} <= '{z}'")
    ids = rows(api, f"SELECT Id FROM Invoice WHERE {field} = '{z}'", "Invoice")
    assert len(ids) == times.count(shared) and all(set(o) == {"Id"} for o in ids)
    window = rows(api, f"SELECT * FROM Invoice WHERE {field} > '2026-03-01T00:00:00Z' AND "
                       f"{field} <= '2026-03-08T00:00:00.000+00:00' ORDERBY {field} MAXRESULTS 1000", "Invoice")
    low, high = datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 3, 8, tzinfo=timezone.utc)
    assert window and all(low < updated(o) <= high for o in window)
    assert len(window) == sum(1 for t in times if low < t <= high)


def test_orderby_desc_keeps_ties_by_ascending_id_and_pages_stably(api: httpx.Client) -> None:
    asc = every(api, "Invoice")
    expected = [o["Id"] for o in sorted(asc, key=lambda o: (-updated(o).timestamp(), int(o["Id"])))]
    paged, start = [], 1
    while page := rows(api, f"SELECT Id FROM Invoice ORDERBY MetaData.LastUpdatedTime DESC STARTPOSITION {start} "
                            f"MAXRESULTS 333", "Invoice"):
        paged += [o["Id"] for o in page]
        start += 333
    assert paged == expected
    by_id = [o["Id"] for o in every(api, "Invoice", order="Id")]
    assert by_id == sorted(by_id, key=int) and set(by_id) == set(expected)
    newest_ids = rows(api, "SELECT Id FROM Invoice ORDERBY Id DESC STARTPOSITION 3 MAXRESULTS 4", "Invoice")
    assert [o["Id"] for o in newest_ids] == by_id[::-1][2:6]


def test_id_in_and_keywords_are_case_insensitive(big: QboSandbox, api: httpx.Client) -> None:
    deleted = sorted(big.deleted_ids(REALM, "Bill"), key=int)[:2]
    found = rows(api, f"select * from bill where Id in ('1', '2', '{deleted[0]}', 'x') orderby id")
    assert [o["Id"] for o in found] == ["1", "2"]
    assert rows(api, "SeLeCt * FrOm BILL wHeRe id = '2'")[0]["Id"] == "2"


@pytest.mark.parametrize(("text", "code"), [
    ("SELECT * FROM Widget", "4000"),
    ("SELECT * FROM Bill WHERE TotalAmt > '5'", "4000"),
    ("SELECT * FROM Bill WHERE MetaData.LastUpdatedTime > 'yesterday'", "4000"),
    ("SELECT * FROM Bill ORDER BY Id", "4000"),
    ("SELECT * FROM Bill MAXRESULTS 1001", "4001"),
    ("SELECT * FROM Bill STARTPOSITION 0", "4001"),
    ("SELECT * FROM Bill WHERE Active = true", "4001"),
    ("DELETE FROM Bill", "4000"),
])
def test_refused_queries_answer_a_validation_fault(api: httpx.Client, text: str, code: str) -> None:
    response = query(api, text)
    assert response.status_code == 400
    fault = response.json()["Fault"]
    assert fault["type"] == "ValidationFault"
    assert fault["Error"][0]["code"] == code
    assert response.json()["time"]
