"""Fixtures of the Ramp sandbox tests: a small QBO business seen through Ramp (and its bank), in-process."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from ledger_pipeline.rails.qbo.sandbox import CompanySpec, QboSandbox
from ledger_pipeline.rails.ramp.sandbox import (SANDBOX_BASE_URL, SCOPES, RampSandbox, RateLimit, business_for,
                                                client_credentials_for)

# A business whose card spend, at the clock below, has pending transactions and terminated and unactivated cards.
COMPANY = CompanySpec("9130350000000140", "Ramp Test Shop", size=600, change_rate=0.06, utc_offset="-05:00")
BUSINESS = business_for(COMPANY.realm_id, COMPANY.name)
CLOCK = timedelta(days=30, hours=20)  # GENESIS + 30 days 20 hours
TOKEN_PATH = "/developer/v1/token"


def build(clock: timedelta = CLOCK, *, rate_limit: RateLimit | None = None, state_path=None,
          businesses=(BUSINESS,)) -> RampSandbox:
    qbo = QboSandbox((COMPANY,), seed=5, rate_limit=None, state_path=state_path)
    qbo.advance(clock)
    return RampSandbox(qbo, businesses, rate_limit=rate_limit)


def client(sb: RampSandbox) -> httpx.Client:
    return httpx.Client(transport=sb.transport(), base_url=SANDBOX_BASE_URL)


def own_token(http: httpx.Client, scopes: tuple[str, ...] = SCOPES, business_id: str = BUSINESS.business_id) -> str:
    """An access token of the business's own API client (client-credentials grant)."""
    response = http.post(TOKEN_PATH, auth=client_credentials_for(business_id),
                         data={"grant_type": "client_credentials", "scope": " ".join(scopes)})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def get(http: httpx.Client, token: str, path: str, **params: Any) -> httpx.Response:
    return http.get(f"/developer/v1/{path}", params=params, headers={"Authorization": f"Bearer {token}"})


def read_all(http: httpx.Client, token: str, path: str, **params: Any) -> list[dict]:
    """Every object of a list, following `page.next` verbatim."""
    response = get(http, token, path, page_size=100, **params)
    out = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        out += body["data"]
        if body["page"]["next"] is None:
            return out
        response = http.get(body["page"]["next"], headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def world() -> RampSandbox:
    """A sandbox shared by a module's read-only tests (do not move its clock or arm faults on it)."""
    return build()


@pytest.fixture(scope="module")
def http(world: RampSandbox) -> httpx.Client:
    return client(world)


@pytest.fixture(scope="module")
def token(http: httpx.Client) -> str:
    return own_token(http)
