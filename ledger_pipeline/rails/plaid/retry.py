"""Plaid's side of the shared retry loop (lib/retry.py): the log line (with Plaid's request_id) and the final error.
Whether an answer is worth repeating (429, 5xx, transport, malformed) is decided in the client."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from ledger_pipeline.lib import retry
from ledger_pipeline.lib.retry import Retryable
from ledger_pipeline.rails.plaid.errors import (
    ErrorContext, PlaidConnectionError, PlaidError, PlaidMalformedResponse, PlaidRateLimited, PlaidServerError,
)

__all__ = ["RetryPolicy", "Retryable", "final_error"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

_FINAL: dict[str, tuple[type[PlaidError], str]] = {
    "throttled": (PlaidRateLimited, "rate limited"),
    "server": (PlaidServerError, "server error"),
    "transport": (PlaidConnectionError, "connection failed"),
    "malformed": (PlaidMalformedResponse, "malformed response"),
}


def final_error(failure: Retryable, ctx: ErrorContext, item_id: str | None, endpoint: str, why: str) -> PlaidError:
    """The error to raise when this failure is not (or no longer) retried."""
    cls, label = _FINAL.get(failure.kind, (PlaidError, failure.kind))
    return ctx.error(
        cls, item_id, endpoint, f"{label} {why}: {failure.cause}", status=failure.status, code=failure.code,
        error_type=failure.detail, request_id=failure.request_id,
    )  # fmt: skip


class RetryPolicy(retry.RetryPolicy):
    def run(self, attempt_once: Callable[[], T], ctx: ErrorContext, item_id: str | None, endpoint: str) -> T:
        """Call `attempt_once` until it returns, raises a final error, or retries run out."""

        def give_up(failure: Retryable, why: str) -> PlaidError:
            return final_error(failure, ctx, item_id, endpoint, why)

        def announce(failure: Retryable, attempt: int, delay: float) -> None:
            logger.info(
                "Plaid item %s, %s: %s (HTTP %s, code %s, request_id %s); retry %d/%d in %.2fs",
                item_id or "-", endpoint, failure.kind, failure.status if failure.status is not None else "-",
                ctx.redact(failure.code) or "-", ctx.redact(failure.request_id) or "-", attempt + 1,
                self.max_retries, delay,
            )  # fmt: skip

        return self.retry(attempt_once, give_up, announce)
