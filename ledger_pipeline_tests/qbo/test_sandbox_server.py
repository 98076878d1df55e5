"""The sandbox over real HTTP, and several sandboxes sharing one state file (as Dagster steps do)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from ledger_pipeline.rails.qbo.sandbox import SANDBOX_TOKEN_URL, Fault, QboSandbox, sandbox_credentials
from ledger_pipeline.rails.qbo.sandbox.server import RunningServer

REALM = "9130350000000101"
QUERIES = ("SELECT * FROM Bill ORDERBY MetaData.LastUpdatedTime STARTPOSITION 11 MAXRESULTS 200",
           "SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)", "SELECT * FROM Widget")


def test_real_server_answers_the_same_bytes_as_the_transport(served_sandbox: RunningServer, qbo_api) -> None:
    twin = QboSandbox(served_sandbox.sandbox.companies, seed=11, rate_limit=None)
    over_http = qbo_api(served_sandbox.sandbox, REALM, base_url=served_sandbox.base_url)
    in_process = qbo_api(twin, REALM)
    for text in QUERIES:
        a = over_http.get(f"/v3/company/{REALM}/query", params={"query": text})
        b = in_process.get(f"/v3/company/{REALM}/query", params={"query": text})
        assert (a.status_code, a.headers["content-type"], a.content) == (b.status_code, b.headers["content-type"],
                                                                         b.content)
    since = {"entities": "Bill,Invoice,Vendor", "changedSince": "2026-09-29T00:00:00Z"}
    assert over_http.get(f"/v3/company/{REALM}/cdc", params=since).content == \
        in_process.get(f"/v3/company/{REALM}/cdc", params=since).content


def test_admin_endpoints_drive_clock_and_faults(served_sandbox: RunningServer, qbo_api) -> None:
    sb = served_sandbox.sandbox
    admin = httpx.Client(base_url=served_sandbox.base_url)
    start = sb.now
    assert admin.post("/_sandbox/clock", json={"advance_seconds": 90}).json()["now"] == \
        (start + timedelta(seconds=90)).isoformat().replace("+00:00", "Z")
    assert admin.post("/_sandbox/clock", json={"set": "2026-10-02T00:00:00Z"}).status_code == 200
    assert sb.now.isoformat() == "2026-10-02T00:00:00+00:00"
    assert admin.post("/_sandbox/clock", json={"set": "2020-01-01T00:00:00Z"}).status_code == 400
    api = qbo_api(sb, REALM, base_url=served_sandbox.base_url)
    info = admin.get("/_sandbox").json()
    assert [r["realm_id"] for r in info["realms"]] == [REALM, "9130350000000102"]
    added = admin.post(f"/_sandbox/faults/{REALM}", json={"kind": "server_error", "status": 502})
    assert added.status_code == 201 and added.json()["faults"][0]["status"] == 502
    assert admin.post(f"/_sandbox/faults/{REALM}", json={"kind": "meteor"}).status_code == 400
    assert api.get(f"/v3/company/{REALM}/query", params={"query": QUERIES[1]}).status_code == 502
    admin.post(f"/_sandbox/faults/{REALM}", json={"kind": "throttle", "count": -1})
    assert admin.delete(f"/_sandbox/faults/{REALM}").json() == {"faults": []}
    assert api.get(f"/v3/company/{REALM}/query", params={"query": QUERIES[1]}).status_code == 200


def test_reset_closes_the_socket(served_sandbox: RunningServer, qbo_api) -> None:
    api = qbo_api(served_sandbox.sandbox, REALM, base_url=served_sandbox.base_url)
    served_sandbox.sandbox.inject(REALM, Fault("reset"))
    with pytest.raises(httpx.TransportError):
        api.get(f"/v3/company/{REALM}/query", params={"query": QUERIES[1]})
    assert api.get(f"/v3/company/{REALM}/query", params={"query": QUERIES[1]}).status_code == 200


def _refresh(sb: QboSandbox, token: str) -> httpx.Response:
    client_id, secret, _ = sandbox_credentials(REALM)
    return httpx.Client(transport=sb.transport()).post(
        SANDBOX_TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": token}, auth=(client_id, secret))


def test_state_file_shares_clock_tokens_and_faults(sandbox: QboSandbox, tmp_path: Path) -> None:
    path = tmp_path / "qbo-sandbox.json"
    a = QboSandbox(sandbox.companies, seed=11, rate_limit=None, state_path=path)
    b = QboSandbox(sandbox.companies, seed=11, rate_limit=None, state_path=path)
    a.advance(timedelta(hours=7))
    assert b.now == a.now
    rotated = _refresh(a, sandbox_credentials(REALM)[2]).json()["refresh_token"]
    assert _refresh(b, sandbox_credentials(REALM)[2]).json() == {"error": "invalid_grant"}
    b.inject(REALM, Fault("throttle", endpoint="token"))
    assert _refresh(a, rotated).status_code == 429
    assert _refresh(b, rotated).status_code == 200 and a.faults(REALM) == []
    a.touch(REALM, "Bill", "5")
    assert b.live_objects(REALM, "Bill")["5"] == a.live_objects(REALM, "Bill")["5"]
    with pytest.raises(ValueError, match="another seed"):
        QboSandbox(sandbox.companies, seed=12, state_path=path)


def test_state_file_is_shared_with_another_process(sandbox: QboSandbox, tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    here = QboSandbox(sandbox.companies, seed=11, rate_limit=None, state_path=path)
    script = f"""
import httpx
from datetime import timedelta
from ledger_pipeline.rails.qbo.sandbox import QboSandbox, CompanySpec, SANDBOX_TOKEN_URL, sandbox_credentials
specs = {sandbox.companies!r}
sb = QboSandbox(specs, seed=11, rate_limit=None, state_path={str(path)!r})
sb.advance(timedelta(hours=2))
cid, secret, refresh = sandbox_credentials({REALM!r})
r = httpx.Client(transport=sb.transport()).post(SANDBOX_TOKEN_URL, auth=(cid, secret),
    data={{"grant_type": "refresh_token", "refresh_token": refresh}})
print(r.json()["refresh_token"])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    rotated = done.stdout.strip()
    assert here.now - timedelta(hours=2) == QboSandbox(sandbox.companies, seed=11).now
    assert _refresh(here, sandbox_credentials(REALM)[2]).status_code == 400
    assert _refresh(here, rotated).status_code == 200
