"""Stripe client errors: one message shape naming account, resource, cause, Stripe's code and Request-Id.

Every error the client raises is a `StripeError`; the subclass says what the caller can do about it
(fix the platform key, reconnect the account, fall back from events to a full re-list, wait).
Messages are built through `ErrorContext`, which scrubs the API key out of any text that came back
from the wire (a sandbox or proxy may echo it) before it reaches a message or a log line (lib/redact.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from ledger_pipeline.lib.redact import Secrets, clip


class StripeError(Exception):
    """A Stripe call failed; carries account, resource, HTTP status, Stripe's code, param and Request-Id."""

    def __init__(
        self,
        account_id: str,
        resource: str | None,
        cause: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.account_id = account_id
        self.resource = resource
        self.cause = cause
        self.status = status
        self.code = code
        self.param = param
        self.request_id = request_id
        where = f"Stripe account {account_id}" + (f", resource {resource}" if resource else "")
        tags = [
            text
            for text in (
                f"Stripe error code {code}" if code else None,
                f"param {param}" if param else None,
                f"HTTP {status}" if status is not None else None,
                f"Request-Id {request_id}" if request_id else None,
            )
            if text
        ]
        suffix = f" ({', '.join(tags)})" if tags else ""
        super().__init__(f"{where}: {cause}{suffix}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the keyword fields when an executor pickles the error between processes.
        fields = (self.account_id, self.resource, self.cause, self.status, self.code, self.param, self.request_id)
        return (_rebuild, (type(self), *fields))


def _rebuild(cls: type[StripeError], account_id, resource, cause, status, code, param, request_id) -> StripeError:
    return cls(account_id, resource, cause, status=status, code=code, param=param, request_id=request_id)


class StripeAuthError(StripeError):
    """The platform key was refused (401): fix or rotate the key; no tenant-level action helps."""


class StripePermissionError(StripeError):
    """The key may not read this account or resource (403), or the account is unknown / disconnected."""


class StripeNotFound(StripeError):
    """The object does not exist on this account (404 resource_missing)."""


class StripeInvalidRequest(StripeError):
    """Stripe rejected the request's parameters (400); `param` names the one it objected to."""


class StripeEventsExpired(StripeError):
    """Stripe refused the events position (older than its 30 days, or unknown): re-list objects instead."""


class StripeRateLimited(StripeError):
    """Stripe kept answering 429 after every retry (or asked for a wait too long): try again later."""


class StripeServerError(StripeError):
    """Stripe kept failing with 5xx after every retry, or asked not to retry one."""


class StripeConnectionError(StripeError):
    """Stripe could not be reached (connect, read or timeout errors) after every retry."""


class StripeMalformedResponse(StripeError):
    """Stripe answered with something that is not the documented JSON shape (after retries)."""


@dataclass(frozen=True)
class WireError:
    """The useful part of Stripe's `{"error": {type, code, message, param}}` body plus the Request-Id."""

    type: str | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None
    request_id: str | None = None


def parse_error(response: httpx.Response) -> WireError:
    """Read Stripe's error body; anything else (an HTML 502 page, say) gives only the Request-Id."""
    request_id = clip(response.headers.get("request-id"))
    try:
        body = json.loads(response.content[:65536])
    except ValueError:
        return WireError(request_id=request_id)
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return WireError(request_id=request_id)
    return WireError(
        type=clip(err.get("type")),
        code=clip(err.get("code")),
        message=clip(err.get("message")),
        param=clip(err.get("param")),
        request_id=request_id,
    )


class ErrorContext(Secrets):
    """Builds errors for one connected account and scrubs known secrets out of any text put into them."""

    def __init__(self, account_id: str) -> None:
        super().__init__()
        self.account_id = account_id

    def error(
        self,
        cls: type[StripeError],
        resource: str | None,
        cause: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> StripeError:
        r = self.redact
        return cls(
            self.account_id,
            resource,
            r(cause) or "",
            status=status,
            code=r(code),
            param=r(param),
            request_id=r(request_id),
        )
