"""The Plaid API client the pipeline extracts with: raw JSON answers, retries, secret-safe.

One `PlaidClient` serves one tenant: the platform's client_id and secret, and the access token of each of the
tenant's items (looked up by item id, so a token never leaves the client). It speaks Plaid's wire format (POST
JSON, credentials in the PLAID-CLIENT-ID / PLAID-SECRET headers) over httpx, so the same code talks to Plaid or,
given the sandbox's transport or URL, to the offline emulator. Objects are handed back exactly as Plaid sent them
(plain dicts; NaN refused): the log hashes what the rail said. Not thread-safe: use one client per thread.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from ledger_pipeline.lib.canonical import parse_json
from ledger_pipeline.lib.retry import parse_retry_after
from ledger_pipeline.lib.tls import shared_ssl_context
from ledger_pipeline.rails.plaid.errors import (
    BY_CODE, ErrorContext, PlaidAuthError, PlaidError, PlaidInvalidRequest, PlaidMalformedResponse, parse_error,
)
from ledger_pipeline.rails.plaid.retry import Retryable, RetryPolicy

__all__ = ["ENVIRONMENTS", "MAX_COUNT", "PlaidClient", "SyncPage"]

ENVIRONMENTS = {"production": "https://production.plaid.com", "sandbox": "https://sandbox.plaid.com"}
API_VERSION = "2020-09-14"
MAX_COUNT = 500  # /transactions/sync's largest page


@dataclass(frozen=True)
class SyncPage:
    """One answer of /transactions/sync, its lists as Plaid sent them."""

    added: list[dict]
    modified: list[dict]
    removed: list[dict]
    accounts: list[dict]
    next_cursor: str
    has_more: bool
    update_status: str | None
    request_id: str | None


class PlaidClient:
    """Reads one tenant's items: /item/get, /accounts/get, /transactions/sync."""

    def __init__(
        self, client_id: str, secret: str, access_tokens: Mapping[str, str], *, base_url: str,
        transport: httpx.BaseTransport | None = None, max_retries: int = 6, backoff_base: float = 0.5,
        backoff_cap: float = 60.0, timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:  # fmt: skip
        self._ctx = ErrorContext()
        if not isinstance(client_id, str) or not client_id.strip() or not isinstance(secret, str) or not secret.strip():
            raise self._ctx.error(PlaidAuthError, None, None, "missing Plaid client_id or secret")
        self._ctx.add_secret(secret)
        for item_id, token in access_tokens.items():
            if not isinstance(token, str) or not token.strip():
                raise self._ctx.error(PlaidAuthError, item_id, None, "missing access token")
            self._ctx.add_secret(token)
        self._tokens = dict(access_tokens)
        self.item_ids = tuple(access_tokens)
        self.base_url = base_url.rstrip("/")
        self._policy = RetryPolicy(max_retries, backoff_base, backoff_cap, sleep, rng or random.Random())
        headers = {
            "PLAID-CLIENT-ID": client_id, "PLAID-SECRET": secret, "Plaid-Version": API_VERSION,
            "Content-Type": "application/json", "User-Agent": "ledger_pipeline-plaid",
        }  # fmt: skip
        self._http = httpx.Client(
            transport=transport, timeout=timeout, headers=headers, follow_redirects=False, verify=shared_ssl_context()
        )

    def __repr__(self) -> str:
        return f"PlaidClient(items={list(self.item_ids)!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PlaidClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- public reads -------------------------------------------------------------------------

    def item(self, item_id: str) -> dict:
        """/item/get's `item`, raw (its `error` says when the bank needs a new login)."""
        body = self._post(item_id, "/item/get", {})
        if not isinstance(body.get("item"), dict):
            raise self._malformed(item_id, "/item/get", "no `item` object")
        return body["item"]

    def accounts(self, item_id: str) -> list[dict]:
        """/accounts/get's `accounts`, raw, with the balances Plaid last read."""
        body = self._post(item_id, "/accounts/get", {})
        return self._objects(body, "accounts", item_id, "/accounts/get")

    def transactions_sync(self, item_id: str, cursor: str | None, count: int = MAX_COUNT) -> SyncPage:
        """One page of /transactions/sync from `cursor` (None or "": the whole history)."""
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"count must be between 1 and {MAX_COUNT}, got {count}")
        payload: dict[str, Any] = {"count": count, "options": {"include_original_description": True}}
        if cursor:
            payload["cursor"] = cursor
        endpoint = "/transactions/sync"
        body = self._post(item_id, endpoint, payload)
        lists = [self._objects(body, name, item_id, endpoint) for name in ("added", "modified", "removed", "accounts")]
        next_cursor, has_more = body.get("next_cursor"), body.get("has_more")
        if not isinstance(next_cursor, str) or not isinstance(has_more, bool):
            raise self._malformed(item_id, endpoint, "next_cursor is not a string or has_more not a boolean")
        if has_more and (not next_cursor or next_cursor == cursor):
            raise self._malformed(item_id, endpoint, "has_more is true but next_cursor does not move")
        status = body.get("transactions_update_status")
        return SyncPage(*lists, next_cursor, has_more, status if isinstance(status, str) else None,
                        body.get("request_id"))  # fmt: skip

    # --- plumbing -----------------------------------------------------------------------------

    def _objects(self, body: dict, name: str, item_id: str, endpoint: str) -> list[dict]:
        value = body.get(name)
        if not isinstance(value, list) or not all(isinstance(obj, dict) for obj in value):
            raise self._malformed(item_id, endpoint, f"`{name}` is not a list of objects")
        return value

    def _malformed(self, item_id: str, endpoint: str, why: str) -> PlaidError:
        return self._ctx.error(PlaidMalformedResponse, item_id, endpoint, why)

    def _post(self, item_id: str, endpoint: str, payload: dict[str, Any]) -> dict:
        """One logical POST with retries, for one item (its access token added here). Returns the JSON object."""
        if item_id not in self._tokens:
            raise ValueError(f"Plaid item {str(item_id)[:40]!r} is not one of this client's: {list(self.item_ids)}")
        body = {**payload, "access_token": self._tokens[item_id]}
        url = f"{self.base_url}{endpoint}"

        def attempt() -> dict:
            try:
                response = self._http.post(url, json=body)
            except httpx.TransportError as exc:
                # not chained: httpx errors hold the request, its credentials included
                raise Retryable("transport", f"{type(exc).__name__} on {endpoint}: {exc}") from None
            if response.status_code != 200:
                raise self._failure(response, item_id, endpoint)
            try:
                answer = parse_json(response.content)
            except ValueError as exc:
                raise Retryable("malformed", f"{endpoint} body is not JSON ({exc})", status=200) from None
            if not isinstance(answer, dict):
                raise Retryable("malformed", f"{endpoint} body is not a JSON object", status=200)
            return answer

        return self._policy.run(attempt, self._ctx, item_id, endpoint)

    def _failure(self, response: httpx.Response, item_id: str, endpoint: str) -> Exception:
        """A non-200 answer: a Retryable when worth repeating, else the final PlaidError to raise."""
        status, err = response.status_code, parse_error(response)
        text = err.message or f"HTTP {status} from {endpoint}"
        if status == 429 or err.error_type == "RATE_LIMIT_EXCEEDED" or status >= 500:
            return Retryable(
                "throttled" if status == 429 else "server", text, status=status, code=err.code,
                detail=err.error_type, request_id=err.request_id,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )  # fmt: skip
        cls = BY_CODE.get(err.code or "", PlaidInvalidRequest if status == 400 else PlaidError)
        return self._ctx.error(
            cls, item_id, endpoint, text, status=status, error_type=err.error_type, code=err.code,
            request_id=err.request_id,
        )  # fmt: skip
