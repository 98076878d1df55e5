"""The platform's documented demo secret key and how requests present it (Bearer, or Basic with the key as user).

Sandbox values, not secrets: useless against real Stripe, documented in docs/sandbox.md.
"""

from __future__ import annotations

import base64
import hmac

from .spec import SANDBOX_BASE_URL

PLATFORM_KEY = "sk_test_51LedgerPipelineSandboxPlatformDemoKeyNotForProduction"


def sandbox_credentials(account_id: str) -> dict[str, str]:
    """What a client needs to read one connected account of the sandbox platform."""
    return {"api_key": PLATFORM_KEY, "stripe_account": account_id, "base_url": SANDBOX_BASE_URL}


def presented_key(header: str | None) -> str | None:
    """The API key an Authorization header carries, or None when it carries none."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode().partition(":")[0] or None
        except (ValueError, UnicodeDecodeError):
            return None
    return None


def is_platform_key(key: str) -> bool:
    return hmac.compare_digest(key.encode(), PLATFORM_KEY.encode())


def redacted(key: str) -> str:
    """How Stripe names a key in an error: its prefix and last four characters."""
    prefix = key[:8] if key.startswith(("sk_test_", "sk_live_", "rk_test_")) else ""
    return f"{prefix}{'*' * 12}{key[-4:]}"
