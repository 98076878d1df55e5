"""The newer fault switches as a raw HTTP client sees them: wrong content type, per-entity faults, in-process
timeouts, rows shifting or repeating between pages, revoked connections and backdated versions."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import httpx
import pytest

from ledger_pipeline.rails.qbo.sandbox import SANDBOX_TOKEN_URL, Fault, QboSandbox, sandbox_credentials

REALM = "9130350000000101"
BY_TIME = "SELECT * FROM Bill ORDERBY MetaData.LastUpdatedTime STARTPOSITION {start} MAXRESULTS {size}"


def query(api: httpx.Client, text: str) -> httpx.Response:
    return api.get(f"/v3/company/{REALM}/query", params={"query": text})


def bills(api: httpx.Client, start: int, size: int) -> list[dict]:
    response = query(api, BY_TIME.format(start=start, size=size))
    assert response.status_code == 200, response.text
    return response.json()["QueryResponse"].get("Bill", [])


def refresh(sb: QboSandbox, token: str) -> httpx.Response:
    client_id, secret, _ = sandbox_credentials(REALM)
    return httpx.Client(transport=sb.transport()).post(
        SANDBOX_TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": token}, auth=(client_id, secret))


def test_wrong_content_type_is_a_200_html_page_then_the_real_answer(sandbox: QboSandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    sandbox.inject(REALM, Fault("wrong_content_type", endpoint="query"))
    page = query(api, "SELECT COUNT(*) FROM Bill")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.startswith("<!DOCTYPE html>")
    assert query(api, "SELECT COUNT(*) FROM Bill").json()["QueryResponse"]["totalCount"] > 0


def test_a_fault_with_an_entity_watches_only_requests_about_it(sandbox: QboSandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    sandbox.inject(REALM, Fault("server_error", entity="Invoice", after=1, count=2, status=500))
    assert query(api, "SELECT COUNT(*) FROM Bill").status_code == 200  # not about Invoice: not counted
    assert query(api, "select count(*) from invoice").status_code == 200  # the one let through
    assert api.get(f"/v3/company/{REALM}/invoice/1").status_code == 500  # a read by Id is about Invoice
    cdc = api.get(f"/v3/company/{REALM}/cdc", params={"entities": "Bill,Invoice", "changedSince": "2026-09-30"})
    assert cdc.status_code == 500 and sandbox.faults(REALM) == []
    with pytest.raises(ValueError, match="unknown fault entity"):
        Fault("throttle", entity="Widget")


def test_slow_in_process_honours_the_request_read_timeout(sandbox: QboSandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    api.timeout = httpx.Timeout(5.0, read=0.1)
    sandbox.inject(REALM, Fault("slow", endpoint="query", delay=2.0))
    began = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        query(api, "SELECT COUNT(*) FROM Bill")
    assert 0.1 <= time.monotonic() - began < 1.0
    sandbox.inject(REALM, Fault("slow", endpoint="query", delay=0.05))  # shorter than the timeout: answered
    assert query(api, "SELECT COUNT(*) FROM Bill").status_code == 200


def test_shift_moves_the_first_rows_to_the_end_so_later_rows_move_up(sandbox: QboSandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    sandbox.advance(timedelta(minutes=1))
    before = bills(api, 1, 1000)
    sandbox.inject(REALM, Fault("shift", endpoint="query", entity="Bill", rows=3))
    page = bills(api, 11, 10)
    assert [o["Id"] for o in page] == [o["Id"] for o in before[13:23]]  # three places earlier than before
    after = bills(api, 1, 1000)
    moved = {o["Id"]: o for o in after[-3:]}
    assert set(moved) == {o["Id"] for o in before[:3]}
    now = sandbox.now.replace(microsecond=0)
    for old in before[:3]:
        assert datetime.fromisoformat(moved[old["Id"]]["MetaData"]["LastUpdatedTime"]) == now
        assert int(moved[old["Id"]]["SyncToken"]) == int(old["SyncToken"]) + 1


def test_duplicate_repeats_the_next_row_on_this_page(sandbox: QboSandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    before = bills(api, 1, 30)
    sandbox.inject(REALM, Fault("duplicate", endpoint="query", count=2))
    first = query(api, BY_TIME.format(start=1, size=10)).json()["QueryResponse"]
    assert [o["Id"] for o in first["Bill"]] == [o["Id"] for o in before[:11]] and first["maxResults"] == 11
    second = bills(api, 11, 10)
    assert second[0] == first["Bill"][-1]  # the same object on two pages
    assert [o["Id"] for o in second] == [o["Id"] for o in before[10:21]]  # this one repeats its next row too
    assert [o["Id"] for o in bills(api, 11, 10)] == [o["Id"] for o in before[10:20]]  # spent


def test_duplicate_at_the_end_of_the_result_repeats_the_page_first_row(sandbox: QboSandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    everything = bills(api, 1, 1000)
    sandbox.inject(REALM, Fault("duplicate", endpoint="query"))
    tail = bills(api, len(everything) - 1, 10)
    assert [o["Id"] for o in tail] == [everything[-2]["Id"], everything[-1]["Id"], everything[-2]["Id"]]


def test_revoke_refuses_every_token_until_reconnect(sandbox: QboSandbox, qbo_api, tmp_path) -> None:
    api = qbo_api(sandbox, REALM)  # holds a valid access token; the initial refresh token is rotated away
    shared = QboSandbox(sandbox.companies, seed=11, rate_limit=None, state_path=tmp_path / "state.json")
    shared.revoke(REALM)
    assert QboSandbox(sandbox.companies, seed=11, state_path=tmp_path / "state.json").is_revoked(REALM)
    sandbox.revoke(REALM)
    denied = query(api, "SELECT COUNT(*) FROM Bill")
    assert denied.status_code == 401 and denied.json()["Fault"]["Error"][0]["Detail"].startswith("Token revoked")
    initial = sandbox_credentials(REALM)[2]
    for token in (initial, "RT1-9130350000000101-1-" + "0" * 32):
        refused = refresh(sandbox, token)
        assert (refused.status_code, refused.json()) == (400, {"error": "invalid_grant"})
    current = refresh(sandbox, initial)  # still refused: revocation is not a rotation
    assert current.status_code == 400
    sandbox.reconnect(REALM)
    assert not sandbox.is_revoked(REALM)
    assert refresh(sandbox, initial).status_code == 200


def test_backdated_touch_makes_a_newer_version_with_an_older_time(sandbox: QboSandbox, qbo_api) -> None:
    sandbox.advance(timedelta(hours=1))
    api = qbo_api(sandbox, REALM)
    sandbox.touch(REALM, "Bill", "7")
    first = sandbox.live_objects(REALM, "Bill")["7"]
    sandbox.advance(timedelta(minutes=1))
    sandbox.touch(REALM, "Bill", "7", backdate=timedelta(minutes=3))
    second = sandbox.live_objects(REALM, "Bill")["7"]
    stamp = datetime.fromisoformat(second["MetaData"]["LastUpdatedTime"])
    assert int(second["SyncToken"]) == int(first["SyncToken"]) + 1
    assert stamp == sandbox.now.replace(microsecond=0) - timedelta(minutes=3)
    assert stamp < datetime.fromisoformat(first["MetaData"]["LastUpdatedTime"])
    since = (stamp - timedelta(seconds=1)).isoformat()
    seen = query(api, f"SELECT * FROM Bill WHERE MetaData.LastUpdatedTime >= '{since}'").json()["QueryResponse"]
    assert second in seen["Bill"]
    with pytest.raises(ValueError, match="backdate"):
        sandbox.touch(REALM, "Bill", "7", backdate=timedelta(seconds=-1))


def test_admin_endpoints_revoke_and_drift(sandbox: QboSandbox) -> None:
    admin = httpx.Client(transport=sandbox.transport(), base_url="http://qbo-sandbox.local")
    assert admin.post(f"/_sandbox/revoke/{REALM}").json() == {"realm_id": REALM, "revoked": True}
    assert sandbox.is_revoked(REALM)
    added = admin.post(f"/_sandbox/drifts/{REALM}", json={"entity": "Bill", "id": "3", "kind": "zero"})
    assert added.status_code == 201 and added.json() == {"drifts": [{"entity": "Bill", "id": "3", "kind": "zero"}]}
    bad = admin.post(f"/_sandbox/drifts/{REALM}", json={"entity": "Vendor", "id": "3", "kind": "long_note"})
    assert bad.status_code == 400 and "does not apply to Vendor" in bad.json()["error"]
    assert admin.delete(f"/_sandbox/drifts/{REALM}").json() == {"drifts": []}
    assert admin.post(f"/_sandbox/reconnect/{REALM}").status_code == 200 and not sandbox.is_revoked(REALM)
