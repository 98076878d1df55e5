"""QBO's per-realm throttle on the wall clock: requests per minute and requests in flight.

Refused requests do not count against the window (a client that backs off recovers). Every other
refusal is sent the way QBO's gateway sometimes does it: an XML body without Retry-After.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from .spec import RateLimit


@dataclass(frozen=True)
class Throttled:
    """Why a request was refused and how to say so."""

    reason: str
    retry_after: int | None
    xml: bool


class Limiter:
    """Admission control for one sandbox instance (limits are per process, like the real per-node counters)."""

    def __init__(self, limit: RateLimit | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._window: dict[str, deque[float]] = {}
        self._in_flight: dict[str, int] = {}
        self._refusals: dict[str, int] = {}

    def enter(self, realm_id: str) -> Throttled | None:
        """Admit a request (call `leave` when done) or say why not."""
        if self.limit is None:
            return None
        with self._lock:
            now = self._clock()
            window = self._window.setdefault(realm_id, deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            reason, retry_after = None, None
            if self.limit.concurrent is not None and self._in_flight.get(realm_id, 0) >= self.limit.concurrent:
                reason, retry_after = f"more than {self.limit.concurrent} concurrent requests", 1
            elif self.limit.per_minute is not None and len(window) >= self.limit.per_minute:
                reason = f"more than {self.limit.per_minute} requests per minute"
                retry_after = max(1, math.ceil(window[0] + 60.0 - now))
            if reason is not None:
                refusals = self._refusals[realm_id] = self._refusals.get(realm_id, 0) + 1
                xml = refusals % 2 == 0
                return Throttled(reason, None if xml else retry_after, xml)
            window.append(now)
            self._in_flight[realm_id] = self._in_flight.get(realm_id, 0) + 1
            return None

    def leave(self, realm_id: str) -> None:
        if self.limit is None:
            return
        with self._lock:
            self._in_flight[realm_id] = max(0, self._in_flight.get(realm_id, 0) - 1)
