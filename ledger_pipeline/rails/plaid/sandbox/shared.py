"""The Plaid sandbox every process of a project shares: a window on the shared QBO sandbox's world and clock."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES
from ledger_pipeline.rails.qbo.sandbox import shared_sandbox as shared_qbo_sandbox

from .auth import CLIENT_ID, SECRET, access_token_for
from .sandbox import PlaidSandbox
from .spec import DEMO_ITEMS, PLAID_RATE_LIMIT

DEFAULT_PORT = 12112


@functools.cache
def shared_sandbox(state_dir: Path, scale: float = 1.0, rate_limited: bool = True) -> PlaidSandbox:
    """The Plaid view of the QBO sandbox's businesses under state_dir (same clock, same scale, same state file:
    the login switch is seen by every process)."""
    qbo = shared_qbo_sandbox(state_dir, scale, rate_limited)
    return PlaidSandbox(qbo, DEMO_ITEMS, rate_limit=PLAID_RATE_LIMIT if rate_limited else None)


def serve_shared(state_dir: Path, host: str, port: int) -> None:
    from .server import serve

    serve(shared_sandbox(state_dir), host, port)


def demo_accounts() -> dict[str, str]:
    """Item id -> "<business name> (<institution name>)" of every demo item."""
    names = {c.realm_id: c.name for c in DEMO_COMPANIES}
    return {i.item_id: f"{names[i.realm_id]} ({i.institution_name})" for i in DEMO_ITEMS}


def credentials(connection: Any, state_dir: Path) -> dict[str, Any]:
    """What a Plaid client (the official SDK included) needs to read this tenant's items over HTTP."""
    item_ids = getattr(connection, "item_ids", None)
    if item_ids is None:
        item_ids = getattr(connection, "account_ids")
    return {
        "rail": "plaid",
        "client_id": CLIENT_ID,
        "secret": SECRET,
        "base_url": f"http://127.0.0.1:{DEFAULT_PORT}",
        "access_tokens": {item_id: access_token_for(item_id) for item_id in item_ids},
    }
