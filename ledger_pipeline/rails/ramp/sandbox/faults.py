"""What each fault switched on for a business sends (see `Fault` and docs/sandbox.md); the switches themselves and
the faults of the connection are the kit's (ledger_pipeline/sandbox_kit/faults.py). They live in the process: a
test arms them on the sandbox it talks to. Revocation is not a fault but a switch of the shared state
(`RampSandbox.revoke`), so that every process sees it."""

from __future__ import annotations

import httpx

from ledger_pipeline.sandbox_kit.faults import malformed, on_the_wire

from .responses import SERVER_ERROR, RampError
from .spec import Fault

__all__ = ["before_answer", "malformed"]


def before_answer(fault: Fault, hit: int, request: httpx.Request) -> None:
    """Act on a fault before the real answer: raise its error, sleep, or drop the connection (`malformed` cuts
    the real answer afterwards)."""
    if fault.kind == "server_error":
        raise RampError(fault.status, SERVER_ERROR, "An unexpected error occurred; retry the request")
    on_the_wire(fault, hit, request)
