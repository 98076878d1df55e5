"""What each fault switched on for an item sends (see `Fault` and docs/sandbox.md); the switches themselves and the
faults of the connection are the kit's (ledger_pipeline/sandbox_kit/faults.py). They live in the process: a test
arms them on the sandbox it talks to."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from ledger_pipeline.sandbox_kit.faults import on_the_wire

from .responses import PlaidError
from .spec import Fault

MUTATION_MESSAGE = ("Underlying transaction data changed since last page was fetched. Please restart pagination "
                    "from last update.")


def mutation_error() -> PlaidError:
    return PlaidError(400, "TRANSACTIONS_ERROR", "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION", MUTATION_MESSAGE)


def before_answer(fault: Fault, hit: int, request: httpx.Request) -> None:
    """Act on a fault before the real answer: raise its error, sleep, or drop the connection."""
    if fault.kind == "server_error":
        raise PlaidError(fault.status, "API_ERROR", "INTERNAL_SERVER_ERROR", "an unexpected error occurred")
    if fault.kind == "mutation":
        raise mutation_error()
    on_the_wire(fault, hit, request)


def watches(mid_pagination: bool) -> Callable[[Fault], bool]:
    """Which faults watch a request (the kit's `FaultBoard.take`): a `mutation` only one carrying a mid-pagination
    cursor."""
    return lambda fault: fault.kind != "mutation" or mid_pagination
