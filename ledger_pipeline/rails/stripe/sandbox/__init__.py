"""Offline Stripe (a Connect platform): the QBO sandbox's businesses through Stripe API v1, in-process or over HTTP.

See docs/sandbox.md (Stripe) for the accounts, the demo key, what is emulated and the fault switches.
"""

from __future__ import annotations

from .auth import PLATFORM_KEY, sandbox_credentials
from .sandbox import SandboxTransport, StripeSandbox
from .shared import DEFAULT_PORT, credentials, demo_accounts, serve_shared, shared_sandbox
from .spec import DEMO_ACCOUNTS, SANDBOX_BASE_URL, STRIPE_RATE_LIMIT, Fault, RateLimit, StripeAccount

__all__ = ["DEFAULT_PORT", "credentials", "demo_accounts", "serve_shared", "shared_sandbox", "DEMO_ACCOUNTS", "PLATFORM_KEY", "SANDBOX_BASE_URL", "STRIPE_RATE_LIMIT", "Fault", "RateLimit",
           "SandboxTransport", "StripeAccount", "StripeSandbox", "sandbox_credentials"]
