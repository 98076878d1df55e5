"""The Plaid sandbox as a real HTTP server on loopback, for the official SDK and any other tool (the kit's server,
ledger_pipeline/sandbox_kit/server.py)."""

from __future__ import annotations

from typing import TextIO

from ledger_pipeline.sandbox_kit import server as kit
from ledger_pipeline.sandbox_kit.server import RunningServer

from .sandbox import PlaidSandbox

__all__ = ["RunningServer", "serve", "start_in_thread"]


def start_in_thread(sandbox: PlaidSandbox, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    return kit.start_in_thread(sandbox, host, port, "Plaid")


def serve(sandbox: PlaidSandbox, host: str, port: int, *, out: TextIO | None = None) -> None:
    """Serve until interrupted, after announcing the base URL and the items on one line."""
    items = ", ".join(f"{i.item_id} ({i.institution_name}, realm {i.realm_id})" for i in sandbox.items.values())
    kit.serve(sandbox, host, port, "Plaid", f"items: {items}; client id, secret and access tokens: docs/sandbox.md "
              "or access_token_for()", out)  # fmt: skip
