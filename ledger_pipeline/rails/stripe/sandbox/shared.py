"""The Stripe sandbox every process of a project shares: a window on the shared QBO sandbox's world and clock."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ledger_pipeline.rails.qbo.sandbox import shared_sandbox as shared_qbo_sandbox

from .auth import PLATFORM_KEY
from .sandbox import StripeSandbox
from .spec import DEMO_ACCOUNTS, STRIPE_RATE_LIMIT

DEFAULT_PORT = 12111


@functools.cache
def shared_sandbox(state_dir: Path, scale: float = 1.0, rate_limited: bool = True) -> StripeSandbox:
    """The Stripe view of the QBO sandbox's businesses under state_dir (same clock, same scale)."""
    qbo = shared_qbo_sandbox(state_dir, scale, rate_limited)
    return StripeSandbox(qbo, DEMO_ACCOUNTS, rate_limit=STRIPE_RATE_LIMIT if rate_limited else None)


def serve_shared(state_dir: Path, host: str, port: int) -> None:
    from .server import serve

    serve(shared_sandbox(state_dir), host, port)


def demo_accounts() -> dict[str, str]:
    """Connected account id -> business name of every sandbox account."""
    return {a.account_id: a.business_name for a in DEMO_ACCOUNTS}


def credentials(connection: Any, state_dir: Path) -> dict[str, str]:
    """What a Stripe client (the official SDK included) needs to read this tenant's account over HTTP."""
    return {
        "rail": "stripe",
        "api_key": PLATFORM_KEY,
        "stripe_account": connection.account_id,
        "base_url": f"http://127.0.0.1:{DEFAULT_PORT}",
    }
