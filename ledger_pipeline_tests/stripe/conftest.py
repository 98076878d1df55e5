"""Fixtures of the Stripe sandbox tests: a small QBO world seen through Stripe, in-process and over HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Iterator

import httpx
import pytest

from ledger_pipeline.rails.qbo.sandbox import CompanySpec, QboSandbox
from ledger_pipeline.rails.stripe.sandbox import PLATFORM_KEY, SANDBOX_BASE_URL, StripeAccount, StripeSandbox
from ledger_pipeline.rails.stripe.sandbox.server import RunningServer, start_in_thread
from ledger_pipeline.rails.stripe.sandbox.spec import account_id_for

COMPANIES = (CompanySpec("9130350000000101", "Small Card Shop", size=600, change_rate=0.06, utc_offset="-05:00"),
             CompanySpec("9130350000000102", "Other Card Shop", size=400, change_rate=0.05, utc_offset="-08:00"))
ACCOUNTS = (StripeAccount(account_id_for(COMPANIES[0].realm_id, "Small"), COMPANIES[0].realm_id, COMPANIES[0].name),
            StripeAccount(account_id_for(COMPANIES[1].realm_id, "Other"), COMPANIES[1].realm_id, COMPANIES[1].name))
ACCOUNT = ACCOUNTS[0].account_id
DAYS = 20  # the clock of the shared world: GENESIS + 20 days


def build(days: int = DAYS, *, rate_limit=None) -> StripeSandbox:
    qbo = QboSandbox(COMPANIES, seed=5, rate_limit=None)
    qbo.advance(timedelta(days=days))
    return StripeSandbox(qbo, ACCOUNTS, rate_limit=rate_limit)


def client(sb: StripeSandbox, account: str | None = ACCOUNT, key: str | None = PLATFORM_KEY) -> httpx.Client:
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if account is not None:
        headers["Stripe-Account"] = account
    return httpx.Client(transport=sb.transport(), base_url=SANDBOX_BASE_URL, headers=headers)


@pytest.fixture(scope="module")
def world() -> StripeSandbox:
    """A sandbox shared by a module's read-only tests (do not move its clock or arm faults on it)."""
    return build()


@pytest.fixture(scope="module")
def http(world: StripeSandbox) -> httpx.Client:
    return client(world)


@pytest.fixture(scope="module")
def served(world: StripeSandbox) -> Iterator[RunningServer]:
    server = start_in_thread(world, "127.0.0.1", 0)
    try:
        yield server
    finally:
        server.stop()
