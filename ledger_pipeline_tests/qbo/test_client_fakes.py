"""Scripted stand-in for QBO shared by the client unit tests (no tests here; the sandbox covers real behaviour).

Each API request pops the next scripted reply (a callable or an httpx.Response) or, when the
script is empty, answers with `default`. The token endpoint rotates tokens like QBO does.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx

from ledger_pipeline.rails.qbo.client import QboClient, QboCredentials
from ledger_pipeline.rails.qbo.oauth import MemoryTokenStore, TokenStore

REALM = "9130350000000001"
CLIENT_ID = "client-id-public"
CLIENT_SECRET = "s3cret-client-value-XYZ"
FIRST_REFRESH = "refresh-token-initial-ABC"
BASE = "http://qbo.test"
TOKEN_URL = "http://qbo.test/oauth2/v1/tokens/bearer"

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


def fault(status: int, code: str, message: str = "boom", detail: str = "", *, kind: str = "SERVICE", headers=None):
    body = {"Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": kind}, "time": "x"}
    return httpx.Response(status, json=body, headers=headers or {})


def query_page(entity: str, objects: list[dict]) -> httpx.Response:
    response = {entity: objects, "startPosition": 1, "maxResults": len(objects)} if objects else {}
    return httpx.Response(200, json={"QueryResponse": response, "time": "2026-10-01T00:00:00-07:00"})


def bill(oid: str, updated: str) -> dict:
    return {"Id": oid, "SyncToken": "0", "MetaData": {"LastUpdatedTime": updated}}


@dataclass
class FakeQbo:
    """Scripted QBO: records API requests, rotates refresh tokens, refuses the stale ones."""

    script: list[Reply] = field(default_factory=list)
    default: Reply | None = None
    requests: list[httpx.Request] = field(default_factory=list)
    token_requests: int = 0
    generation: int = 0
    token_script: list[Reply] = field(default_factory=list)
    check_access: bool = False  # when set, only the newest access token is accepted (401 code 3200 otherwise)
    token_delay: float = 0.0  # real seconds the token endpoint takes (to widen refresh races)

    @property
    def current_refresh(self) -> str:
        return FIRST_REFRESH if self.generation == 0 else f"refresh-token-gen-{self.generation}"

    @property
    def current_access(self) -> str:
        return f"access-token-gen-{self.generation}"

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tokens/bearer"):
            return self._token(request)
        self.requests.append(request)
        if self.check_access and request.headers.get("authorization") != f"Bearer {self.current_access}":
            return fault(401, "3200", "message=AuthenticationFailed; errorCode=003200; statusCode=401", "Token expired")
        reply = self.script.pop(0) if self.script else self.default
        if reply is None:
            return query_page("Bill", [])
        return reply(request) if callable(reply) else reply

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests += 1
        if self.token_delay:
            time.sleep(self.token_delay)
        if self.token_script:
            reply = self.token_script.pop(0)
            return reply(request) if callable(reply) else reply
        form = parse_qs(request.content.decode())
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return httpx.Response(401, json={"error": "invalid_client"})
        if form.get("refresh_token", [""])[0] != self.current_refresh:
            return httpx.Response(400, json={"error": "invalid_grant"})
        self.generation += 1
        body = {
            "token_type": "bearer",
            "access_token": self.current_access,
            "expires_in": 3600,
            "refresh_token": self.current_refresh,
            "x_refresh_token_expires_in": 8726400,
        }
        return httpx.Response(200, content=json.dumps(body), headers={"content-type": "application/json"})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def queries(self) -> list[str]:
        return [r.url.params.get("query", "") for r in self.requests]


class SleepRecorder:
    """Stands in for time.sleep: records every delay, waits for none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_client(
    fake: FakeQbo,
    sleep: SleepRecorder | None = None,
    *,
    store: TokenStore | None = None,
    credentials: QboCredentials | None = None,
    **kwargs,
) -> QboClient:
    return QboClient(
        REALM,
        credentials or QboCredentials(CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH),
        token_store=store if store is not None else MemoryTokenStore(),
        base_url=BASE,
        token_url=TOKEN_URL,
        transport=fake.transport(),
        sleep=sleep or SleepRecorder(),
        **kwargs,
    )


class CountingTransport(httpx.BaseTransport):
    """Wraps another transport and records (path, query params) of every request it passes on."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, dict[str, str]]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.url.path, dict(request.url.params)))
        return self.inner.handle_request(request)

    def count(self, suffix: str) -> int:
        return sum(1 for path, _ in self.seen if path.endswith(suffix))


def sandbox_client(
    sb,
    realm: str,
    *,
    store: TokenStore | None = None,
    sleep: SleepRecorder | None = None,
    base_url: str | None = None,
    transport: httpx.BaseTransport | None = None,
    credentials: QboCredentials | None = None,
    **kwargs,
) -> QboClient:
    """The real client pointed at a sandbox: in-process unless `base_url` names a running server."""
    from ledger_pipeline.rails.qbo.sandbox import SANDBOX_BASE_URL, sandbox_credentials

    if base_url is None:
        base_url = SANDBOX_BASE_URL
        transport = transport or sb.transport()
    kwargs.setdefault("clock", lambda: sb.now)
    return QboClient(
        realm,
        credentials or QboCredentials(*sandbox_credentials(realm)),
        token_store=store if store is not None else MemoryTokenStore(),
        base_url=base_url,
        token_url=f"{base_url}/oauth2/v1/tokens/bearer",
        transport=transport,
        sleep=sleep or SleepRecorder(),
        **kwargs,
    )


def dedupe(pages) -> dict[str, dict]:
    """Id -> newest version among the pages (later pages win ties: they were read later)."""
    out: dict[str, dict] = {}
    for page in pages:
        for obj in page.objects:
            out[obj["Id"]] = obj
    return out
