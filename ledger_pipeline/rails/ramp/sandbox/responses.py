"""Bodies the way Ramp sends them: JSON, an `x-trace-id` header on every answer, errors of the data API as
`{"error_v2": {...}, "error": ...}` and errors of the token endpoint as OAuth's `{"error", "error_description"}`.

Ramp documents the shape, DEVELOPER_7001 for validation and the status codes; the other error codes are the
ones Ramp's clients are seen to handle (docs/sandbox.md lists them).
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

VALIDATION = "DEVELOPER_7001"
NOT_FOUND = "DEVELOPER_7002"
TOKEN_EXPIRED = "DEVELOPER_7028"
INSUFFICIENT_SCOPE = "DEVELOPER_7100"
RATE_LIMITED = "DEVELOPER_7429"
SERVER_ERROR = "DEVELOPER_7500"


class RampError(Exception):
    """An answer other than 200 of the data API, raised anywhere while routing."""

    def __init__(self, status: int, error_code: str, message: str, additional_info: dict[str, Any] | None = None,
                 legacy: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message
        self.additional_info = additional_info or {}
        self.legacy = message if legacy is None else legacy
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error_v2": {"additional_info": self.additional_info, "error_code": self.error_code,
                             "message": self.message, "notes": ""},
                "error": self.legacy}


def invalid_field(field: str, message: str) -> RampError:
    """A query parameter that fails validation: 422, the field named in `additional_info` (as Ramp does)."""
    return RampError(422, VALIDATION, message, {field: [message]}, {field: [message]})


def invalid_input(message: str) -> RampError:
    """A request whose parameters are each valid but do not go together (e.g. two orderings): 400."""
    return RampError(400, VALIDATION, message)


def unauthorized(message: str, code: str = NOT_FOUND) -> RampError:
    return RampError(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="ramp"'})


def not_found(kind: str, object_id: str) -> RampError:
    return RampError(404, NOT_FOUND, f"The requested {kind} ({object_id}) does not exist")


class OAuthError(Exception):
    """An answer other than 200 of the token endpoint (RFC 6749 section 5.2)."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status, self.code, self.description = status, code, description


def json_response(status: int, payload: Any, trace_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = orjson.dumps(payload)
    return httpx.Response(status, headers={"Content-Type": "application/json", "x-trace-id": trace_id,
                                           **(headers or {})}, content=body)


def error_response(error: RampError, trace_id: str) -> httpx.Response:
    return json_response(error.status, error.body(), trace_id, error.headers)


def oauth_response(error: OAuthError, trace_id: str) -> httpx.Response:
    headers = {"Cache-Control": "no-store"}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="ramp"'
    return json_response(error.status, {"error": error.code, "error_description": error.description}, trace_id,
                         headers)
