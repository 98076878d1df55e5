"""OAuth 2 refresh for QBO with rotating refresh tokens, safe across clients sharing a token store.

The access token lives an hour; the refresh token changes on every refresh and the old one is then
refused. `TokenManager` therefore refreshes only under the store's per-realm lock, re-reads the
store once it holds the lock (another client may have refreshed meanwhile and left a fresh access
token), and saves the rotated refresh token before the new access token is used.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from ledger_pipeline.rails.qbo.errors import ErrorContext, QboAuthError, QboMalformedResponse, parse_fault
from ledger_pipeline.rails.qbo.retry import RETRY_STATUSES, Retryable, RetryPolicy, parse_retry_after
from ledger_pipeline.rails.qbo.token_store import (
    FileTokenStore,
    MemoryTokenStore,
    StoredTokens,
    TokenStore,
    validate_realm_id,
)

__all__ = [
    "FileTokenStore",
    "MemoryTokenStore",
    "QboCredentials",
    "StoredTokens",
    "TokenManager",
    "TokenStore",
    "validate_realm_id",
]

logger = logging.getLogger(__name__)

# Refresh a little before QBO would reject the token, so a request never starts with a dying one.
EXPIRY_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class QboCredentials:
    """The app's keys and the company's initial refresh token; a newer rotated token in the store wins."""

    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)


class TokenManager:
    """Hands out a valid access token for one realm, refreshing (and persisting the rotation) as needed."""

    def __init__(
        self,
        realm_id: str,
        credentials: QboCredentials,
        store: TokenStore,
        http: httpx.Client,
        token_url: str,
        policy: RetryPolicy,
        ctx: ErrorContext,
        clock: Callable[[], datetime],
    ) -> None:
        self._realm_id = realm_id
        self._credentials = credentials
        self._store = store
        self._http = http
        self._token_url = token_url
        self._policy = policy
        self._ctx = ctx
        self._clock = clock
        self._access: str | None = None
        self._expires_at: datetime | None = None
        self.refresh_count = 0  # refreshes this manager performed itself (not adopted ones)
        for secret in (credentials.client_secret, credentials.refresh_token):
            ctx.add_secret(secret)

    def __repr__(self) -> str:
        return f"TokenManager(realm_id={self._realm_id!r}, store={self._store!r})"

    def _usable(self, token: str | None, expires_at: datetime | None) -> bool:
        if not token:
            return False
        return expires_at is None or expires_at - EXPIRY_SKEW > self._clock()

    def access_token(self, entity: str | None = None) -> str:
        """The current access token, refreshing first if there is none or it is about to expire."""
        if self._access is not None and self._usable(self._access, self._expires_at):
            return self._access
        return self.refresh(stale=self._access, entity=entity)

    def refresh(self, *, stale: str | None, entity: str | None = None) -> str:
        """Replace `stale` (the token that failed or expired) with a working one.

        Under the store's lock: adopt a different, unexpired access token if another client left
        one; otherwise refresh with the newest refresh token (store first, credentials second).
        """
        with self._store.lock(self._realm_id):
            stored = self._load(entity)
            if stored is not None:
                self._ctx.add_secret(stored.refresh_token)
                self._ctx.add_secret(stored.access_token)
                fresh_elsewhere = stored.access_token != stale
                if fresh_elsewhere and self._usable(stored.access_token, stored.access_expires_at):
                    self._adopt(stored)
                    assert self._access is not None
                    return self._access
            # The stored (rotated) token first; the credentials' token only if there is none, or if
            # QBO refuses the stored one (the company was reconnected and a new token configured).
            known = (stored.refresh_token if stored else "", self._credentials.refresh_token)
            candidates = list(dict.fromkeys(token for token in known if token))
            if not candidates:
                raise self._ctx.error(
                    QboAuthError,
                    entity,
                    "no refresh token: the token store and the credentials are both empty; "
                    "connect the company first",
                )
            fresh = self._refresh_with(candidates, entity)
            self._store.save(self._realm_id, fresh)
            self.refresh_count += 1
            self._adopt(fresh)
            assert self._access is not None
            return self._access

    def _load(self, entity: str | None) -> StoredTokens | None:
        try:
            return self._store.load(self._realm_id)
        except ValueError as exc:
            raise self._ctx.error(QboAuthError, entity, f"token store is unusable ({exc}); reconnect the company")

    def _refresh_with(self, candidates: list[str], entity: str | None) -> StoredTokens:
        for index, token in enumerate(candidates):
            try:
                return self._policy.run(lambda: self._post(token, entity), self._ctx, entity, "token refresh")
            except QboAuthError as exc:
                if exc.code != "invalid_grant" or index == len(candidates) - 1:
                    raise
                logger.info("QBO realm %s: stored refresh token refused; trying the configured one",
                            self._realm_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def _adopt(self, tokens: StoredTokens) -> None:
        self._access = tokens.access_token
        self._expires_at = tokens.access_expires_at

    def _post(self, refresh_token: str, entity: str | None) -> StoredTokens:
        """One refresh attempt: a rotated StoredTokens, a final QboAuthError, or Retryable."""
        try:
            response = self._http.post(
                self._token_url,
                data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                auth=(self._credentials.client_id, self._credentials.client_secret),
                headers={"Accept": "application/json"},
            )
        except httpx.TransportError as exc:
            # not chained: the httpx error holds the request, whose body is the refresh token
            why = f"token endpoint unreachable ({type(exc).__name__}: {exc})"
            raise Retryable("transport", why) from None
        status = response.status_code
        if status in RETRY_STATUSES:
            fault = parse_fault(response)
            raise Retryable(
                "throttled" if status == 429 else "server",
                f"token endpoint answered HTTP {status}",
                status=status,
                code=fault.code,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if status != 200:
            raise self._refusal(response, entity)
        return self._parse_grant(response, refresh_token, entity)

    def _refusal(self, response: httpx.Response, entity: str | None) -> QboAuthError:
        fault = parse_fault(response)
        code = fault.code
        if code == "invalid_grant":
            cause = (
                "refresh token was refused (invalid_grant): it was rotated or revoked; reconnect the company"
            )
        elif code == "invalid_client":
            cause = "client id or client secret was refused (invalid_client): check the app's credentials"
        else:
            cause = f"token refresh was refused{': ' + fault.describe() if fault.describe() else ''}"
        error = self._ctx.error(QboAuthError, entity, cause, status=response.status_code, code=code)
        assert isinstance(error, QboAuthError)
        return error

    def _parse_grant(self, response: httpx.Response, old_refresh: str, entity: str | None) -> StoredTokens:
        # A malformed 200 is not retried: QBO may already have rotated the refresh token we sent.
        grant = _read_grant(response.content, old_refresh)
        if grant is None:
            raise self._ctx.error(
                QboMalformedResponse,
                entity,
                "token endpoint returned an unreadable grant; the refresh token may have been consumed",
                status=response.status_code,
            )
        access, rotated, expires_in = grant
        self._ctx.add_secret(access)
        self._ctx.add_secret(rotated)
        return StoredTokens(rotated, access, self._clock() + timedelta(seconds=expires_in))


def _read_grant(content: bytes, old_refresh: str) -> tuple[str, str, float] | None:
    """(access token, rotated refresh token, expires_in) or None; never raises, so no parser error
    holding the body (and its tokens) can end up chained to the exception the caller raises."""
    try:
        body = json.loads(content)
        access = body["access_token"]
        rotated = body.get("refresh_token") or old_refresh
        expires_in = float(body.get("expires_in", 3600))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(access, str) or not access or not isinstance(rotated, str) or expires_in <= 0:
        return None
    return access, rotated, expires_in
