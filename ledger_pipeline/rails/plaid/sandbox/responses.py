"""Bodies the way Plaid sends them: JSON, every answer with a `request_id`, errors as Plaid's error object."""

from __future__ import annotations

import json
from typing import Any

import httpx

DOCS = "https://plaid.com/docs/errors/"
# error_type -> the docs page naming its codes
_PAGES = {"INVALID_REQUEST": "invalid-request", "INVALID_INPUT": "invalid-input", "ITEM_ERROR": "item",
          "API_ERROR": "api", "RATE_LIMIT_EXCEEDED": "rate-limit-exceeded", "TRANSACTIONS_ERROR": "transactions"}


class PlaidError(Exception):
    """An answer other than 200, raised anywhere while routing and turned into Plaid's error body."""

    def __init__(self, status: int, error_type: str, error_code: str, message: str,
                 display_message: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error_type, self.error_code = status, error_type, error_code
        self.message, self.display_message = message, display_message

    def body(self, request_id: str) -> dict[str, Any]:
        return {"display_message": self.display_message,
                "documentation_url": f"{DOCS}{_PAGES.get(self.error_type, '')}/#{self.error_code.lower()}",
                "error_code": self.error_code, "error_code_reason": None, "error_message": self.message,
                "error_type": self.error_type, "request_id": request_id, "suggested_action": None}


def invalid_field(message: str) -> PlaidError:
    return PlaidError(400, "INVALID_REQUEST", "INVALID_FIELD", message)


def missing_fields(names: list[str]) -> PlaidError:
    return PlaidError(400, "INVALID_REQUEST", "MISSING_FIELDS",
                      f"the following required fields are missing: {', '.join(names)}")


def unknown_fields(names: list[str]) -> PlaidError:
    return PlaidError(400, "INVALID_REQUEST", "UNKNOWN_FIELDS",
                      f"the following fields are not recognized by this endpoint: {', '.join(names)}")


def login_required() -> PlaidError:
    return PlaidError(400, "ITEM_ERROR", "ITEM_LOGIN_REQUIRED",
                      "the login details of this item have changed (credentials, MFA, or required user action) and "
                      "a user login is required to update this information. use Link's update mode to restore the "
                      "item to a good state")


def json_response(status: int, payload: Any) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return httpx.Response(status, headers={"Content-Type": "application/json"}, content=body)


def error_response(error: PlaidError, request_id: str) -> httpx.Response:
    return json_response(error.status, error.body(request_id))
