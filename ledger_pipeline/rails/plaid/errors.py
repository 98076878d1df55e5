"""Plaid client errors: one message shape naming the item, the endpoint, the cause, Plaid's error type and code and
its request_id.

Every error the client raises is a `PlaidError`; the subclass says what the caller can do about it (fix the
platform keys, have a person log in to the bank again, wait, start the sync loop again). Messages are built
through `ErrorContext`, which scrubs the secret and the access tokens out of any text that came back from the wire
before it reaches a message or a log line (lib/redact.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from ledger_pipeline.lib.redact import Secrets, clip


class PlaidError(Exception):
    """A Plaid call failed; carries the item, endpoint, HTTP status, Plaid's error type and code and request_id."""

    def __init__(
        self, item_id: str | None, endpoint: str | None, cause: str, *, status: int | None = None,
        error_type: str | None = None, code: str | None = None, request_id: str | None = None,
    ) -> None:  # fmt: skip
        self.item_id, self.endpoint, self.cause = item_id, endpoint, cause
        self.status, self.error_type, self.code, self.request_id = status, error_type, code, request_id
        where = "Plaid" + (f" item {item_id}" if item_id else "") + (f", {endpoint}" if endpoint else "")
        tags = [
            text
            for text in (
                f"{error_type} {code}" if code else None,
                f"HTTP {status}" if status is not None else None,
                f"request_id {request_id}" if request_id else None,
            )
            if text
        ]
        super().__init__(f"{where}: {cause}" + (f" ({', '.join(tags)})" if tags else ""))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the keyword fields when an executor pickles the error between processes.
        fields = (self.item_id, self.endpoint, self.cause, self.status, self.error_type, self.code, self.request_id)
        return (_rebuild, (type(self), *fields))


def _rebuild(cls: type[PlaidError], item_id, endpoint, cause, status, error_type, code, request_id) -> PlaidError:
    return cls(item_id, endpoint, cause, status=status, error_type=error_type, code=code, request_id=request_id)


class PlaidAuthError(PlaidError):
    """The platform's client_id or secret was refused (INVALID_API_KEYS): fix them; no tenant-level action helps."""


class PlaidInvalidAccessToken(PlaidError):
    """The item's access token was refused (INVALID_ACCESS_TOKEN): wrong, revoked, or of another environment."""


class PlaidItemLoginRequired(PlaidError):
    """The bank needs the user to log in again (ITEM_LOGIN_REQUIRED): a person must go through Link's update mode."""


class PlaidMutationDuringPagination(PlaidError):
    """The item's transactions changed while the sync paged (TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION): the
    loop starts again from its first cursor."""


class PlaidSyncUnsettled(PlaidError):
    """The item's transactions kept changing during every attempt of the sync loop: try again later."""


class PlaidInvalidRequest(PlaidError):
    """Plaid rejected the request (INVALID_REQUEST, INVALID_INPUT other than tokens), e.g. a cursor of another item."""


class PlaidRateLimited(PlaidError):
    """Plaid kept answering RATE_LIMIT_EXCEEDED after every retry: try again later."""


class PlaidServerError(PlaidError):
    """Plaid kept failing with 5xx (API_ERROR, INSTITUTION_ERROR) after every retry."""


class PlaidConnectionError(PlaidError):
    """Plaid could not be reached (connect, read or timeout errors) after every retry."""


class PlaidMalformedResponse(PlaidError):
    """Plaid answered with something that is not the documented JSON shape (after retries)."""


# Plaid's error_code -> the class a caller acts on (other codes go by HTTP status).
BY_CODE: dict[str, type[PlaidError]] = {
    "INVALID_API_KEYS": PlaidAuthError,
    "INVALID_ACCESS_TOKEN": PlaidInvalidAccessToken,
    "ITEM_LOGIN_REQUIRED": PlaidItemLoginRequired,
    "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION": PlaidMutationDuringPagination,
}


@dataclass(frozen=True)
class WireError:
    """The useful part of Plaid's error body: {error_type, error_code, error_message, display_message, request_id}."""

    error_type: str | None = None
    code: str | None = None
    message: str | None = None
    request_id: str | None = None


def parse_error(response: httpx.Response) -> WireError:
    """Read Plaid's error body; anything else (an HTML 502 page, say) gives nothing but the status."""
    try:
        body = json.loads(response.content[:65536])
    except ValueError:
        return WireError()
    if not isinstance(body, dict):
        return WireError()
    return WireError(
        error_type=clip(body.get("error_type")), code=clip(body.get("error_code")),
        message=clip(body.get("error_message")), request_id=clip(body.get("request_id")),
    )  # fmt: skip


class ErrorContext(Secrets):
    """Builds errors for one client and scrubs known secrets out of any text put into them."""

    def error(
        self, cls: type[PlaidError], item_id: str | None, endpoint: str | None, cause: str, *,
        status: int | None = None, error_type: str | None = None, code: str | None = None,
        request_id: str | None = None,
    ) -> PlaidError:  # fmt: skip
        r = self.redact
        return cls(
            item_id, endpoint, r(cause) or "", status=status, error_type=r(error_type), code=r(code),
            request_id=r(request_id),
        )  # fmt: skip
