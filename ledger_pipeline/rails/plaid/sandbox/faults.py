"""Faults switched on per item, and what each sends (see `Fault` and docs/sandbox.md).

They live in the process (like the Stripe sandbox's): a test arms them on the sandbox it talks to.
"""

from __future__ import annotations

import threading
import time

import httpx

from .responses import PlaidError
from .spec import Fault

MUTATION_MESSAGE = ("Underlying transaction data changed since last page was fetched. Please restart pagination "
                    "from last update.")


class FaultBoard:
    """Armed faults per item: each lets `after` requests it watches pass, then fires `count` times."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, list[list]] = {}  # item -> [[fault, passed, hits]]

    def inject(self, item_id: str, fault: Fault) -> None:
        with self._lock:
            self._armed.setdefault(item_id, []).append([fault, 0, 0])

    def clear(self, item_id: str | None = None) -> None:
        with self._lock:
            self._armed.clear() if item_id is None else self._armed.pop(item_id, None)

    def armed(self, item_id: str) -> list[Fault]:
        with self._lock:
            return [slot[0] for slot in self._armed.get(item_id, [])]

    def take(self, item_id: str, mid_pagination: bool) -> tuple[Fault, int] | None:
        """The fault that fires for this request, with its hit number (1-based), or None. A `mutation` fault
        only watches requests carrying a mid-pagination cursor."""
        with self._lock:
            slots = self._armed.get(item_id)
            if not slots:
                return None
            fired = None
            for slot in slots:
                fault = slot[0]
                if fault.kind == "mutation" and not mid_pagination:
                    continue
                if slot[1] < fault.after:
                    slot[1] += 1
                elif fired is None:
                    slot[2] += 1
                    fired = (fault, slot[2])
            self._armed[item_id] = [s for s in slots if s[0].count == -1 or s[2] < s[0].count]
            return fired


def mutation_error() -> PlaidError:
    return PlaidError(400, "TRANSACTIONS_ERROR", "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION", MUTATION_MESSAGE)


def before_answer(fault: Fault, hit: int, request: httpx.Request) -> None:
    """Act on a fault before the real answer: raise its error, sleep, or drop the connection."""
    if fault.kind == "server_error":
        raise PlaidError(fault.status, "API_ERROR", "INTERNAL_SERVER_ERROR", "an unexpected error occurred")
    if fault.kind == "mutation":
        raise mutation_error()
    if fault.kind == "reset":
        if hit % 2:
            raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
    if fault.kind == "slow":
        timeout = (request.extensions.get("timeout") or {}).get("read")
        if timeout is not None and fault.delay > timeout:
            time.sleep(timeout)
            raise httpx.ReadTimeout(f"timed out after {timeout:g}s", request=request)
        time.sleep(fault.delay)


def malformed(response: httpx.Response) -> httpx.Response:
    """The real answer cut in half, still labelled JSON."""
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return httpx.Response(response.status_code, headers=headers, content=response.content[: len(response.content) // 2])
