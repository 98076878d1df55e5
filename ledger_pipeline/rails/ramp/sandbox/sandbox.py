"""RampSandbox: an offline Ramp Developer API, in-process behind an httpx transport.

It is a window on the QBO sandbox's world: each business is the card and bill-pay side of one QBO company's
business, on the QBO sandbox's clock. Nothing is stored but faults and caches: answers are a pure function of
(seed, business, instant). Refresh-token generations and revocations live in the QBO sandbox's shared state
(under `ramp:<business id>` keys, never a realm), so every process sharing that state agrees on which refresh
token is current; faults stay in this process.
"""

from __future__ import annotations

import hashlib
import itertools
from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

import httpx

from ledger_pipeline.rails.qbo.sandbox import QboSandbox
from ledger_pipeline.sandbox_kit.faults import FaultBoard
from ledger_pipeline.sandbox_kit.throttle import SlidingWindow

from .auth import client_credentials_for, refresh_token, same, state_key
from .sources import BusinessCache, RampView
from .spec import DEMO_BUSINESSES, RAMP_RATE_LIMIT, Fault, RampBusiness, RateLimit


class SandboxTransport(httpx.BaseTransport):
    """httpx transport answering every request from a RampSandbox, without any socket."""

    def __init__(self, sandbox: RampSandbox) -> None:
        self.sandbox = sandbox

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self.sandbox.handle(request)


class RampSandbox:
    """A deterministic emulator of Ramp's token endpoint and its read lists (see docs/sandbox.md, Ramp)."""

    def __init__(self, qbo: QboSandbox, businesses: tuple[RampBusiness, ...] | list[RampBusiness] = DEMO_BUSINESSES,
                 *, rate_limit: RateLimit | None = RAMP_RATE_LIMIT) -> None:
        self.qbo = qbo
        self.businesses: dict[str, RampBusiness] = {}
        for business in businesses:
            if business.business_id in self.businesses:
                raise ValueError(f"duplicate Ramp business id {business.business_id}")
            if business.realm_id not in qbo.specs:
                raise ValueError(f"Ramp business {business.business_id}: no QBO company {business.realm_id}")
            self.businesses[business.business_id] = business
        self._clients = {client_credentials_for(b)[0]: b for b in self.businesses}
        limit = rate_limit or RateLimit(None)
        self.limiter = SlidingWindow(limit.requests, limit.seconds)
        self.faults = FaultBoard()
        self._caches: dict[str, BusinessCache] = {}
        self._views: dict[str, tuple[tuple, RampView]] = {}
        self._requests = itertools.count(1)

    def __repr__(self) -> str:
        return f"RampSandbox(businesses={list(self.businesses)}, now={self.now.isoformat()})"

    @property
    def now(self) -> datetime:
        """The simulated clock (the QBO sandbox's)."""
        return self.qbo.now

    def now_seconds(self) -> int:
        return self.qbo.store.view().clock_us // 1_000_000

    def business(self, business_id: str) -> RampBusiness:
        try:
            return self.businesses[business_id]
        except KeyError:
            known = ", ".join(self.businesses)
            raise ValueError(f"unknown Ramp sandbox business {business_id!r}; known: {known}") from None

    def business_of_client(self, client_id: str, secret: str) -> str | None:
        """The business whose own API client this is (client-credentials grant), or None."""
        business_id = self._clients.get(client_id)
        if business_id is None or not same(secret, client_credentials_for(business_id)[1]):
            return None
        return business_id

    # --- faults, tokens and revocation ----------------------------------------------------------------
    def inject(self, business_id: str, fault: Fault) -> None:
        self.business(business_id)
        self.faults.inject(business_id, fault)

    def clear_faults(self, business_id: str | None = None) -> None:
        self.faults.clear(business_id)

    def refresh_generation(self, business_id: str) -> int:
        self.business(business_id)
        return self.qbo.store.view().generations.get(state_key(business_id), 0)

    def current_refresh_token(self, business_id: str) -> str:
        """The refresh token the business's app connection accepts now (using it rotates it)."""
        return refresh_token(business_id, self.refresh_generation(business_id))

    def revoke(self, business_id: str) -> None:
        """The business disconnected the app: its refresh tokens answer invalid_grant and the access tokens issued
        to the app 401, until a code is exchanged again or `reconnect`. The business's own API client is not
        affected."""
        self.business(business_id)
        self.qbo.store.mutate(lambda s: s.revoked.add(state_key(business_id)))

    def reconnect(self, business_id: str) -> None:
        """Forget every rotation and the revocation: `initial_refresh_token` works again."""
        self.business(business_id)
        key = state_key(business_id)

        def forget(state) -> None:
            state.generations.pop(key, None)
            state.revoked.discard(key)
        self.qbo.store.mutate(forget)

    def is_revoked(self, business_id: str) -> bool:
        self.business(business_id)
        return state_key(business_id) in self.qbo.store.view().revoked

    # --- the world ----------------------------------------------------------------------------------
    @contextmanager
    def world(self, business_id: str) -> Iterator[RampView]:
        """The business as Ramp shows it at the clock, with the QBO sandbox's lock held."""
        business = self.business(business_id)
        with self.qbo.lock:
            now_us = self.qbo.store.view().clock_us
            company = self.qbo.searcher(business.realm_id, now_us).company
            tables = company.books.tables
            stamp = (company.books, now_us // 1_000_000, tables["Bill"].version, tables["BillPayment"].version,
                     tables["Vendor"].version)  # fmt: skip
            cached = self._views.get(business_id)
            if cached is None or cached[0][0] is not stamp[0] or cached[0][1:] != stamp[1:]:
                cache = self._caches.get(business_id)
                if cache is None:
                    cache = self._caches[business_id] = BusinessCache(self.qbo.seed, business)
                view = RampView(business, cache, company, now_us // 1_000_000)
                self._views[business_id] = (stamp, view)
            else:
                view = cached[1]
            yield view

    # --- HTTP ---------------------------------------------------------------------------------------
    def transport(self) -> httpx.BaseTransport:
        return SandboxTransport(self)

    def next_trace_id(self) -> str:
        """Deterministic: the n-th request of a sandbox, 32 hex digits."""
        return hashlib.blake2b(f"ramp trace|{next(self._requests)}".encode(), digest_size=16).hexdigest()

    def handle(self, request: httpx.Request) -> httpx.Response:
        from .api import handle  # api imports this module

        return handle(self, request)
