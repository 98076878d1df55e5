"""OAuth 2 for the sandbox: documented demo credentials, rotating refresh tokens, stateless access tokens.

Access tokens are HMAC-signed (realm, expiry on the simulated clock, generation), so any process
can check them. Refresh tokens carry their realm and generation; only the current generation of a
realm (kept in the shared state) is accepted, and using it moves the realm to the next one, which
is what makes the previous refresh token answer invalid_grant. The signing key is public on
purpose: these are sandbox credentials, documented in docs/sandbox.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from .spec import check_realm_id

CLIENT_ID = "ABsandboxLedgerPipelineDemoClient0001"
CLIENT_SECRET = "sandbox-demo-secret-not-for-production"
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 8_726_400  # 101 days, as QBO reports it (not enforced by the sandbox)
_KEY = b"ledger-pipeline qbo sandbox signing key (public, sandbox only)"


def _sign(*parts: object) -> str:
    message = "|".join(str(p) for p in parts).encode()
    return hmac.new(_KEY, message, hashlib.sha256).hexdigest()[:32]


def refresh_token(realm_id: str, generation: int) -> str:
    return f"RT1-{realm_id}-{generation}-{_sign('refresh', realm_id, generation)}"


def sandbox_credentials(realm_id: str) -> tuple[str, str, str]:
    """(client_id, client_secret, initial refresh token) of a sandbox realm: documented demo values."""
    check_realm_id(realm_id)
    return CLIENT_ID, CLIENT_SECRET, refresh_token(realm_id, 0)


@dataclass(frozen=True)
class RefreshClaim:
    realm_id: str
    generation: int


def read_refresh_token(token: str) -> RefreshClaim | None:
    """The realm and generation a refresh token claims, or None if it is not a valid sandbox token."""
    parts = token.split("-")
    if len(parts) != 4 or parts[0] != "RT1" or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    claim = RefreshClaim(parts[1], int(parts[2]))
    if not hmac.compare_digest(parts[3], _sign("refresh", claim.realm_id, claim.generation)):
        return None
    return claim


def realm_of_refresh_token(token: str) -> str | None:
    """The realm a refresh token names, signed or not (used only to route faults)."""
    parts = token.split("-")
    return parts[1] if len(parts) == 4 and parts[1].isdigit() else None


def access_token(realm_id: str, expires_at: int, generation: int) -> str:
    payload = f"{realm_id}.{expires_at}.{generation}"
    encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"sbx1.{encoded}.{_sign('access', payload)}"


def read_access_token(token: str) -> tuple[str, int] | None:
    """(realm, expiry in epoch seconds) of a validly signed access token, else None."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != "sbx1":
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(parts[2], _sign("access", payload)):
        return None
    realm_id, expires_at, _ = payload.split(".")
    return realm_id, int(expires_at)


def check_basic_auth(header: str | None) -> bool:
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return False
    client_id, _, secret = decoded.partition(":")
    return hmac.compare_digest(client_id, CLIENT_ID) and hmac.compare_digest(secret, CLIENT_SECRET)
