"""The Stripe API client the pipeline extracts with: raw JSON pages, the events feed, retries, secret-safe.

One `StripeClient` reads one Connect account (a tenant) with the platform's secret key and a
`Stripe-Account` header. It speaks Stripe's wire format over httpx, so the same code talks to
api.stripe.com or, given the sandbox's transport or URL, to the offline emulator. Objects are handed
back exactly as Stripe sent them (plain dicts from `json.loads`, NaN refused): the log hashes what the rail said.
An httpx client rather than the official SDK: see bench/stripe_client_choice.py for why.
Not thread-safe: use one client per thread.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from ledger_pipeline.lib.canonical import parse_json
from ledger_pipeline.lib.tls import shared_ssl_context
from ledger_pipeline.rails.stripe.errors import (
    ErrorContext,
    StripeAuthError,
    StripeError,
    StripeEventsExpired,
    StripeInvalidRequest,
    StripeMalformedResponse,
    StripeNotFound,
    StripePermissionError,
    parse_error,
)
from ledger_pipeline.rails.stripe.retry import Retryable, RetryPolicy, final_error, parse_retry_after

__all__ = ["PRODUCTION_BASE_URL", "StripeClient", "StripePage"]

PRODUCTION_BASE_URL = "https://api.stripe.com"
MAX_LIMIT = 100
_ACCOUNT_ID = re.compile(r"acct_[A-Za-z0-9]+")
_RESOURCE = re.compile(r"[a-z][a-z_]*(/[a-z][a-z_]*)?")  # "charges", "issuing/cards"
_OBJECT_ID = re.compile(r"[A-Za-z0-9_]+")
_RESERVED = ("limit", "starting_after", "ending_before", "created")  # paging is the client's job
T = TypeVar("T")


@dataclass(frozen=True)
class StripePage:
    """One list page: raw objects newest first, their `created` range (Unix seconds) and the Request-Id."""

    resource: str
    objects: list[dict]
    newest_created: int | None
    oldest_created: int | None
    request_id: str | None


class StripeClient:
    """Reads one connected account: list pages, the events feed, single objects, balance and payouts."""

    def __init__(
        self,
        account_id: str,
        api_key: str,
        *,
        base_url: str = PRODUCTION_BASE_URL,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 60.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        stripe_version: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(account_id, str) or not _ACCOUNT_ID.fullmatch(account_id):
            raise ValueError(f"account_id must look like acct_..., got {str(account_id)[:40]!r}")
        self.account_id = account_id
        self._ctx = ErrorContext(account_id)
        if not isinstance(api_key, str) or not api_key.strip():
            raise self._ctx.error(StripeAuthError, None, "missing platform API key")
        self._ctx.add_secret(api_key)
        self.base_url = base_url.rstrip("/")
        self._policy = RetryPolicy(max_retries, backoff_base, backoff_cap, sleep, rng or random.Random())
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Stripe-Account": account_id,
            "Accept": "application/json",
            "User-Agent": "ledger_pipeline-stripe",
        }
        if stripe_version:
            headers["Stripe-Version"] = stripe_version  # pins the payload shape; else the account's default
        self._http = httpx.Client(
            transport=transport, timeout=timeout, headers=headers, follow_redirects=False, verify=shared_ssl_context()
        )

    def __repr__(self) -> str:
        return f"StripeClient(account_id={self.account_id!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StripeClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- public reads -------------------------------------------------------------------------

    def pages(
        self,
        resource: str,
        *,
        created_gte: int | datetime | None = None,
        created_lt: int | datetime | None = None,
        limit: int = MAX_LIMIT,
        extra_params: Mapping[str, Any] | None = None,
    ) -> Iterator[StripePage]:
        """Stream a list endpoint newest first, `starting_after` the previous page's last id while `has_more`.

        Arguments are checked now; requests happen one page at a time as the iterator is consumed.
        Stripe leaves deleted objects out of lists: finding those is the events feed's job.
        """
        _check_resource(resource)
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        params = _check_extra(extra_params)
        params["limit"] = str(limit)
        if created_gte is not None:
            params["created[gte]"] = str(_unix(created_gte, "created_gte"))
        if created_lt is not None:
            params["created[lt]"] = str(_unix(created_lt, "created_lt"))
        return self._pages(resource, params)

    def events(self, *, after_event_id: str | None, types: list[str] | None = None) -> Iterator[dict]:
        """Events newer than `after_event_id`, oldest first, raw; all Stripe still keeps when None.

        From a position, pages walk forward with `ending_before` (each page is still newest first, so
        it is reversed) and stream. Without one, every page is read before the first event is yielded.
        Raises StripeEventsExpired when Stripe no longer knows the position (older than 30 days, or
        never existed): the caller re-lists objects instead.
        """
        if after_event_id is not None:
            _check_id(after_event_id)
        params: dict[str, str] = {"limit": str(MAX_LIMIT)}
        for i, name in enumerate(types or []):
            params[f"types[{i}]"] = name
        if after_event_id is None:
            return self._all_events(params)
        return self._events_after(after_event_id, params)

    def latest_event_id(self) -> str | None:
        """The newest event's id (None when the account has none): where a first sync's events feed starts."""
        (objects, _), _ = self._get("events", {"limit": "1"}, "events", _list)
        newest = objects[0].get("id") if objects else None
        return newest if isinstance(newest, str) else None

    def retrieve(self, resource: str, object_id: str) -> dict:
        """One object, raw; a deleted one reads as `{id, object, deleted: true}`. Missing: StripeNotFound."""
        _check_resource(resource)
        _check_id(object_id)
        return self._get(f"{resource}/{quote(object_id)}", {}, resource, _object)[0]

    def balance(self) -> dict:
        """The account's balance (`/v1/balance`), raw."""
        return self._get("balance", {}, "balance", _object)[0]

    def payout_balance_transactions(self, payout_id: str) -> list[dict]:
        """Every balance transaction a payout settled (`/v1/balance_transactions?payout=po_...`), raw."""
        _check_id(payout_id)
        pages = self.pages("balance_transactions", extra_params={"payout": payout_id})
        return [obj for page in pages for obj in page.objects]

    # --- paging -------------------------------------------------------------------------------

    def _pages(self, resource: str, params: dict[str, str]) -> Iterator[StripePage]:
        cursor: str | None = None
        while True:
            page_params = params if cursor is None else {**params, "starting_after": cursor}
            (objects, has_more), request_id = self._get(resource, page_params, resource, _list)
            created = [obj["created"] for obj in objects if isinstance(obj.get("created"), int)]
            yield StripePage(
                resource, objects, max(created, default=None), min(created, default=None), request_id
            )
            if not has_more:
                return
            cursor = self._next_cursor(objects, -1, cursor, resource)

    def _all_events(self, params: dict[str, str]) -> Iterator[dict]:
        newest_first: list[dict] = []
        for page in self._pages("events", params):
            newest_first.extend(page.objects)
        yield from reversed(newest_first)

    def _events_after(self, position: str, params: dict[str, str]) -> Iterator[dict]:
        while True:
            try:
                (objects, has_more), _ = self._get("events", {**params, "ending_before": position}, "events", _list)
            except (StripeInvalidRequest, StripeNotFound) as exc:
                if not (exc.status == 404 or exc.code == "resource_missing" or exc.param == "ending_before"):
                    raise
                refused = exc
            else:
                yield from reversed(objects)
                if not has_more:
                    return
                position = self._next_cursor(objects, 0, position, "events")
                continue
            raise self._ctx.error(
                StripeEventsExpired, "events",
                f"Stripe refused the events position {position} (older than its 30 days, or unknown); "
                f"re-list instead: {refused.cause}",
                status=refused.status, code=refused.code, param=refused.param, request_id=refused.request_id,
            )  # fmt: skip

    def _next_cursor(self, objects: list[dict], index: int, previous: str | None, resource: str) -> str:
        """The id to page from; a page that cannot move the cursor would loop forever, so it is an error."""
        cursor = objects[index].get("id") if objects else None
        if not isinstance(cursor, str) or not cursor or cursor == previous:
            raise self._ctx.error(
                StripeMalformedResponse, resource, f"has_more is true but the page cannot be paged past ({cursor!r})"
            )
        return cursor

    # --- plumbing -----------------------------------------------------------------------------

    def _get(
        self, path: str, params: dict[str, str], resource: str, read: Callable[[dict, str], T]
    ) -> tuple[T, str | None]:
        """One logical GET with retries; `read` runs inside the retry loop. Returns (read's value, Request-Id)."""
        url = f"{self.base_url}/v1/{path}"

        def attempt() -> tuple[T, str | None]:
            try:
                response = self._http.get(url, params=params)
            except httpx.TransportError as exc:
                # not chained: httpx errors hold the request, Authorization header included
                raise Retryable("transport", f"{type(exc).__name__} on /v1/{path}: {exc}") from None
            request_id = response.headers.get("request-id")
            if response.status_code != 200:
                raise self._failure(response, path, resource)
            try:
                body = parse_json(response.content)
            except ValueError as exc:
                raise Retryable("malformed", f"/v1/{path} body is not JSON ({exc})", status=200,
                                request_id=request_id) from None  # fmt: skip
            try:
                return read(body, path), request_id
            except _ShapeError as exc:
                raise Retryable("malformed", f"/v1/{path}: {exc}", status=200, request_id=request_id) from None

        return self._policy.run(attempt, self._ctx, resource, f"GET /v1/{path}")

    def _failure(self, response: httpx.Response, path: str, resource: str) -> Exception:
        """A non-200 answer: a Retryable when worth repeating, else the final StripeError to raise."""
        status, err = response.status_code, parse_error(response)
        advice = response.headers.get("stripe-should-retry", "").strip().lower()
        text = err.message or f"HTTP {status} from /v1/{path}"
        if advice == "true" or (advice != "false" and (status == 429 or status >= 500)):
            return Retryable(
                "throttled" if status == 429 else "server", text, status=status, code=err.code,
                request_id=err.request_id, retry_after=parse_retry_after(response.headers.get("retry-after")),
            )  # fmt: skip
        if advice == "false" and (status == 429 or status >= 500):
            retryable = Retryable("throttled" if status == 429 else "server", text, status=status,
                                  code=err.code, request_id=err.request_id)  # fmt: skip
            return final_error(retryable, self._ctx, resource, "(Stripe-Should-Retry: false)")
        cls: type[StripeError] = {
            400: StripeInvalidRequest, 401: StripeAuthError, 403: StripePermissionError, 404: StripeNotFound
        }.get(status, StripeError)  # fmt: skip
        if err.code == "account_invalid":
            cls = StripePermissionError
        return self._ctx.error(
            cls, resource, text, status=status, code=err.code, param=err.param, request_id=err.request_id
        )


class _ShapeError(Exception):
    """A 200 body that is not the documented shape."""


def _list(body: Any, path: str) -> tuple[list[dict], bool]:
    if not isinstance(body, dict) or body.get("object") != "list":
        raise _ShapeError("expected a list envelope")
    data, has_more = body.get("data"), body.get("has_more")
    if not isinstance(data, list) or not all(isinstance(obj, dict) for obj in data):
        raise _ShapeError("list `data` is not a list of objects")
    if not isinstance(has_more, bool):
        raise _ShapeError("list `has_more` is not a boolean")
    return data, has_more


def _object(body: Any, path: str) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("object"), str):
        raise _ShapeError("expected an object with an `object` field")
    return body


def _check_resource(resource: str) -> None:
    if not isinstance(resource, str) or not _RESOURCE.fullmatch(resource):
        raise ValueError(f"resource must be a Stripe path like 'charges', got {str(resource)[:40]!r}")


def _check_id(object_id: str) -> None:
    if not isinstance(object_id, str) or not _OBJECT_ID.fullmatch(object_id):
        raise ValueError(f"not a Stripe id: {str(object_id)[:40]!r}")


def _check_extra(extra: Mapping[str, Any] | None) -> dict[str, str]:
    """Flat extra filters (`payout`, `status`, `type`...) as strings; paging parameters are refused."""
    params: dict[str, str] = {}
    for key, value in (extra or {}).items():
        if key.split("[", 1)[0] in _RESERVED:
            raise ValueError(f"extra_params may not set {key!r}: the client pages and brackets `created` itself")
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, (str, int)):
            raise ValueError(f"extra_params[{key!r}] must be a string, int or bool")
        params[key] = str(value)
    return params


def _unix(value: int | datetime, name: str) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
        return math.ceil(value.timestamp())  # created is whole seconds: >= / < x.5 mean >= / < x+1
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be Unix seconds or an aware datetime")
    return value
