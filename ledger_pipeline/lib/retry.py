"""The retry loop every rail client shares: exponential backoff with full jitter, Retry-After wins, and a
Retry-After too long to wait for fails at once.

One attempt either returns, raises the rail's final error, or raises `Retryable` describing a transient
failure (429, 5xx, transport error, malformed body). Only idempotent calls go through here. The loop sleeps
through an injected `sleep` so tests record delays instead of waiting; the rail says how a retry is logged
(never a request header) and what error ends the loop.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

# A Retry-After beyond this is treated as "not soon": the run fails rather than hanging for hours.
MAX_RETRY_AFTER = 3600.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})  # HTTP answers worth repeating: throttled, server trouble
T = TypeVar("T")


class Retryable(Exception):
    """One attempt failed in a way that may succeed if repeated."""

    def __init__(
        self, kind: str, cause: str, *, status: int | None = None, code: str | None = None,
        detail: str | None = None, request_id: str | None = None, retry_after: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__(cause)
        self.kind = kind  # "throttled" | "server" | "transport" | "malformed"
        self.cause = cause
        self.status = status
        self.code = code  # the rail's error code
        self.detail = detail  # the rail's own explanation, where it sends one
        self.request_id = request_id  # the rail's id of the request, where it sends one
        self.retry_after = retry_after


@dataclass
class RetryPolicy:
    """How often and how long to wait; `rng` is injectable so jitter can be made reproducible."""

    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 60.0
    sleep: Callable[[float], None] = field(default=lambda s: None, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_base < 0 or self.backoff_cap < 0:
            raise ValueError("backoff_base and backoff_cap must be >= 0")

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt + 1` (attempt counts from 0)."""
        if retry_after is not None:
            return retry_after
        return self.rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * (2.0 ** min(attempt, 62))))

    def retry(
        self, attempt_once: Callable[[], T], give_up: Callable[[Retryable, str], Exception],
        announce: Callable[[Retryable, int, float], None],
    ) -> T:  # fmt: skip
        """Call `attempt_once` until it returns, raises a final error, or retries run out; then raise
        `give_up(failure, why)`. `announce(failure, attempt, delay)` logs each retry."""
        attempt = 0
        while True:
            try:
                return attempt_once()
            except Retryable as caught:
                failure = caught
            # Raised outside the except block on purpose: the final error then has no __context__,
            # so no httpx exception (which holds the request and its Authorization header) hangs off it.
            failure.__context__ = None
            if failure.retry_after is not None and failure.retry_after > MAX_RETRY_AFTER:
                raise give_up(failure, f"Retry-After {failure.retry_after:.0f}s is too long")
            if attempt >= self.max_retries:
                raise give_up(failure, f"after {attempt} {'retry' if attempt == 1 else 'retries'}")
            delay = self.delay(attempt, failure.retry_after)
            announce(failure, attempt, delay)
            self.sleep(delay)
            attempt += 1


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds or seconds == float("inf"):  # NaN, inf
        return None
    return max(0.0, seconds)
