"""The Stripe sandbox as a real HTTP server on loopback, for the official SDK and any other tool (the kit's server,
ledger_pipeline/sandbox_kit/server.py)."""

from __future__ import annotations

from typing import TextIO

from ledger_pipeline.sandbox_kit import server as kit
from ledger_pipeline.sandbox_kit.server import RunningServer

from .sandbox import StripeSandbox

__all__ = ["RunningServer", "serve", "start_in_thread"]


def start_in_thread(sandbox: StripeSandbox, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    return kit.start_in_thread(sandbox, host, port, "Stripe")


def serve(sandbox: StripeSandbox, host: str, port: int, *, out: TextIO | None = None) -> None:
    """Serve until interrupted, after announcing the base URL and the connected accounts on one line."""
    accounts = ", ".join(f"{a.account_id} ({a.business_name})" for a in sandbox.accounts.values())
    kit.serve(sandbox, host, port, "Stripe", f"accounts: {accounts}; platform key: docs/sandbox.md or "
              "sandbox_credentials()", out)  # fmt: skip
