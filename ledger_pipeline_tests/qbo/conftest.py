"""Fixtures around the offline QBO sandbox, shared by the sandbox's and the client's tests."""

from __future__ import annotations

from typing import Callable, Iterator

import httpx
import pytest

from ledger_pipeline.rails.qbo.sandbox import (SANDBOX_BASE_URL, SANDBOX_TOKEN_URL, CompanySpec, QboSandbox,
                                               sandbox_credentials)
from ledger_pipeline.rails.qbo.sandbox.server import RunningServer, start_in_thread

SMALL_COMPANIES = (
    CompanySpec("9130350000000101", "Test Alpha LLC", size=600, change_rate=0.03, utc_offset="-07:00"),
    CompanySpec("9130350000000102", "Test Beta Inc.", size=600, change_rate=0.03, utc_offset="-05:00"),
)


@pytest.fixture
def sandbox() -> QboSandbox:
    """A small in-memory sandbox: two companies of ~600 objects, no rate limit."""
    return QboSandbox(SMALL_COMPANIES, seed=11, rate_limit=None)


@pytest.fixture
def served_sandbox(sandbox: QboSandbox) -> Iterator[RunningServer]:
    """The `sandbox` fixture behind a real HTTP server on 127.0.0.1 (random port); `.sandbox` is it."""
    server = start_in_thread(sandbox, "127.0.0.1", 0)
    try:
        yield server
    finally:
        server.stop()


def fetch_access_token(client: httpx.Client, realm_id: str, token_url: str = SANDBOX_TOKEN_URL) -> str:
    """One refresh with the documented initial credentials (rotates the realm's refresh token)."""
    client_id, secret, refresh = sandbox_credentials(realm_id)
    response = client.post(token_url, data={"grant_type": "refresh_token", "refresh_token": refresh},
                           auth=(client_id, secret))
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture
def qbo_api() -> Iterator[Callable[..., httpx.Client]]:
    """Factory: an httpx client holding a fresh bearer token for (sandbox, realm), in-process or over HTTP.

    It reconnects the realm first, so the documented initial refresh token is current again.
    """
    clients: list[httpx.Client] = []

    def make(sb: QboSandbox, realm_id: str, *, base_url: str = SANDBOX_BASE_URL) -> httpx.Client:
        transport = sb.transport() if base_url == SANDBOX_BASE_URL else None
        client = httpx.Client(base_url=base_url, transport=transport,
                              headers={"Accept": "application/json"}, params={"minorversion": "75"})
        clients.append(client)
        sb.reconnect(realm_id)  # earlier tests may have rotated the documented refresh token
        token = fetch_access_token(client, realm_id, f"{base_url}/oauth2/v1/tokens/bearer")
        client.headers["Authorization"] = f"Bearer {token}"
        return client

    yield make
    for client in clients:
        client.close()
