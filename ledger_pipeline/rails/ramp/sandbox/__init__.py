"""Offline Ramp: the corporate cards and bill pay of the QBO sandbox's businesses through Ramp's Developer API,
in-process or over HTTP.

See docs/sandbox.md (Ramp) for the businesses, the demo keys and tokens, what is emulated and the fault switches.
"""

from __future__ import annotations

from .auth import (CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, authorization_code_for, client_credentials_for,
                   initial_refresh_token)
from .sandbox import RampSandbox, SandboxTransport
from .shared import DEFAULT_PORT, credentials, demo_accounts, serve_shared, shared_sandbox
from .spec import (DEMO_BUSINESSES, RAMP_RATE_LIMIT, SANDBOX_BASE_URL, SCOPES, Fault, RampBusiness, RateLimit,
                   business_for, businesses_for)

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "DEFAULT_PORT", "DEMO_BUSINESSES", "RAMP_RATE_LIMIT", "REDIRECT_URI",
           "SANDBOX_BASE_URL", "SCOPES", "Fault", "RampBusiness", "RampSandbox", "RateLimit", "SandboxTransport",
           "authorization_code_for", "business_for", "businesses_for", "client_credentials_for", "credentials",
           "demo_accounts", "initial_refresh_token", "serve_shared", "shared_sandbox"]
