"""OAuth 2 refresh with rotating refresh tokens, safe across clients sharing a token store (QBO, Ramp).

The refresh token changes on every refresh and the old one is then refused. `TokenManager` therefore
refreshes only under the store's per-account lock, re-reads the store once it holds the lock (another
client may have refreshed meanwhile and left a fresh access token), and saves the rotated refresh token
before the new access token is used. What differs per rail (its errors, retries, what to reconnect) comes
in a `TokenEndpoint`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx

from ledger_pipeline.lib.redact import Secrets
from ledger_pipeline.lib.retry import RETRY_STATUSES, Retryable, parse_retry_after
from ledger_pipeline.lib.token_store import StoredTokens, TokenStore

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Refresh a little before the rail would reject the token, so a request never starts with a dying one.
EXPIRY_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class OAuthCredentials:
    """The app's keys and the account's initial refresh token; a newer rotated token in the store wins."""

    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)


class Refused(Exception):
    """What a rail's `refused` factory returns must carry the OAuth error code (`invalid_grant`, ...)."""

    code: str | None


@dataclass(frozen=True)
class TokenEndpoint:
    """A rail's token endpoint and how its failures are told: `run(attempt, entity, label)` retries a Retryable
    attempt with the rail's policy; `refused(entity, cause, status, code)` and `malformed(entity, cause, status)`
    build the rail's final errors; `parse(response)` reads its OAuth error body as (code, description)."""

    url: str
    http: httpx.Client
    secrets: Secrets
    run: Callable[[Callable[[], Any], str | None, str], Any]
    refused: Callable[[str | None, str, int | None, str | None], Exception]
    malformed: Callable[[str | None, str, int | None], Exception]
    parse: Callable[[httpx.Response], tuple[str | None, str | None]]
    rail: str  # "QBO", "Ramp": log lines
    account_noun: str  # "company", "business": what a person reconnects


class TokenManager:
    """Hands out a valid access token for one account, refreshing (and persisting the rotation) as needed."""

    def __init__(
        self, account_id: str, credentials: OAuthCredentials, store: TokenStore, endpoint: TokenEndpoint,
        clock: Callable[[], datetime],
    ) -> None:  # fmt: skip
        self._account_id, self._credentials, self._store = account_id, credentials, store
        self._endpoint, self._clock = endpoint, clock
        self._access: str | None = None
        self._expires_at: datetime | None = None
        self.refresh_count = 0  # refreshes this manager performed itself (not adopted ones)
        for secret in (credentials.client_secret, credentials.refresh_token):
            endpoint.secrets.add_secret(secret)

    def __repr__(self) -> str:
        return f"TokenManager(account_id={self._account_id!r}, store={self._store!r})"

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
        secrets = self._endpoint.secrets
        with self._store.lock(self._account_id):
            stored = self._load(entity)
            if stored is not None:
                secrets.add_secret(stored.refresh_token)
                secrets.add_secret(stored.access_token)
                fresh_elsewhere = stored.access_token != stale
                if fresh_elsewhere and self._usable(stored.access_token, stored.access_expires_at):
                    return self._adopt(stored)
            # The stored (rotated) token first; the credentials' token only if there is none, or if
            # the rail refuses the stored one (the account was reconnected and a new token configured).
            known = (stored.refresh_token if stored else "", self._credentials.refresh_token)
            candidates = list(dict.fromkeys(token for token in known if token))
            if not candidates:
                raise self._endpoint.refused(
                    entity, f"no refresh token: the token store and the credentials are both empty; connect the "
                    f"{self._endpoint.account_noun} first", None, None,
                )  # fmt: skip
            fresh = self._refresh_with(candidates, entity)
            self._store.save(self._account_id, fresh)
            self.refresh_count += 1
            return self._adopt(fresh)

    def _load(self, entity: str | None) -> StoredTokens | None:
        try:
            return self._store.load(self._account_id)
        except ValueError as exc:
            noun = self._endpoint.account_noun
            raise self._endpoint.refused(entity, f"token store is unusable ({exc}); reconnect the {noun}", None, None)

    def _refresh_with(self, candidates: list[str], entity: str | None) -> StoredTokens:
        for index, token in enumerate(candidates):
            try:
                return self._endpoint.run(lambda: self._post(token, entity), entity, "token refresh")
            except Exception as exc:
                if getattr(exc, "code", None) != "invalid_grant" or index == len(candidates) - 1:
                    raise
                logger.info("%s %s %s: stored refresh token refused; trying the configured one",
                            self._endpoint.rail, self._endpoint.account_noun, self._account_id)  # fmt: skip
        raise AssertionError("unreachable")  # pragma: no cover

    def _adopt(self, tokens: StoredTokens) -> str:
        self._access, self._expires_at = tokens.access_token, tokens.access_expires_at
        assert self._access is not None
        return self._access

    def _post(self, refresh_token: str, entity: str | None) -> StoredTokens:
        """One refresh attempt: a rotated StoredTokens, a final refusal, or Retryable."""
        endpoint = self._endpoint
        try:
            response = endpoint.http.post(
                endpoint.url, data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                auth=(self._credentials.client_id, self._credentials.client_secret),
                headers={"Accept": "application/json"},
            )  # fmt: skip
        except httpx.TransportError as exc:
            # not chained: the httpx error holds the request, whose body is the refresh token
            raise Retryable("transport", f"token endpoint unreachable ({type(exc).__name__}: {exc})") from None
        status = response.status_code
        if status in RETRY_STATUSES:
            code, _ = endpoint.parse(response)
            raise Retryable(
                "throttled" if status == 429 else "server", f"token endpoint answered HTTP {status}", status=status,
                code=code, retry_after=parse_retry_after(response.headers.get("retry-after")),
            )  # fmt: skip
        if status != 200:
            raise self._refusal(response, entity)
        return self._parse_grant(response, refresh_token, entity)

    def _refusal(self, response: httpx.Response, entity: str | None) -> Exception:
        code, description = self._endpoint.parse(response)
        noun = self._endpoint.account_noun
        if code == "invalid_grant":
            cause = f"refresh token was refused (invalid_grant): it was rotated or revoked; reconnect the {noun}"
        elif code == "invalid_client":
            cause = "client id or client secret was refused (invalid_client): check the app's credentials"
        else:
            cause = f"token refresh was refused{': ' + description if description else ''}"
        return self._endpoint.refused(entity, cause, response.status_code, code)

    def _parse_grant(self, response: httpx.Response, old_refresh: str, entity: str | None) -> StoredTokens:
        # A malformed 200 is not retried: the rail may already have rotated the refresh token we sent.
        grant = read_grant(response.content, old_refresh)
        if grant is None:
            raise self._endpoint.malformed(
                entity, "token endpoint returned an unreadable grant; the refresh token may have been consumed",
                response.status_code,
            )  # fmt: skip
        access, rotated, expires_in = grant
        self._endpoint.secrets.add_secret(access)
        self._endpoint.secrets.add_secret(rotated)
        return StoredTokens(rotated, access, self._clock() + timedelta(seconds=expires_in))


def read_grant(content: bytes, old_refresh: str) -> tuple[str, str, float] | None:
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
