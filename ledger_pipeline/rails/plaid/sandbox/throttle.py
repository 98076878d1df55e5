"""Plaid's rate limit on the wall clock: requests per item per minute (refusals do not count)."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

from .spec import RateLimit

WINDOW = 60.0


class Limiter:
    def __init__(self, limit: RateLimit | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._window: dict[str, deque[float]] = {}

    def admit(self, item_id: str) -> bool:
        """True if the request may go on (and is counted), False if it is over the limit."""
        if self.limit is None or self.limit.per_item_per_minute is None:
            return True
        with self._lock:
            now = self._clock()
            window = self._window.setdefault(item_id, deque())
            while window and window[0] <= now - WINDOW:
                window.popleft()
            if len(window) >= self.limit.per_item_per_minute:
                return False
            window.append(now)
            return True
