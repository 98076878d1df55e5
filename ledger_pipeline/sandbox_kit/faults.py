"""Faults a test switches on for one account of a sandbox (a Stripe account, a Plaid item), in this process.

A `Fault` lets `after` of the requests it watches through, then hits `count` of them (-1: until cleared). Each
rail's sandbox subclasses it with the kinds it knows and raises its own errors for them; the kinds that act on the
connection itself (`reset`, `slow`) and a cut body (`malformed`) are the same everywhere and done here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import httpx


@dataclass(frozen=True)
class Fault:
    """A misbehaviour of one account: `status` is a server error's 5xx, `delay` a slow answer's seconds."""

    KINDS: ClassVar[frozenset[str]] = frozenset({"reset", "slow", "malformed"})

    kind: str
    after: int = 0
    count: int = 1
    status: int = 500
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(sorted(self.KINDS))}")
        if self.after < 0 or (self.count < 1 and self.count != -1):
            raise ValueError("a fault's after must be >= 0 and its count >= 1 (or -1: until cleared)")
        if not 500 <= self.status <= 599:
            raise ValueError(f"a server_error status is 5xx, got {self.status}")
        if not 0 <= self.delay <= 60:
            raise ValueError(f"a fault's delay is 0 to 60 seconds, got {self.delay}")


class FaultBoard:
    """Armed faults per account (in this process), each with how many requests it let pass and hit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, list[list]] = {}  # account -> [[fault, passed, hits]]

    def inject(self, account: str, fault: Fault) -> None:
        with self._lock:
            self._armed.setdefault(account, []).append([fault, 0, 0])

    def clear(self, account: str | None = None) -> None:
        with self._lock:
            self._armed.clear() if account is None else self._armed.pop(account, None)

    def armed(self, account: str) -> list[Fault]:
        with self._lock:
            return [slot[0] for slot in self._armed.get(account, [])]

    def take(self, account: str, watches: Callable[[Fault], bool] = lambda fault: True) -> tuple[Fault, int] | None:
        """The fault that fires for this request, with its hit number (1-based), or None. A fault `watches` says
        does not watch this request neither counts it nor fires."""
        with self._lock:
            slots = self._armed.get(account)
            if not slots:
                return None
            fired = None
            for slot in slots:
                fault = slot[0]
                if not watches(fault):
                    continue
                if slot[1] < fault.after:
                    slot[1] += 1
                elif fired is None:
                    slot[2] += 1
                    fired = (fault, slot[2])
            self._armed[account] = [s for s in slots if s[0].count == -1 or s[2] < s[0].count]
            return fired


def on_the_wire(fault: Fault, hit: int, request: httpx.Request) -> None:
    """Act out a fault of the connection before the answer: drop it (`reset`: odd hits as a reset by the peer, even
    ones as a server gone silent) or answer late (`slow`: past the client's read timeout, as that timeout)."""
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
