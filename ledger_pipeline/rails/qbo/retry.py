"""QBO's side of the shared retry loop (lib/retry.py): which statuses are transient, the log line, the final
error. Shared by the API and token calls."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from ledger_pipeline.lib import retry
from ledger_pipeline.lib.retry import RETRY_STATUSES, Retryable, parse_retry_after
from ledger_pipeline.rails.qbo.errors import ErrorContext, QboError, QboMalformedResponse, QboThrottledError

__all__ = ["RETRY_STATUSES", "RetryPolicy", "Retryable", "parse_retry_after"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_FINAL_CLASS: dict[str, type[QboError]] = {"throttled": QboThrottledError, "malformed": QboMalformedResponse}
_LABEL = {"throttled": "throttled", "server": "server error", "transport": "connection failed",
          "malformed": "malformed response"}  # fmt: skip


class RetryPolicy(retry.RetryPolicy):
    def run(self, attempt_once: Callable[[], T], ctx: ErrorContext, entity: str | None, what: str) -> T:
        """Call `attempt_once` until it returns, raises a final error, or retries run out."""

        def give_up(failure: Retryable, why: str) -> QboError:
            return ctx.error(
                _FINAL_CLASS.get(failure.kind, QboError), entity,
                f"{_LABEL.get(failure.kind, failure.kind)} {why}: {failure.cause}",
                status=failure.status, code=failure.code, detail=failure.detail,
            )  # fmt: skip

        def announce(failure: Retryable, attempt: int, delay: float) -> None:
            logger.info(
                "QBO realm %s, entity %s: %s %s (HTTP %s, code %s); retry %d/%d in %.2fs%s",
                ctx.realm_id, entity or "-", what, failure.kind,
                failure.status if failure.status is not None else "-", ctx.redact(failure.code) or "-",
                attempt + 1, self.max_retries, delay, " (Retry-After)" if failure.retry_after is not None else "",
            )  # fmt: skip

        return self.retry(attempt_once, give_up, announce)
