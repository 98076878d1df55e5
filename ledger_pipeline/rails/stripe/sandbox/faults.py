"""What each fault switched on for a connected account sends (see `Fault` and docs/sandbox.md); the switches
themselves and the faults of the connection are the kit's (ledger_pipeline/sandbox_kit/faults.py)."""

from __future__ import annotations

import httpx

from ledger_pipeline.sandbox_kit.faults import on_the_wire

from .responses import StripeError
from .spec import Fault

LOCK_TIMEOUT_MESSAGE = ("This object cannot be accessed right now because another API request or Stripe process "
                        "is currently accessing it. Retry the request, or make requests to this object serially.")


def before_answer(fault: Fault, hit: int, request: httpx.Request) -> None:
    """Act on a fault before the real answer: raise its error, sleep, or drop the connection."""
    if fault.kind == "server_error":
        raise StripeError(fault.status, "An unknown error occurred", type="api_error", retry=True)
    if fault.kind == "lock_timeout":
        raise StripeError(429, LOCK_TIMEOUT_MESSAGE, code="lock_timeout", retry=True)
    on_the_wire(fault, hit, request)
