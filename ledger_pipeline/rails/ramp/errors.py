"""Ramp client errors: one message shape naming the business, the endpoint, the cause, Ramp's error code and the
x-trace-id of the answer.

Every error the client raises is a `RampError`; the subclass says what the caller can do about it (reconnect the
business, grant a scope, wait). Messages are built through `ErrorContext`, which scrubs the app secret and the
tokens out of any text that came back from the wire (lib/redact.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from ledger_pipeline.lib.redact import Secrets, clip


class RampError(Exception):
    """A Ramp call failed; carries the business, endpoint, HTTP status, Ramp's error code and the trace id."""

    def __init__(
        self, business_id: str | None, endpoint: str | None, cause: str, *, status: int | None = None,
        code: str | None = None, trace_id: str | None = None,
    ) -> None:  # fmt: skip
        self.business_id, self.endpoint, self.cause = business_id, endpoint, cause
        self.status, self.code, self.trace_id = status, code, trace_id
        where = "Ramp" + (f" business {business_id}" if business_id else "") + (f", {endpoint}" if endpoint else "")
        tags = [text for text in (code, f"HTTP {status}" if status is not None else None,
                                  f"x-trace-id {trace_id}" if trace_id else None) if text]  # fmt: skip
        super().__init__(f"{where}: {cause}" + (f" ({', '.join(tags)})" if tags else ""))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the keyword fields when an executor pickles the error between processes.
        return (_rebuild, (type(self), self.business_id, self.endpoint, self.cause, self.status, self.code,
                           self.trace_id))  # fmt: skip


def _rebuild(cls: type[RampError], business_id, endpoint, cause, status, code, trace_id) -> RampError:
    return cls(business_id, endpoint, cause, status=status, code=code, trace_id=trace_id)


class RampAuthError(RampError):
    """The app's keys or the business's grant were refused (invalid_client, invalid_grant, a 401 after a refresh):
    fix the keys or reconnect the business."""


class RampScopeError(RampError):
    """The business's grant lacks the scope an endpoint needs (403): reconnect it with the scopes listed."""


class RampNotFound(RampError):
    """Ramp has no such object (404)."""


class RampInvalidRequest(RampError):
    """Ramp rejected the request (400, 422), e.g. a page size outside 2-100."""


class RampRateLimited(RampError):
    """Ramp kept answering 429 after every retry: try again later."""


class RampServerError(RampError):
    """Ramp kept failing with 5xx after every retry."""


class RampConnectionError(RampError):
    """Ramp could not be reached (connect, read or timeout errors) after every retry."""


class RampMalformedResponse(RampError):
    """Ramp answered with something that is not the documented JSON shape (after retries)."""


BY_STATUS: dict[int, type[RampError]] = {
    400: RampInvalidRequest, 401: RampAuthError, 403: RampScopeError, 404: RampNotFound, 422: RampInvalidRequest,
}  # fmt: skip


@dataclass(frozen=True)
class WireError:
    """The useful part of Ramp's error body: `error_v2` {error_code, message}, the legacy `error`, or OAuth's
    {error, error_description}."""

    code: str | None = None
    message: str | None = None
    trace_id: str | None = None


def parse_error(response: httpx.Response) -> WireError:
    """Read Ramp's error body; anything else (an HTML 502 page, say) gives the trace id alone."""
    trace_id = clip(response.headers.get("x-trace-id"))
    try:
        body = json.loads(response.content[:65536])
    except ValueError:
        return WireError(trace_id=trace_id)
    if not isinstance(body, dict):
        return WireError(trace_id=trace_id)
    v2 = body.get("error_v2")
    if isinstance(v2, dict):
        return WireError(clip(v2.get("error_code")), clip(v2.get("message")), trace_id)
    if isinstance(body.get("error"), str):  # OAuth's shape, or the legacy message alone
        description = body.get("error_description")
        code = body["error"] if description is not None or " " not in body["error"] else None
        return WireError(clip(code), clip(description if description is not None else body["error"]), trace_id)
    return WireError(trace_id=trace_id)


class ErrorContext(Secrets):
    """Builds errors for one business and scrubs known secrets out of any text put into them."""

    def __init__(self, business_id: str) -> None:
        super().__init__()
        self.business_id = business_id

    def error(
        self, cls: type[RampError], endpoint: str | None, cause: str, *, status: int | None = None,
        code: str | None = None, trace_id: str | None = None,
    ) -> RampError:  # fmt: skip
        r = self.redact
        return cls(self.business_id, endpoint, r(cause) or "", status=status, code=r(code), trace_id=r(trace_id))
