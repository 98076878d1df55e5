"""Faults switched on per connected account, and what each sends (see `Fault` and docs/sandbox.md)."""

from __future__ import annotations

import threading
import time

import httpx

from .responses import StripeError
from .spec import Fault

LOCK_TIMEOUT_MESSAGE = ("This object cannot be accessed right now because another API request or Stripe process "
                        "is currently accessing it. Retry the request, or make requests to this object serially.")


class FaultBoard:
    """Armed faults per account (in this process): each lets `after` requests pass, then fires `count` times."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, list[list]] = {}  # account -> [[fault, passed, hits]]

    def inject(self, account_id: str, fault: Fault) -> None:
        with self._lock:
            self._armed.setdefault(account_id, []).append([fault, 0, 0])

    def clear(self, account_id: str | None = None) -> None:
        with self._lock:
            self._armed.clear() if account_id is None else self._armed.pop(account_id, None)

    def armed(self, account_id: str) -> list[Fault]:
        with self._lock:
            return [slot[0] for slot in self._armed.get(account_id, [])]

    def take(self, account_id: str) -> tuple[Fault, int] | None:
        """The fault that fires for this request, with its hit number (1-based), or None."""
        with self._lock:
            slots = self._armed.get(account_id)
            if not slots:
                return None
            fired = None
            for slot in slots:
                fault = slot[0]
                if slot[1] < fault.after:
                    slot[1] += 1
                elif fired is None:
                    slot[2] += 1
                    fired = (fault, slot[2])
            self._armed[account_id] = [s for s in slots if s[0].count == -1 or s[2] < s[0].count]
            return fired


def before_answer(fault: Fault, hit: int, request: httpx.Request) -> None:
    """Act on a fault before the real answer: raise its error, sleep, or drop the connection."""
    if fault.kind == "server_error":
        raise StripeError(fault.status, "An unknown error occurred", type="api_error", retry=True)
    if fault.kind == "lock_timeout":
        raise StripeError(429, LOCK_TIMEOUT_MESSAGE, code="lock_timeout", retry=True)
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
