"""The Ramp sandbox as a real HTTP server on loopback, for any Ramp client (the kit's server,
ledger_pipeline/sandbox_kit/server.py)."""

from __future__ import annotations

from typing import TextIO

from ledger_pipeline.sandbox_kit import server as kit
from ledger_pipeline.sandbox_kit.server import RunningServer

from .sandbox import RampSandbox

__all__ = ["RunningServer", "serve", "start_in_thread"]


def start_in_thread(sandbox: RampSandbox, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    return kit.start_in_thread(sandbox, host, port, "Ramp")


def serve(sandbox: RampSandbox, host: str, port: int, *, out: TextIO | None = None) -> None:
    """Serve until interrupted, after announcing the base URL and the businesses on one line."""
    businesses = ", ".join(f"{b.business_id} ({b.name}, realm {b.realm_id})" for b in sandbox.businesses.values())
    kit.serve(sandbox, host, port, "Ramp", f"token URL /developer/v1/token; businesses: {businesses}; app keys, "
              "client credentials and refresh tokens: docs/sandbox.md or `sandbox credentials`", out)  # fmt: skip
