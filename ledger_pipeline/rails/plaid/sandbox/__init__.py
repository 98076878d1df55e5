"""Offline Plaid: the bank side of the QBO sandbox's businesses through Plaid's API, in-process or over HTTP.

See docs/sandbox.md (Plaid) for the items, the demo keys and tokens, what is emulated and the fault switches.
"""

from __future__ import annotations

from .auth import CLIENT_ID, SECRET, access_token_for
from .sandbox import PlaidSandbox, SandboxTransport
from .shared import DEFAULT_PORT, credentials, demo_accounts, serve_shared, shared_sandbox
from .spec import (DEMO_ITEMS, PLAID_RATE_LIMIT, SANDBOX_BASE_URL, Fault, PlaidAccountSpec, PlaidItem, RateLimit,
                   items_for)

__all__ = ["CLIENT_ID", "DEFAULT_PORT", "DEMO_ITEMS", "PLAID_RATE_LIMIT", "SANDBOX_BASE_URL", "SECRET", "Fault",
           "PlaidAccountSpec", "PlaidItem", "PlaidSandbox", "RateLimit", "SandboxTransport", "access_token_for",
           "credentials", "demo_accounts", "items_for", "serve_shared", "shared_sandbox"]
