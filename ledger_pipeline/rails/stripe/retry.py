"""Retry loop for Stripe GETs: exponential backoff with full jitter; Retry-After and Stripe-Should-Retry win.

One attempt either returns, raises a final `StripeError`, or raises `Retryable` describing a transient
failure (429, 5xx, transport error, malformed body). Only idempotent GETs go through here, so
repeating one is always safe. Sleeps through an injected `sleep` so tests record delays instead of
waiting; logs status, code, Request-Id and delay, never a request header.
"""

from __future__ import annotations

import email.utils
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

from ledger_pipeline.rails.stripe.errors import (
    ErrorContext,
    StripeConnectionError,
    StripeError,
    StripeMalformedResponse,
    StripeRateLimited,
    StripeServerError,
)

logger = logging.getLogger(__name__)

# A Retry-After beyond this is treated as "not soon": the run fails rather than hanging for hours.
MAX_RETRY_AFTER = 3600.0
T = TypeVar("T")

_FINAL: dict[str, tuple[type[StripeError], str]] = {
    "throttled": (StripeRateLimited, "rate limited"),
    "server": (StripeServerError, "server error"),
    "transport": (StripeConnectionError, "connection failed"),
    "malformed": (StripeMalformedResponse, "malformed response"),
}


class Retryable(Exception):
    """One attempt failed in a way that may succeed if repeated."""

    def __init__(
        self,
        kind: str,
        cause: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(cause)
        self.kind = kind  # "throttled" | "server" | "transport" | "malformed"
        self.cause = cause
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after

    def final(self, ctx: ErrorContext, resource: str | None, why: str) -> StripeError:
        """The error to raise when this failure is not (or no longer) retried."""
        cls, label = _FINAL.get(self.kind, (StripeError, self.kind))
        return ctx.error(
            cls, resource, f"{label} {why}: {self.cause}", status=self.status, code=self.code,
            request_id=self.request_id,
        )  # fmt: skip


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

    def run(self, attempt_once: Callable[[], T], ctx: ErrorContext, resource: str | None, what: str) -> T:
        """Call `attempt_once` until it returns, raises a final error, or retries run out."""
        attempt = 0
        while True:
            try:
                return attempt_once()
            except Retryable as caught:
                failure = caught
            # Raised outside the except block: the final error then has no __context__, so no httpx
            # exception (which holds the request and its Authorization header) hangs off it.
            failure.__context__ = None
            if failure.retry_after is not None and failure.retry_after > MAX_RETRY_AFTER:
                raise failure.final(ctx, resource, f"(Retry-After {failure.retry_after:.0f}s is too long)")
            if attempt >= self.max_retries:
                raise failure.final(ctx, resource, f"after {attempt} {'retry' if attempt == 1 else 'retries'}")
            delay = self.delay(attempt, failure.retry_after)
            logger.info(
                "Stripe account %s, resource %s: %s %s (HTTP %s, code %s, Request-Id %s); retry %d/%d in %.2fs",
                ctx.account_id, resource or "-", what, failure.kind,
                failure.status if failure.status is not None else "-",
                ctx.redact(failure.code) or "-", ctx.redact(failure.request_id) or "-",
                attempt + 1, self.max_retries, delay,
            )  # fmt: skip
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
