"""Injected faults and the rate limit, as a raw HTTP client sees them."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from ledger_pipeline.rails.qbo.sandbox import SANDBOX_TOKEN_URL, Fault, QboSandbox, RateLimit, sandbox_credentials

REALM, OTHER = "9130350000000101", "9130350000000102"
QUERY = {"query": "SELECT * FROM Bill MAXRESULTS 50"}


def get(api: httpx.Client, realm: str = REALM) -> httpx.Response:
    return api.get(f"/v3/company/{realm}/query", params=QUERY)


def test_throttle_faults_send_json_or_xml_with_optional_retry_after(sandbox: QboSandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    sandbox.inject(REALM, Fault("throttle", retry_after=2))
    sandbox.inject(REALM, Fault("throttle_xml"))
    first, second, third = get(api), get(api), get(api)
    assert first.status_code == 429 and first.headers["Retry-After"] == "2"
    assert first.json()["Fault"]["Error"][0]["code"] == "3001"
    assert "ThrottleExceeded" in first.json()["Fault"]["Error"][0]["Message"]
    assert second.status_code == 429 and "Retry-After" not in second.headers
    assert second.headers["content-type"].startswith("application/xml")
    assert second.text.startswith("<?xml") and 'code="3001"' in second.text
    assert third.status_code == 200


@pytest.mark.parametrize(("status", "content_type"), [(500, "application/json"), (502, "text/html"),
                                                      (503, "application/json")])
def test_server_errors(sandbox: QboSandbox, qbo_api, status: int, content_type: str) -> None:
    api = qbo_api(sandbox, REALM)
    sandbox.inject(REALM, Fault("server_error", status=status, retry_after=0.5))
    response = get(api)
    assert response.status_code == status and response.headers["content-type"].startswith(content_type)
    assert response.headers["Retry-After"] == "0.5"
    if content_type == "application/json":
        assert response.json()["Fault"]["type"] == "SystemFault"
    assert get(api).status_code == 200


def test_slow_expired_malformed_and_xml_faults(sandbox: QboSandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    sandbox.inject(REALM, Fault("slow", delay=0.3))
    began = time.monotonic()
    assert get(api).status_code == 200 and time.monotonic() - began >= 0.3
    sandbox.inject(REALM, Fault("expire_token"))
    expired = get(api)
    assert expired.status_code == 401 and expired.json()["Fault"]["Error"][0]["code"] == "3200"
    sandbox.inject(REALM, Fault("malformed_page"))
    broken = get(api)
    assert broken.status_code == 200 and broken.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    sandbox.inject(REALM, Fault("xml_error", status=500))
    xml = get(api)
    assert xml.status_code == 500 and xml.headers["content-type"].startswith("application/xml")
    assert "<IntuitResponse" in xml.text
    assert get(api).json()["QueryResponse"]["maxResults"] == 50


def test_reset_raises_transport_errors_in_process(sandbox: QboSandbox, qbo_api) -> None:
    api = qbo_api(sandbox, REALM)
    sandbox.inject(REALM, Fault("reset", count=2))
    with pytest.raises(httpx.ReadError):
        get(api)
    with pytest.raises(httpx.RemoteProtocolError):
        get(api)
    assert get(api).status_code == 200


def test_after_count_endpoint_and_realm_scoping(sandbox: QboSandbox, qbo_api) -> None:
    api, other = qbo_api(sandbox, REALM), qbo_api(sandbox, OTHER)
    sandbox.inject(REALM, Fault("server_error", endpoint="query", after=2, count=2, status=500))
    cdc = api.get(f"/v3/company/{REALM}/cdc", params={"entities": "Bill", "changedSince": "2026-09-30T00:00:00Z"})
    assert cdc.status_code == 200  # not a query: neither counted nor hit
    assert [get(api).status_code for _ in range(5)] == [200, 200, 500, 500, 200]
    assert sandbox.faults(REALM) == []
    sandbox.inject(REALM, Fault("throttle", count=-1))
    assert [get(api).status_code for _ in range(3)] == [429, 429, 429]
    assert get(other, OTHER).status_code == 200
    sandbox.clear_faults(REALM)
    assert get(api).status_code == 200


def test_token_endpoint_faults(sandbox: QboSandbox) -> None:
    client = httpx.Client(transport=sandbox.transport())
    client_id, secret, refresh = sandbox_credentials(REALM)
    sandbox.inject(REALM, Fault("server_error", endpoint="token", status=503))
    sandbox.inject(REALM, Fault("expire_token", endpoint="any"))  # never fires on the token endpoint
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    assert client.post(SANDBOX_TOKEN_URL, data=form, auth=(client_id, secret)).status_code == 503
    ok = client.post(SANDBOX_TOKEN_URL, data=form, auth=(client_id, secret))
    assert ok.status_code == 200  # the failed attempt did not rotate the refresh token


def test_rate_limit_per_minute_alternates_json_and_xml(sandbox: QboSandbox, qbo_api) -> None:
    limited = QboSandbox(sandbox.companies, seed=11, rate_limit=RateLimit(per_minute=5, concurrent=None))
    api, other = qbo_api(limited, REALM), qbo_api(limited, OTHER)
    assert [get(api).status_code for _ in range(5)] == [200] * 5
    json_refusal, xml_refusal = get(api), get(api)
    assert json_refusal.status_code == 429 and json_refusal.json()["Fault"]["Error"][0]["code"] == "3001"
    assert 1 <= int(json_refusal.headers["Retry-After"]) <= 60
    assert xml_refusal.status_code == 429 and "Retry-After" not in xml_refusal.headers
    assert xml_refusal.headers["content-type"].startswith("application/xml")
    assert get(other, OTHER).status_code == 200  # per realm
    limited.reconnect(REALM)
    client_id, secret, refresh = sandbox_credentials(REALM)
    token = httpx.Client(transport=limited.transport()).post(
        SANDBOX_TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": refresh}, auth=(client_id, secret))
    assert token.status_code == 200  # the token endpoint is not part of the API throttle


def test_rate_limit_on_concurrent_requests(sandbox: QboSandbox, qbo_api) -> None:
    limited = QboSandbox(sandbox.companies, seed=11, rate_limit=RateLimit(per_minute=None, concurrent=2))
    api = qbo_api(limited, REALM)
    limited.inject(REALM, Fault("slow", delay=0.4, count=2))
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(get(api).status_code)) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.15)
    assert get(api).status_code == 429
    for thread in threads:
        thread.join()
    assert results == [200, 200] and get(api).status_code == 200
