"""The Ramp Developer API client the pipeline extracts with: raw JSON pages, retries, rotating tokens, secret-safe.

One `RampClient` serves one business: the app's client id and secret, and the business's rotating refresh token
(lib/oauth.py: refreshed under the token store's lock, the rotated token saved before it is used). Lists are
followed through `page.next` exactly as Ramp sent it (it carries the filters and an opaque `start`), and only
to the host the client was given, so a token never goes anywhere else. Objects are handed back exactly as Ramp
sent them (plain dicts; NaN refused): the log hashes what the rail said. Not thread-safe: one client per thread.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from ledger_pipeline.lib import oauth
from ledger_pipeline.lib.canonical import parse_json
from ledger_pipeline.lib.retry import RETRY_STATUSES, parse_retry_after
from ledger_pipeline.lib.tls import shared_ssl_context
from ledger_pipeline.lib.token_store import TokenStore
from ledger_pipeline.rails.ramp.errors import (
    BY_STATUS, ErrorContext, RampAuthError, RampError, RampMalformedResponse, parse_error,
)  # fmt: skip
from ledger_pipeline.rails.ramp.rail import object_id
from ledger_pipeline.rails.ramp.retry import Retryable, RetryPolicy

__all__ = ["ENVIRONMENTS", "MAX_PAGE_SIZE", "RampClient"]

ENVIRONMENTS = {"production": "https://api.ramp.com", "demo": "https://demo-api.ramp.com"}
API_PREFIX = "/developer/v1"
MIN_PAGE_SIZE, MAX_PAGE_SIZE = 2, 100
MAX_AUTH_REFRESHES = 1  # a 401 is retried once with a refreshed token; a second 401 means the grant is gone


class RampClient:
    """Reads one business's lists and objects from Ramp's Developer API."""

    def __init__(
        self, business_id: str, credentials: oauth.OAuthCredentials, token_store: TokenStore, *, base_url: str,
        transport: httpx.BaseTransport | None = None, page_size: int = MAX_PAGE_SIZE, max_retries: int = 6,
        backoff_base: float = 0.5, backoff_cap: float = 60.0, timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:  # fmt: skip
        self.business_id = object_id(business_id)
        self._ctx = ErrorContext(business_id)
        if not credentials.client_id or not credentials.client_secret:
            raise self._ctx.error(RampAuthError, None, "missing Ramp client id or client secret")
        if not MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between {MIN_PAGE_SIZE} and {MAX_PAGE_SIZE}, got {page_size}")
        self.page_size = page_size
        self.base_url = base_url.rstrip("/")
        self._origin = _origin(self.base_url)
        self._policy = RetryPolicy(max_retries, backoff_base, backoff_cap, sleep, rng or random.Random())
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False,
                                  verify=shared_ssl_context(), headers={"Accept": "application/json"})  # fmt: skip
        endpoint = oauth.TokenEndpoint(
            url=f"{self.base_url}{API_PREFIX}/token", http=self._http, secrets=self._ctx,
            run=lambda attempt, _entity, label: self._policy.run(attempt, self._ctx, label),
            refused=lambda _entity, cause, status, code: self._ctx.error(RampAuthError, "/token", cause,
                                                                         status=status, code=code),
            malformed=lambda _entity, cause, status: self._ctx.error(RampMalformedResponse, "/token", cause,
                                                                     status=status),
            parse=_oauth_error,
            rail="Ramp", account_noun="business",
        )  # fmt: skip
        self._tokens = oauth.TokenManager(business_id, credentials, token_store, endpoint,
                                          clock or (lambda: datetime.now(UTC)))  # fmt: skip
        self.last_date: datetime | None = None  # the Date header of the newest answer: the rail's clock

    def __repr__(self) -> str:
        return f"RampClient(business_id={self.business_id!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RampClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.close()

    # --- public reads -------------------------------------------------------------------------

    def pages(self, path: str, params: Mapping[str, str] | None = None) -> Iterator[list[dict]]:
        """Every page of the list at `path` ("transactions", ...) with `params`, `page.next` followed verbatim."""
        endpoint = f"/{path}"
        url: str | None = f"{self.base_url}{API_PREFIX}/{path}"
        query: dict[str, Any] | None = {"page_size": self.page_size, **(params or {})}
        while url is not None:
            body = self._get(url, query, endpoint)
            data, page = body.get("data"), body.get("page")
            if not isinstance(data, list) or not all(isinstance(o, dict) for o in data) or not isinstance(page, dict):
                raise self._ctx.error(RampMalformedResponse, endpoint, "the answer is not {data: [...], page: {...}}")
            yield data
            following = page.get("next")
            if following is not None and (not isinstance(following, str) or following == url):
                raise self._ctx.error(RampMalformedResponse, endpoint, "page.next is not a new URL")
            if following is not None and _origin(following) != self._origin:
                elsewhere = f"page.next leads to another host ({_origin(following)}); not followed"
                raise self._ctx.error(RampMalformedResponse, endpoint, elsewhere)
            url, query = following, None

    def get(self, path: str, item_id: str) -> dict:
        """One object by id (`transactions/<id>`), raw."""
        endpoint = f"/{path}/<id>"
        body = self._get(f"{self.base_url}{API_PREFIX}/{path}/{object_id(item_id)}", None, endpoint)
        return body

    # --- plumbing -----------------------------------------------------------------------------

    def _get(self, url: str, query: Mapping[str, Any] | None, endpoint: str) -> dict:
        """One logical GET with retries and, on a 401, one token refresh. Returns the JSON object."""
        refreshes = 0
        while True:
            token = self._tokens.access_token(endpoint)
            try:
                return self._policy.run(lambda: self._attempt(url, query, token, endpoint), self._ctx, endpoint)
            except RampAuthError as exc:
                if exc.status != 401 or refreshes >= MAX_AUTH_REFRESHES:
                    raise
                refreshes += 1
                self._tokens.refresh(stale=token, entity=endpoint)

    def _attempt(self, url: str, query: Mapping[str, Any] | None, token: str, endpoint: str) -> dict:
        try:
            response = self._http.get(url, params=query, headers={"Authorization": f"Bearer {token}"})
        except httpx.TransportError as exc:
            # not chained: httpx errors hold the request, its Authorization header included
            raise Retryable("transport", f"{type(exc).__name__} on {endpoint}: {exc}") from None
        self._note_date(response)
        if response.status_code != 200:
            raise self._failure(response, endpoint)
        try:
            answer = parse_json(response.content)
        except ValueError as exc:
            raise Retryable("malformed", f"{endpoint} body is not JSON ({exc})", status=200,
                            request_id=response.headers.get("x-trace-id")) from None  # fmt: skip
        if not isinstance(answer, dict):
            raise Retryable("malformed", f"{endpoint} body is not a JSON object", status=200)
        return answer

    def _failure(self, response: httpx.Response, endpoint: str) -> Exception:
        """A non-200 answer: a Retryable when worth repeating, else the final RampError to raise."""
        status, err = response.status_code, parse_error(response)
        text = err.message or f"HTTP {status} from {endpoint}"
        if status in RETRY_STATUSES:
            return Retryable("throttled" if status == 429 else "server", text, status=status, code=err.code,
                             request_id=err.trace_id,
                             retry_after=parse_retry_after(response.headers.get("retry-after")))  # fmt: skip
        cls = BY_STATUS.get(status, RampError)
        if status == 403:
            text += "; the business's grant lacks this scope: reconnect it with the scopes docs/real-ramp.md lists"
        return self._ctx.error(cls, endpoint, text, status=status, code=err.code, trace_id=err.trace_id)

    def _note_date(self, response: httpx.Response) -> None:
        value = response.headers.get("date")
        if value:
            try:
                self.last_date = parsedate_to_datetime(value).astimezone(UTC)
            except (TypeError, ValueError):
                pass


def _oauth_error(response: httpx.Response) -> tuple[str | None, str | None]:
    told = parse_error(response)
    return told.code, told.message


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"

