"""Ramp's side of the shared retry loop (lib/retry.py): the log line (with Ramp's trace id) and the final error.
Whether an answer is worth repeating (429, 5xx, transport, malformed) is decided in the client."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from ledger_pipeline.lib import retry
from ledger_pipeline.lib.retry import Retryable
from ledger_pipeline.rails.ramp.errors import (
    ErrorContext, RampConnectionError, RampError, RampMalformedResponse, RampRateLimited, RampServerError,
)

__all__ = ["RetryPolicy", "Retryable"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

_FINAL: dict[str, tuple[type[RampError], str]] = {
    "throttled": (RampRateLimited, "rate limited"),
    "server": (RampServerError, "server error"),
    "transport": (RampConnectionError, "connection failed"),
    "malformed": (RampMalformedResponse, "malformed response"),
}


class RetryPolicy(retry.RetryPolicy):
    def run(self, attempt_once: Callable[[], T], ctx: ErrorContext, endpoint: str) -> T:
        """Call `attempt_once` until it returns, raises a final error, or retries run out."""

        def give_up(failure: Retryable, why: str) -> RampError:
            cls, label = _FINAL.get(failure.kind, (RampError, failure.kind))
            return ctx.error(cls, endpoint, f"{label} {why}: {failure.cause}", status=failure.status,
                             code=failure.code, trace_id=failure.request_id)  # fmt: skip

        def announce(failure: Retryable, attempt: int, delay: float) -> None:
            logger.info(
                "Ramp business %s, %s: %s (HTTP %s, code %s, x-trace-id %s); retry %d/%d in %.2fs",
                ctx.business_id, endpoint, failure.kind, failure.status if failure.status is not None else "-",
                ctx.redact(failure.code) or "-", ctx.redact(failure.request_id) or "-", attempt + 1,
                self.max_retries, delay,
            )  # fmt: skip

        return self.retry(attempt_once, give_up, announce)
