"""The documented demo client id, secret and access tokens, and how a request presents them (body or headers).

Sandbox values, not secrets: useless against real Plaid, documented in docs/sandbox.md.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

CLIENT_ID = "6a1b2c3d4e5f60718293a4b5"  # 24 hex characters, like Plaid's
SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1"  # 30 hex characters, like Plaid's
TOKEN_PREFIX = "access-sandbox-"


def access_token_for(item_id: str) -> str:
    """The item's demo access token: `access-sandbox-` and a UUID4-shaped tail derived from the item id."""
    digest = hashlib.blake2b(f"plaid access token|{item_id}".encode(), digest_size=16).digest()
    return TOKEN_PREFIX + str(uuid.UUID(bytes=digest, version=4))


def presented_keys(body: dict[str, Any], headers: Any) -> tuple[Any, Any]:
    """(client_id, secret) from the body, else from the PLAID-CLIENT-ID / PLAID-SECRET headers."""
    client_id = body.get("client_id", headers.get("plaid-client-id"))
    secret = body.get("secret", headers.get("plaid-secret"))
    return client_id, secret


def keys_valid(client_id: Any, secret: Any) -> bool:
    return (isinstance(client_id, str) and isinstance(secret, str)
            and hmac.compare_digest(client_id.encode(), CLIENT_ID.encode())
            and hmac.compare_digest(secret.encode(), SECRET.encode()))
