"""Offline QuickBooks Online: synthetic companies behind QBO's wire format, in-process or over HTTP.

See docs/sandbox.md for what is emulated, the demo realms and credentials, and the fault switches.
"""

from __future__ import annotations

from .auth import CLIENT_ID, CLIENT_SECRET, sandbox_credentials
from .sandbox import QboSandbox, SandboxTransport
from .shared import DEFAULT_PORT, advance_shared_clock, credentials, demo_accounts, serve_shared, shared_sandbox
from .spec import (DEFAULT_START, DEMO_COMPANIES, GENESIS, QBO_RATE_LIMIT, SANDBOX_BASE_URL, SANDBOX_TOKEN_URL,
                   CompanySpec, Fault, RateLimit)

__all__ = [
    "CLIENT_ID", "CLIENT_SECRET", "DEFAULT_PORT", "DEFAULT_START", "advance_shared_clock", "credentials",
    "demo_accounts", "serve_shared", "shared_sandbox", "DEMO_COMPANIES", "GENESIS", "QBO_RATE_LIMIT", "SANDBOX_BASE_URL",
    "SANDBOX_TOKEN_URL", "CompanySpec", "Fault", "QboSandbox", "RateLimit", "SandboxTransport", "sandbox_credentials",
]
