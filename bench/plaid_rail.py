"""Plaid in the benchmark: its floor, our extract + log, incremental syncs after clock steps, and memory at two sizes.

The Plaid sandbox is the bank side of the QBO sandbox the benchmark already serves (same world, same clock):
each bench company has two items, First Platypus Bank (checking and savings) and Tartan Bank (a card), whose
transactions follow that company's money. It is served over loopback HTTP by the benchmark's process, like the
QBO and Stripe sandboxes, after the QBO phases and Stripe's.

- Floor: one `PlaidClient` per tenant (the pipeline's client, `MAX_COUNT` transactions a page) reads /item/get,
  /accounts/get and every /transactions/sync page from an empty cursor of each item, parsed by the client; ids
  counted, nothing stored.
- Ours: what the Plaid log assets run, without Dagster: entity by entity in the assets' order (item, then
  transaction, then account: the accounts step waits for the transactions step), `lib.sync.syncs_ahead` over the
  tenants with a `PlaidSession` each, into a ledger of its own (`plaid_ledger.duckdb`).
- Incremental: nothing changed, then the shared clock moved 1 day and 7 days (the QBO sandbox's admin
  endpoint), one sync of everything after each. Plaid has no events: the changes are the transactions
  /transactions/sync sends as added, modified or removed, and the rows they log.
- Memory: the same extract for one tenant alone at N and at K x N objects per company, each in its own
  process, on a sandbox of its own.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import rail_sandbox
from bench.rail_sandbox import MemorySizes, memory_companies, served
from bench.workload import REALM_BASE, Paths, Workload
from ledger_pipeline.rails.plaid.client import PlaidClient
from ledger_pipeline.rails.plaid.entities import ACCOUNT, ITEM, TRANSACTION
from ledger_pipeline.rails.plaid.rail import NAME, PlaidConnection, PlaidItemLink
from ledger_pipeline.rails.plaid.sandbox import CLIENT_ID, SECRET, PlaidSandbox, access_token_for
from ledger_pipeline.rails.plaid.sandbox import server as plaid_server
from ledger_pipeline.rails.plaid.sandbox.spec import bank_item, card_item
from ledger_pipeline.rails.plaid.sync import PlaidSession
from ledger_pipeline.rails.qbo.sandbox import CompanySpec, QboSandbox

ORDER = (ITEM, TRANSACTION, ACCOUNT)  # the Dagster assets' order: raw/plaid_accounts depends on the transactions
MEMORY_SCALE = 4  # the memory comparison: one tenant at N and at MEMORY_SCALE x N objects per QBO company
MEMORY_MAX_OBJECTS = 250_000  # larger companies are not built for it (the large run: --plaid-memory-scale 0)
MEMORY_REALM_BASE = REALM_BASE + 2_000  # the memory sandbox's own companies, apart from the tenants' (and Stripe's)

Tenant = tuple[str, list[str]]  # (tenant id, its item ids)


def _items(realm_id: str) -> tuple:
    return bank_item(realm_id), card_item(realm_id)


def tenants(workload: Workload) -> list[Tenant]:
    """(tenant id, item ids) of every bench tenant: a bank item and a card item per QBO company."""
    return [(t, [item.item_id for item in _items(spec.realm_id)]) for t, spec in zip(workload.tenant_ids,
                                                                                      workload.companies)]


def _sandbox(qbo: QboSandbox, specs: tuple[CompanySpec, ...]) -> PlaidSandbox:
    return PlaidSandbox(qbo, [item for s in specs for item in _items(s.realm_id)], rate_limit=None)


def _client(item_ids: list[str], url: str, transport=None) -> PlaidClient:  # noqa: ANN001
    """A client as `PlaidResource.client` builds one for a sandbox tenant served over HTTP."""
    tokens = {item_id: access_token_for(item_id) for item_id in item_ids}
    return PlaidClient(CLIENT_ID, SECRET, tokens, base_url=url, transport=transport)


def _read_item(client: PlaidClient, item_id: str) -> tuple[dict, list[dict], list[dict], list[dict], int]:
    """One item read whole: its /item/get, /accounts/get, and every /transactions/sync page from an empty cursor
    (the added and modified transactions, the removed ones, and the number of pages)."""
    item, accounts = client.item(item_id), client.accounts(item_id)
    changed: list[dict] = []
    removed: list[dict] = []
    cursor, pages = "", 0
    while True:
        page = client.transactions_sync(item_id, cursor)
        pages += 1
        changed += page.added
        changed += page.modified
        removed += page.removed
        cursor = page.next_cursor
        if not page.has_more:
            return item, accounts, changed, removed, pages


def _warm(sandbox: PlaidSandbox) -> None:
    """Read every item whole once in-process: the item caches and feeds are built for nobody's clock."""
    with _client(list(sandbox.items), "http://plaid.invalid", transport=sandbox.transport()) as client:
        for item_id in sandbox.items:
            _read_item(client, item_id)


@contextmanager
def serve(qbo: QboSandbox, workload: Workload, warm: bool) -> Iterator[str]:
    """The bench tenants' Plaid items over the QBO sandbox being served, on 127.0.0.1; yields the URL."""
    with served(_sandbox(qbo, workload.companies), _warm if warm else None, plaid_server.start_in_thread) as url:
        yield url


@contextmanager
def serve_memory_sizes(workload: Workload, scale: int, warm: bool) -> Iterator[MemorySizes]:
    """A sandbox of its own (own clock) with a company of N and one of scale x N objects, Plaid served over it."""
    qbo, specs, built = memory_companies(workload, scale, MEMORY_REALM_BASE, "Bench Plaid Memory")
    pairs = [(f"mem{spec.size}", [item.item_id for item in _items(spec.realm_id)]) for spec in specs]
    with served(_sandbox(qbo, specs), _warm if warm else None, plaid_server.start_in_thread) as url:
        yield MemorySizes(url, pairs[0], pairs[1], built)


# --- in the contender's process --------------------------------------------------------------------


def fetch_and_parse(tenants: list[Tenant], url: str) -> dict:
    """The floor: every item's /item/get, /accounts/get and /transactions/sync pages, fetched and parsed, ids
    counted (transactions: the live ones, what a first sync sends as added or modified and not removed)."""
    counts: dict[str, dict[str, int]] = {}
    pages = 0
    started = time.perf_counter()
    for tenant_id, item_ids in tenants:
        items: set[str] = set()
        accounts: set[str] = set()
        live: set[str] = set()
        with _client(item_ids, url) as client:
            for item_id in item_ids:
                item, listed, changed, removed, sync_pages = _read_item(client, item_id)
                pages += 2 + sync_pages
                items.add(item["item_id"])
                accounts.update(a["account_id"] for a in listed)
                live.update(t["transaction_id"] for t in changed)
                live.difference_update(r["transaction_id"] for r in removed)
        counts[tenant_id] = {ITEM.name: len(items), ACCOUNT.name: len(accounts), TRANSACTION.name: len(live)}
    seconds = time.perf_counter() - started
    objects = sum(sum(c.values()) for c in counts.values())
    return {"seconds": round(seconds, 4), "objects": objects, "pages": pages, "per_tenant": counts}


class Requests:
    """Counts, in this process only, the Plaid client's POSTs by endpoint and the transactions /transactions/sync
    sent as added, modified and removed: Plaid's changes are what that feed sends."""

    def __init__(self) -> None:
        self.posts: Counter[str] = Counter()
        self.transactions: Counter[str] = Counter()

    @contextmanager
    def counting(self) -> Iterator[Requests]:
        post, sync = PlaidClient._post, PlaidClient.transactions_sync

        def counted_post(client: PlaidClient, item_id: str, endpoint: str, payload: dict):  # noqa: ANN202
            self.posts[endpoint] += 1
            return post(client, item_id, endpoint, payload)

        def counted_sync(client: PlaidClient, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            page = sync(client, *args, **kwargs)
            for name in ("added", "modified", "removed"):
                self.transactions[name] += len(getattr(page, name))
            return page

        PlaidClient._post, PlaidClient.transactions_sync = counted_post, counted_sync  # type: ignore[method-assign]
        try:
            yield self
        finally:
            PlaidClient._post, PlaidClient.transactions_sync = post, sync  # type: ignore[method-assign]

    def reset(self) -> None:
        self.posts.clear()
        self.transactions.clear()

    def figures(self) -> dict:
        return {"transactions": dict(sorted(self.transactions.items())), "requests": sum(self.posts.values()),
                "requests_by_endpoint": dict(sorted(self.posts.items()))}


def _syncs(tenants: list[Tenant], url: str) -> rail_sandbox.Sync:
    """Our extract + log of every tenant's items in the assets' order (the accounts step after the transactions)."""
    items_of = dict(tenants)

    def session_for(tenant_id: str) -> PlaidSession:
        item_ids = items_of[tenant_id]
        return PlaidSession(_client(item_ids, url), PlaidConnection(tuple(PlaidItemLink(i) for i in item_ids)))

    return lambda conn, run_id: rail_sandbox.sync_all(conn, NAME, ORDER, list(items_of), session_for, run_id)


def initial(tenants: list[Tenant], url: str, ledger_path: Path) -> dict:
    """The first sync of every tenant into a fresh ledger (the memory runs: one tenant)."""
    return rail_sandbox.initial(ledger_path, NAME, _syncs(tenants, url))


def incremental(tenants: list[Tenant], url: str, qbo_url: str, ledger_path: Path) -> dict:
    """After the initial sync: a sync with nothing changed, then one after each clock step; per logged row costs."""
    return rail_sandbox.incremental(ledger_path, NAME, qbo_url, _syncs(tenants, url), Requests())


def plaid_ledger(paths: Paths) -> Path:
    return paths.root / "plaid_ledger.duckdb"


# --- in the benchmark's process ----------------------------------------------------------------------


def run_phases(bench, warm: bool, memory_scale: int) -> None:  # noqa: ANN001 - bench.run.Bench (imports this)
    """Plaid's floor, initial sync, incremental steps and memory runs, each a contender of its own, recorded."""
    rail_sandbox.run_phases(bench, NAME, "Plaid", tenants(bench.workload), plaid_ledger(bench.paths), serve,
                            serve_memory_sizes, warm, memory_scale, MEMORY_MAX_OBJECTS)
