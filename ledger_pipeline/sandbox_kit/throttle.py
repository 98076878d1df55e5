"""A rate limit on the wall clock: at most `limit` requests per account in any `seconds` (refusals do not count)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    def __init__(self, limit: int | None, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit  # None: unlimited
        self.seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._window: dict[str, deque[float]] = {}

    def admit(self, account: str) -> bool:
        """True if the request may go on (and is counted), False if it is over the limit."""
        if self.limit is None:
            return True
        with self._lock:
            now = self._clock()
            window = self._window.setdefault(account, deque())
            while window and window[0] <= now - self.seconds:
                window.popleft()
            if len(window) >= self.limit:
                return False
            window.append(now)
            return True

    def retry_after(self, account: str) -> float:
        """Seconds until `account` may be admitted again (0 when it may now): a refusal's Retry-After."""
        if self.limit is None:
            return 0.0
        with self._lock:
            window = self._window.get(account)
            if not window or len(window) < self.limit:
                return 0.0
            return max(0.0, window[-self.limit] + self.seconds - self._clock())
