"""Retry loop shared by the API and token calls: exponential backoff, full jitter, Retry-After wins.

One attempt either returns, raises a final `QboError`, or raises `Retryable` describing a transient
failure (429, 5xx, transport error, malformed body). The loop sleeps through an injected `sleep` so
tests record delays instead of waiting, and logs status, attempt and delay, never a request header.
"""

from __future__ import annotations

import email.utils
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

from ledger_pipeline.rails.qbo.errors import (
    ErrorContext,
    QboError,
    QboMalformedResponse,
    QboThrottledError,
)

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A Retry-After beyond this is treated as "not soon": the run fails rather than hanging for hours.
MAX_RETRY_AFTER = 3600.0

T = TypeVar("T")


class Retryable(Exception):
    """One attempt failed in a way that may succeed if repeated."""

    def __init__(
        self,
        kind: str,
        cause: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(cause)
        self.kind = kind  # "throttled" | "server" | "transport" | "malformed"
        self.cause = cause
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


_FINAL_CLASS: dict[str, type[QboError]] = {
    "throttled": QboThrottledError,
    "malformed": QboMalformedResponse,
}


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
        ceiling = min(self.backoff_cap, self.backoff_base * (2.0**min(attempt, 62)))
        return self.rng.uniform(0.0, ceiling)

    def run(self, attempt_once: Callable[[], T], ctx: ErrorContext, entity: str | None, what: str) -> T:
        """Call `attempt_once` until it returns, raises a final error, or retries run out."""
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
                why = f"Retry-After {failure.retry_after:.0f}s is too long"
                raise _exhausted(ctx, entity, failure, attempt, why)
            if attempt >= self.max_retries:
                raise _exhausted(ctx, entity, failure, attempt, None)
            delay = self.delay(attempt, failure.retry_after)
            logger.info(
                "QBO realm %s, entity %s: %s %s (HTTP %s, code %s); retry %d/%d in %.2fs%s",
                ctx.realm_id,
                entity or "-",
                what,
                failure.kind,
                failure.status if failure.status is not None else "-",
                ctx.redact(failure.code) or "-",
                attempt + 1,
                self.max_retries,
                delay,
                " (Retry-After)" if failure.retry_after is not None else "",
            )
            self.sleep(delay)
            attempt += 1


def _exhausted(
    ctx: ErrorContext, entity: str | None, failure: Retryable, retries: int, why: str | None
) -> QboError:
    cls = _FINAL_CLASS.get(failure.kind, QboError)
    label = {
        "throttled": "throttled",
        "server": "server error",
        "transport": "connection failed",
        "malformed": "malformed response",
    }.get(failure.kind, failure.kind)
    tail = why or f"after {retries} {'retry' if retries == 1 else 'retries'}"
    return ctx.error(
        cls,
        entity,
        f"{label} {tail}: {failure.cause}",
        status=failure.status,
        code=failure.code,
        detail=failure.detail,
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
