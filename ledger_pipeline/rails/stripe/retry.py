"""Stripe's side of the shared retry loop (lib/retry.py): the log line (with Stripe's Request-Id) and the final
error. Whether an answer is worth repeating (Stripe-Should-Retry, 429, 5xx) is decided in the client."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from ledger_pipeline.lib import retry
from ledger_pipeline.lib.retry import Retryable, parse_retry_after
from ledger_pipeline.rails.stripe.errors import (
    ErrorContext,
    StripeConnectionError,
    StripeError,
    StripeMalformedResponse,
    StripeRateLimited,
    StripeServerError,
)

__all__ = ["RetryPolicy", "Retryable", "final_error", "parse_retry_after"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

_FINAL: dict[str, tuple[type[StripeError], str]] = {
    "throttled": (StripeRateLimited, "rate limited"),
    "server": (StripeServerError, "server error"),
    "transport": (StripeConnectionError, "connection failed"),
    "malformed": (StripeMalformedResponse, "malformed response"),
}


def final_error(failure: Retryable, ctx: ErrorContext, resource: str | None, why: str) -> StripeError:
    """The error to raise when this failure is not (or no longer) retried."""
    cls, label = _FINAL.get(failure.kind, (StripeError, failure.kind))
    return ctx.error(
        cls, resource, f"{label} {why}: {failure.cause}", status=failure.status, code=failure.code,
        request_id=failure.request_id,
    )  # fmt: skip


class RetryPolicy(retry.RetryPolicy):
    def run(self, attempt_once: Callable[[], T], ctx: ErrorContext, resource: str | None, what: str) -> T:
        """Call `attempt_once` until it returns, raises a final error, or retries run out."""

        def give_up(failure: Retryable, why: str) -> StripeError:
            return final_error(failure, ctx, resource, why)

        def announce(failure: Retryable, attempt: int, delay: float) -> None:
            logger.info(
                "Stripe account %s, resource %s: %s %s (HTTP %s, code %s, Request-Id %s); retry %d/%d in %.2fs",
                ctx.account_id, resource or "-", what, failure.kind,
                failure.status if failure.status is not None else "-",
                ctx.redact(failure.code) or "-", ctx.redact(failure.request_id) or "-",
                attempt + 1, self.max_retries, delay,
            )  # fmt: skip

        return self.retry(attempt_once, give_up, announce)
