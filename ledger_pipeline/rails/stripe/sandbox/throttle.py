"""Stripe's rate limit on the wall clock: requests per second per connected account (refusals do not count)."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

from .spec import RateLimit


class Limiter:
    def __init__(self, limit: RateLimit | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._window: dict[str, deque[float]] = {}

    def admit(self, account_id: str) -> bool:
        """True if the request may go on (and is counted), False if it is over the limit."""
        if self.limit is None or self.limit.per_second is None:
            return True
        with self._lock:
            now = self._clock()
            window = self._window.setdefault(account_id, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= self.limit.per_second:
                return False
            window.append(now)
            return True
