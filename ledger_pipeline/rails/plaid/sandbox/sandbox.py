"""PlaidSandbox: an offline Plaid API, in-process behind an httpx transport.

It is a window on the QBO sandbox's world: each item is one bank of one QBO company's business, on the QBO
sandbox's clock. Nothing is stored but faults, caches and the login switch: answers are a pure function of
(seed, item, instant). The login switch lives in the QBO sandbox's shared state, so every process sharing that
state sees it (a test may flip it while a Dagster run reads in another process); faults stay in this process.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from typing import Iterator

import httpx

from ledger_pipeline.rails.qbo.sandbox import QboSandbox
from ledger_pipeline.sandbox_kit.faults import FaultBoard
from ledger_pipeline.sandbox_kit.throttle import SlidingWindow

from .auth import access_token_for
from .bank import ItemCache
from .feed import Feed
from .spec import DEMO_ITEMS, PLAID_RATE_LIMIT, Fault, PlaidItem, RateLimit, plaid_id


class SandboxTransport(httpx.BaseTransport):
    """httpx transport answering every request from a PlaidSandbox, without any socket."""

    def __init__(self, sandbox: PlaidSandbox) -> None:
        self.sandbox = sandbox

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self.sandbox.handle(request)


class PlaidSandbox:
    """A deterministic emulator of Plaid's /item/get, /accounts/get, /accounts/balance/get and /transactions/sync."""

    def __init__(self, qbo: QboSandbox, items: tuple[PlaidItem, ...] | list[PlaidItem] = DEMO_ITEMS,
                 *, rate_limit: RateLimit | None = PLAID_RATE_LIMIT) -> None:
        self.qbo = qbo
        self.items: dict[str, PlaidItem] = {}
        for item in items:
            if item.item_id in self.items:
                raise ValueError(f"duplicate Plaid item id {item.item_id}")
            if item.realm_id not in qbo.specs:
                raise ValueError(f"Plaid item {item.item_id}: no QBO company {item.realm_id}")
            self.items[item.item_id] = item
        self._tokens = {access_token_for(item_id): item_id for item_id in self.items}
        self.limiter = SlidingWindow(None if rate_limit is None else rate_limit.per_item_per_minute, 60.0)
        self.faults = FaultBoard()
        self._caches: dict[str, ItemCache] = {}
        self._feeds: dict[str, tuple[tuple, Feed]] = {}
        self._requests = itertools.count(1)

    def __repr__(self) -> str:
        return f"PlaidSandbox(items={list(self.items)}, now={self.qbo.now.isoformat()})"

    def item(self, item_id: str) -> PlaidItem:
        try:
            return self.items[item_id]
        except KeyError:
            raise ValueError(f"unknown Plaid sandbox item {item_id!r}; known: {', '.join(self.items)}") from None

    def item_for_token(self, token: str) -> PlaidItem | None:
        item_id = self._tokens.get(token)
        return None if item_id is None else self.items[item_id]

    # --- faults and the login switch --------------------------------------------------------------
    def inject(self, item_id: str, fault: Fault) -> None:
        self.item(item_id)
        self.faults.inject(item_id, fault)

    def clear_faults(self, item_id: str | None = None) -> None:
        self.faults.clear(item_id)

    def require_login(self, item_id: str) -> None:
        """The bank wants the user to log in again: ITEM_LOGIN_REQUIRED (but /item/get) until `relogin`."""
        self.item(item_id)
        self.qbo.store.mutate(lambda s: s.plaid_login_required.add(item_id))

    def relogin(self, item_id: str) -> None:
        """The user went through Link's update mode: the item reads again."""
        self.item(item_id)
        self.qbo.store.mutate(lambda s: s.plaid_login_required.discard(item_id))

    def login_required(self, item_id: str) -> bool:
        self.item(item_id)
        return item_id in self.qbo.store.view().plaid_login_required

    # --- the world ----------------------------------------------------------------------------------
    @contextmanager
    def world(self, item_id: str) -> Iterator[tuple[Feed, int]]:
        """The item's feed and the clock (epoch seconds), with the QBO sandbox's lock held."""
        item = self.item(item_id)
        with self.qbo.lock:
            now_us = self.qbo.store.view().clock_us
            company = self.qbo.searcher(item.realm_id, now_us).company
            now = now_us // 1_000_000
            tables = company.books.tables
            stamp = (company.books, now, tables["Payment"].version, tables["BillPayment"].version)
            cached = self._feeds.get(item_id)
            if cached is None or cached[0][0] is not stamp[0] or cached[0][1:] != stamp[1:]:
                cache = self._cache(item)
                feed = Feed(cache.movements(company, now), now, cache.txn_id)
                self._feeds[item_id] = (stamp, feed)
            else:
                feed = cached[1]
            yield feed, now

    def _cache(self, item: PlaidItem) -> ItemCache:
        cache = self._caches.get(item.item_id)
        if cache is None:
            card = next((other for other in self.items.values() if other.realm_id == item.realm_id
                         and other.account("credit card") is not None and other is not item), None)
            cache = self._caches[item.item_id] = ItemCache(self.qbo.seed, item, card)
        return cache

    # --- HTTP ---------------------------------------------------------------------------------------
    def transport(self) -> httpx.BaseTransport:
        return SandboxTransport(self)

    def next_request_id(self) -> str:
        """Plaid-shaped (15 letters and digits) and deterministic: the n-th request of a sandbox."""
        return plaid_id("request", next(self._requests))[:15]

    def handle(self, request: httpx.Request) -> httpx.Response:
        from .api import handle  # api imports this module

        return handle(self, request)
