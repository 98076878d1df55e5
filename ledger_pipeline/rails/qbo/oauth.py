"""OAuth 2 refresh for QBO: the core's rotating-token manager (lib/oauth.py) with QBO's errors and retries.

The access token lives an hour; the refresh token changes on every refresh and the old one is then refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx

from ledger_pipeline.lib import oauth
from ledger_pipeline.rails.qbo.errors import ErrorContext, QboAuthError, QboMalformedResponse, parse_fault
from ledger_pipeline.rails.qbo.retry import RetryPolicy
from ledger_pipeline.rails.qbo.token_store import (
    FileTokenStore, MemoryTokenStore, StoredTokens, TokenStore, validate_realm_id,
)  # fmt: skip

__all__ = [
    "FileTokenStore", "MemoryTokenStore", "QboCredentials", "StoredTokens", "TokenManager", "TokenStore",
    "validate_realm_id",
]  # fmt: skip


@dataclass(frozen=True)
class QboCredentials(oauth.OAuthCredentials):
    """The app's keys and the company's initial refresh token; a newer rotated token in the store wins."""


class TokenManager(oauth.TokenManager):
    """Hands out a valid access token for one realm, refreshing (and persisting the rotation) as needed."""

    def __init__(
        self, realm_id: str, credentials: QboCredentials, store: TokenStore, http: httpx.Client, token_url: str,
        policy: RetryPolicy, ctx: ErrorContext, clock: Callable[[], datetime],
    ) -> None:  # fmt: skip
        def parse(response: httpx.Response) -> tuple[str | None, str | None]:
            fault = parse_fault(response)
            return fault.code, fault.describe() or None

        endpoint = oauth.TokenEndpoint(
            url=token_url, http=http, secrets=ctx,
            run=lambda attempt, entity, label: policy.run(attempt, ctx, entity, label),
            refused=lambda entity, cause, status, code: ctx.error(QboAuthError, entity, cause, status=status,
                                                                  code=code),
            malformed=lambda entity, cause, status: ctx.error(QboMalformedResponse, entity, cause, status=status),
            parse=parse, rail="QBO", account_noun="company",
        )  # fmt: skip
        super().__init__(realm_id, credentials, store, endpoint, clock)
