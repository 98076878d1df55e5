"""Fixtures of the Plaid sandbox tests: a small QBO world seen through two banks, in-process and over HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Iterator

import httpx
import pytest

from ledger_pipeline.rails.plaid.sandbox import (CLIENT_ID, SANDBOX_BASE_URL, SECRET, PlaidSandbox,
                                                 access_token_for)
from ledger_pipeline.rails.plaid.sandbox.server import RunningServer, start_in_thread
from ledger_pipeline.rails.plaid.sandbox.spec import bank_item, card_item
from ledger_pipeline.rails.qbo.sandbox import CompanySpec, QboSandbox

COMPANIES = (CompanySpec("9130350000000101", "Small Card Shop", size=600, change_rate=0.06, utc_offset="-05:00"),
             CompanySpec("9130350000000102", "Other Card Shop", size=400, change_rate=0.05, utc_offset="-08:00"))
BANK, CARD, OTHER = bank_item(COMPANIES[0].realm_id), card_item(COMPANIES[0].realm_id), bank_item(COMPANIES[1].realm_id)
ITEMS = (BANK, CARD, OTHER)
TOKEN = access_token_for(BANK.item_id)
DAYS = 20  # the clock of the shared world: GENESIS + 20 days


def build(days: int = DAYS, *, rate_limit=None) -> PlaidSandbox:
    qbo = QboSandbox(COMPANIES, seed=5, rate_limit=None)
    qbo.advance(timedelta(days=days))
    return PlaidSandbox(qbo, ITEMS, rate_limit=rate_limit)


def client(sb: PlaidSandbox) -> httpx.Client:
    return httpx.Client(transport=sb.transport(), base_url=SANDBOX_BASE_URL)


def post(http: httpx.Client, path: str, token: str | None = TOKEN, **body: Any) -> httpx.Response:
    """A request with the demo keys in the body (and the access token, unless None)."""
    keys = {"client_id": CLIENT_ID, "secret": SECRET}
    if token is not None:
        keys["access_token"] = token
    return http.post(path, json={**keys, **body})


def sync_all(http: httpx.Client, token: str = TOKEN, cursor: str = "", count: int = 500,
             **body: Any) -> tuple[list[dict], str]:
    """Every page from `cursor` on: the pages' bodies and the last next_cursor."""
    pages = []
    while True:
        response = post(http, "/transactions/sync", token, cursor=cursor, count=count, **body)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
        if not pages[-1]["has_more"]:
            return pages, cursor


def apply(state: dict[str, dict], pages: list[dict]) -> dict[str, dict]:
    """A client's copy of the transactions after applying pages of added / modified / removed."""
    for page in pages:
        for txn in page["added"] + page["modified"]:
            state[txn["transaction_id"]] = txn
        for gone in page["removed"]:
            state.pop(gone["transaction_id"], None)
    return state


@pytest.fixture(scope="module")
def world() -> PlaidSandbox:
    """A sandbox shared by a module's read-only tests (do not move its clock or arm faults on it)."""
    return build()


@pytest.fixture(scope="module")
def http(world: PlaidSandbox) -> httpx.Client:
    return client(world)


@pytest.fixture(scope="module")
def served(world: PlaidSandbox) -> Iterator[RunningServer]:
    server = start_in_thread(world, "127.0.0.1", 0)
    try:
        yield server
    finally:
        server.stop()
