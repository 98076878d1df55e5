"""Bodies and headers the way Stripe sends them: JSON, `{"error": {...}}`, Request-Id, Stripe-Should-Retry."""

from __future__ import annotations

import json
from typing import Any

import httpx

DOC_URL = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """An answer other than 200, raised anywhere while routing and turned into Stripe's error body."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, retry: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param, self.retry = (
            status, message, type, code, param, retry)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = DOC_URL + self.code.replace("_", "-")
        error["message"] = self.message
        if self.param:
            error["param"] = self.param
        error["type"] = self.type
        return {"error": error}


def missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def invalid(param: str, message: str, code: str | None = None) -> StripeError:
    return StripeError(400, message, code=code, param=param)


def json_response(status: int, payload: Any, headers: dict[str, str]) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False).encode()  # compact: the C encoder (indent would not use it)
    return httpx.Response(status, headers={"Content-Type": "application/json", **headers}, content=body)


def error_response(error: StripeError, headers: dict[str, str]) -> httpx.Response:
    retry = {"Stripe-Should-Retry": "true" if error.retry else "false"}
    return json_response(error.status, error.body(), {**headers, **retry})
