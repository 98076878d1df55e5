"""The Ramp sandbox every process of a project shares: a window on the shared QBO sandbox's world and clock."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ledger_pipeline.rails.qbo.sandbox import shared_sandbox as shared_qbo_sandbox

from .auth import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, client_credentials_for
from .sandbox import RampSandbox
from .spec import API_PREFIX, DEMO_BUSINESSES, RAMP_RATE_LIMIT, SCOPES

DEFAULT_PORT = 12113


@functools.cache
def shared_sandbox(state_dir: Path, scale: float = 1.0, rate_limited: bool = True) -> RampSandbox:
    """The Ramp view of the QBO sandbox's businesses under state_dir (same clock, same scale, same state file: the
    refresh-token generations and revocations are seen by every process)."""
    qbo = shared_qbo_sandbox(state_dir, scale, rate_limited)
    return RampSandbox(qbo, DEMO_BUSINESSES, rate_limit=RAMP_RATE_LIMIT if rate_limited else None)


def serve_shared(state_dir: Path, host: str, port: int) -> None:
    from .server import serve

    serve(shared_sandbox(state_dir), host, port)


def demo_accounts() -> dict[str, str]:
    """Business id -> business name of every demo Ramp business."""
    return {b.business_id: b.name for b in DEMO_BUSINESSES}


def credentials(connection: Any, state_dir: Path) -> dict[str, Any]:
    """What a Ramp client needs to read this tenant's businesses over HTTP (`sandbox serve --rail ramp`).

    The refresh token is the business's current one: using it rotates it (strictly), so the pipeline's stored
    token then answers invalid_grant; point a tool at the business's own client credentials instead, which
    rotate nothing."""
    business_ids = getattr(connection, "account_ids", None) or (connection.account_id,)
    box = shared_sandbox(state_dir)
    base = f"http://127.0.0.1:{DEFAULT_PORT}"
    own = {b: dict(zip(("client_id", "client_secret"), client_credentials_for(b))) for b in business_ids}
    return {
        "rail": "ramp",
        "base_url": base,
        "token_url": f"{base}{API_PREFIX}/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": REDIRECT_URI,
        "scope": " ".join(SCOPES),
        "refresh_tokens": {b: box.current_refresh_token(b) for b in business_ids},
        "client_credentials": own,
    }
