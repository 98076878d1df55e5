"""The sandbox's CDC endpoint and OAuth flow, through raw httpx requests."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from ledger_pipeline.rails.qbo.sandbox import SANDBOX_TOKEN_URL, CompanySpec, QboSandbox, sandbox_credentials

REALM = "9130350000000101"


def cdc(api: httpx.Client, entities: str, since: str, realm: str = REALM) -> httpx.Response:
    return api.get(f"/v3/company/{realm}/cdc", params={"entities": entities, "changedSince": since})


def sections(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["CDCResponse"][0]["QueryResponse"]


def test_cdc_groups_by_entity_and_carries_tombstones_only_there(sandbox: QboSandbox, qbo_api) -> None:
    before = {e: sandbox.deleted_ids(REALM, e) for e in ("Bill", "Invoice")}
    since = sandbox.now.isoformat()
    sandbox.advance(timedelta(days=3))
    api = qbo_api(sandbox, REALM)
    deleted = {e: sandbox.deleted_ids(REALM, e) - before[e] for e in ("Bill", "Invoice")}
    assert deleted["Bill"] or deleted["Invoice"]
    bills, invoices, vendors = sections(cdc(api, "Bill,Invoice,Vendor", since))
    for section, entity in ((bills, "Bill"), (invoices, "Invoice")):
        tombstones = [o for o in section.get(entity, []) if o.get("status") == "Deleted"]
        assert {o["Id"] for o in tombstones} == deleted[entity]
        assert all(set(o) == {"Id", "status", "domain", "MetaData"} and set(o["MetaData"]) == {"LastUpdatedTime"}
                   for o in tombstones)
        listed = api.get(f"/v3/company/{REALM}/query", params={"query": f"SELECT Id FROM {entity} MAXRESULTS 1000"})
        assert not deleted[entity] & {o["Id"] for o in listed.json()["QueryResponse"][entity]}
    assert bills["maxResults"] == len(bills["Bill"]) and bills["startPosition"] == 1
    for section, entity in ((bills, "Bill"), (invoices, "Invoice"), (vendors, "Vendor")):
        stamps = [(o["MetaData"]["LastUpdatedTime"], int(o["Id"])) for o in section[entity]]
        assert stamps == sorted(stamps)
        assert all(datetime.fromisoformat(stamp) >= datetime.fromisoformat(since) for stamp, _ in stamps)


def test_cdc_refuses_more_than_30_days_and_caps_at_1000(qbo_api) -> None:
    big = QboSandbox((CompanySpec("9130350000000301", "Busy Co.", size=9000),), seed=5, rate_limit=None)
    api = qbo_api(big, "9130350000000301")
    too_old = (big.now - timedelta(days=30, seconds=1)).isoformat()
    refused = cdc(api, "Bill", too_old, "9130350000000301")
    assert refused.status_code == 400
    assert refused.json()["Fault"]["Error"][0]["code"] == "4002"
    since = (big.now - timedelta(days=29)).isoformat()
    everything = sections(cdc(api, "Bill,Invoice,BillPayment,Payment,Vendor,Customer", since, "9130350000000301"))
    objects = [o for s in everything for k, v in s.items() if isinstance(v, list) for o in v]
    assert len(objects) == 1000
    newest = max(o["MetaData"]["LastUpdatedTime"] for o in objects)
    rest = sections(cdc(api, "Bill,Invoice,BillPayment,Payment,Vendor,Customer", newest, "9130350000000301"))
    later = [o for s in rest for k, v in s.items() if isinstance(v, list) for o in v]
    assert later and min(o["MetaData"]["LastUpdatedTime"] for o in later) == newest
    assert sections(cdc(api, "Account", big.now.isoformat(), "9130350000000301")) == [{}]
    assert cdc(api, "Widget", since, "9130350000000301").status_code == 400


def _refresh(client: httpx.Client, refresh_token: str, secret: str | None = None) -> httpx.Response:
    client_id, real_secret, _ = sandbox_credentials(REALM)
    return client.post(SANDBOX_TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                       auth=(client_id, secret or real_secret))


def test_refresh_rotates_and_the_old_token_answers_invalid_grant(sandbox: QboSandbox) -> None:
    client = httpx.Client(transport=sandbox.transport())
    initial = sandbox_credentials(REALM)[2]
    first = _refresh(client, initial)
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["x_refresh_token_expires_in"] == 8726400 and body["refresh_token"] != initial
    assert _refresh(client, initial).json() == {"error": "invalid_grant"}
    second = _refresh(client, body["refresh_token"])
    assert second.status_code == 200 and second.json()["refresh_token"] != body["refresh_token"]
    assert _refresh(client, body["refresh_token"]).status_code == 400
    wrong = _refresh(client, second.json()["refresh_token"], secret="nope")
    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid_client"})
    assert _refresh(client, "RT1-9130350000000101-2-forged").json() == {"error": "invalid_grant"}
    sandbox.reconnect(REALM)
    assert _refresh(client, initial).status_code == 200


def _fault_code(response: httpx.Response) -> tuple[int, str, str]:
    fault = response.json()["Fault"]
    return response.status_code, fault["type"], fault["Error"][0]["code"]


def test_access_tokens_expire_after_an_hour_of_simulated_time(sandbox: QboSandbox) -> None:
    client = httpx.Client(transport=sandbox.transport(), base_url="http://qbo-sandbox.local")
    token = _refresh(client, sandbox_credentials(REALM)[2]).json()["access_token"]
    url, params = f"/v3/company/{REALM}/query", {"query": "SELECT COUNT(*) FROM Bill", "minorversion": "75"}
    assert client.get(url, params=params, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert _fault_code(client.get(url, params=params)) == (401, "AuthenticationFault", "3200")
    assert _fault_code(client.get(url, params=params, headers={"Authorization": "Bearer junk"}))[2] == "3200"
    bearer = {"Authorization": f"Bearer {token}"}
    other = client.get("/v3/company/9130350000000102/query", params=params, headers=bearer)
    assert _fault_code(other) == (403, "AuthorizationFault", "3100")
    sandbox.advance(timedelta(minutes=59))
    assert client.get(url, params=params, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    sandbox.advance(timedelta(minutes=2))
    expired = client.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
    assert _fault_code(expired) == (401, "AuthenticationFault", "3200")
    assert expired.json()["Fault"]["Error"][0]["Detail"].startswith("Token expired")
    assert "errorCode=003200" in expired.json()["Fault"]["Error"][0]["Message"]


def test_credentials_are_documented_values_and_realm_ids_are_checked() -> None:
    client_id, secret, refresh = sandbox_credentials(REALM)
    assert sandbox_credentials(REALM) == (client_id, secret, refresh)
    assert sandbox_credentials("9130350000000102")[2] != refresh
    with pytest.raises(ValueError, match="realm id"):
        sandbox_credentials("91303500000001x1")
