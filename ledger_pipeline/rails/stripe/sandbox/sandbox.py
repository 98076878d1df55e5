"""StripeSandbox: an offline Stripe Connect platform, in-process behind an httpx transport.

It is a window on the QBO sandbox's world: one connected account per QBO company, whose card money
(ledger_pipeline.world) follows that company's card payments, on the QBO sandbox's clock. Nothing is
stored but faults and indexes: answers are a pure function of (seed, account, instant).
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from typing import Iterator

import httpx

from ledger_pipeline.rails.qbo.sandbox import QboSandbox
from ledger_pipeline.sandbox_kit.faults import FaultBoard
from ledger_pipeline.sandbox_kit.throttle import SlidingWindow

from .index import AccountIndex
from .render import View
from .spec import DEMO_ACCOUNTS, STRIPE_RATE_LIMIT, Fault, RateLimit, StripeAccount


class SandboxTransport(httpx.BaseTransport):
    """httpx transport answering every request from a StripeSandbox, without any socket."""

    def __init__(self, sandbox: StripeSandbox) -> None:
        self.sandbox = sandbox

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self.sandbox.handle(request)


class StripeSandbox:
    """A deterministic emulator of Stripe API v1 for a Connect platform reading its connected accounts."""

    def __init__(self, qbo: QboSandbox, accounts: tuple[StripeAccount, ...] | list[StripeAccount] = DEMO_ACCOUNTS,
                 *, rate_limit: RateLimit | None = STRIPE_RATE_LIMIT) -> None:
        self.qbo = qbo
        self.accounts: dict[str, StripeAccount] = {}
        for account in accounts:
            if account.account_id in self.accounts:
                raise ValueError(f"duplicate Stripe account id {account.account_id}")
            if account.realm_id not in qbo.specs:
                raise ValueError(f"Stripe account {account.account_id}: no QBO company {account.realm_id}")
            self.accounts[account.account_id] = account
        self.limiter = SlidingWindow(None if rate_limit is None else rate_limit.per_second, 1.0)
        self.faults = FaultBoard()
        self._indexes: dict[str, AccountIndex] = {}
        self._static: dict[str, dict] = {}  # account -> render cache (static parts are the same in every replay)
        self._requests = itertools.count(1)

    def __repr__(self) -> str:
        return f"StripeSandbox(accounts={list(self.accounts)}, now={self.qbo.now.isoformat()})"

    def account(self, account_id: str) -> StripeAccount:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise ValueError(f"unknown Stripe sandbox account {account_id!r}; known: {', '.join(self.accounts)}") \
                from None

    # --- faults -------------------------------------------------------------------------------
    def inject(self, account_id: str, fault: Fault) -> None:
        self.account(account_id)
        self.faults.inject(account_id, fault)

    def clear_faults(self, account_id: str | None = None) -> None:
        self.faults.clear(account_id)

    # --- the world ----------------------------------------------------------------------------
    @contextmanager
    def world(self, account_id: str) -> Iterator[tuple[View, AccountIndex, int]]:
        """The account's view, index and the clock (epoch seconds), with the QBO sandbox's lock held."""
        account = self.account(account_id)
        with self.qbo.lock:
            now_us = self.qbo.store.view().clock_us
            company = self.qbo.searcher(account.realm_id, now_us).company
            view = View(account_id, company, self._static.setdefault(account_id, {}))
            index = self._indexes.get(account_id)
            if index is None or index.flows is not company.world:
                index = self._indexes[account_id] = AccountIndex(view)
            else:
                index.refresh(view)
            yield view, index, now_us // 1_000_000

    # --- HTTP ---------------------------------------------------------------------------------
    def transport(self) -> httpx.BaseTransport:
        return SandboxTransport(self)

    def next_request_number(self) -> int:
        return next(self._requests)

    def handle(self, request: httpx.Request) -> httpx.Response:
        from .api import handle  # api imports this module

        return handle(self, request)
