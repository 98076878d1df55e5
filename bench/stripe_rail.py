"""Stripe in the benchmark: its floor, our extract + log, incremental syncs by events, and memory at two sizes.

The Stripe sandbox is a window on the QBO sandbox the benchmark already serves (same world, same
clock): each bench company gets one connected account, whose charges, refunds, disputes, payouts
and balance transactions follow that company's card payments. It is served over loopback HTTP by
the benchmark's process, like the QBO sandbox, once the QBO phases are done (they run exactly as
without Stripe).

- Floor: one `StripeClient` per tenant lists every page of the six entities and parses it
  (the client's own `json.loads`); ids counted, nothing stored.
- Ours: what each Stripe log asset runs, without Dagster: entity by entity, `lib.sync.EntitySync` for
  every tenant, the next tenants' reads started ahead as the assets start them, into a ledger of its own
  (`stripe_ledger.duckdb`), opened as `LedgerDuckDB.ledger()` opens one.
- Incremental: nothing changed, then the clock moved by a small and a larger step (the QBO
  sandbox's admin endpoint), one sync of everything after each; events read, requests, rows logged.
- Memory: the same extract for one account alone at N and at K x N objects per company, each in
  its own process (peak RSS from the kernel, as every contender's), on a sandbox of their own.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from bench import rail_sandbox
from bench.rail_sandbox import STEPS, MemorySizes, advance, ledger, memory_companies, rss_mb, served
from bench.workload import REALM_BASE, Paths, Workload
from ledger_pipeline.rails.qbo.sandbox import CompanySpec, QboSandbox
from ledger_pipeline.rails.stripe.client import StripeClient
from ledger_pipeline.rails.stripe.entities import ENTITIES
from ledger_pipeline.rails.stripe.sandbox import PLATFORM_KEY, StripeAccount, StripeSandbox
from ledger_pipeline.rails.stripe.sandbox import server as stripe_server
from ledger_pipeline.rails.stripe.sandbox.spec import API_VERSION, account_id_for  # the version the resource pins
from ledger_pipeline.rails.stripe.rail import NAME
from ledger_pipeline.rails.stripe.sync import StripeSession, listed

ACCOUNT_WORD = "Bench"  # acct_1Bench<hash of the realm>
MEMORY_SCALE = 4  # the memory comparison: one account at N and at MEMORY_SCALE x N objects per QBO company
MEMORY_MAX_OBJECTS = 250_000  # larger companies are not built for it (the large run: --stripe-memory-scale 0)
MEMORY_REALM_BASE = REALM_BASE + 1_000  # the memory sandbox's own companies, apart from the tenants'


def accounts(workload: Workload) -> list[tuple[str, str]]:
    """(tenant id, connected account id) of every bench tenant: one account per QBO company."""
    return [(t, account_id_for(spec.realm_id, ACCOUNT_WORD)) for t, spec in zip(workload.tenant_ids,
                                                                                    workload.companies)]


def _sandbox(qbo: QboSandbox, specs: tuple[CompanySpec, ...]) -> StripeSandbox:
    accts = [StripeAccount(account_id_for(s.realm_id, ACCOUNT_WORD), s.realm_id, s.name) for s in specs]
    return StripeSandbox(qbo, accts, rate_limit=None)


def _warm(sandbox: StripeSandbox) -> None:
    """Read every list once in-process: the account indexes and render caches are built for nobody's clock."""
    for account_id in sandbox.accounts:
        with StripeClient(account_id, PLATFORM_KEY, base_url="http://stripe.invalid",
                          transport=sandbox.transport()) as client:
            for entity in ENTITIES:
                for _ in client.pages(entity.path):
                    pass


@contextmanager
def serve(qbo: QboSandbox, workload: Workload, warm: bool) -> Iterator[str]:
    """The bench tenants' Stripe accounts over the QBO sandbox being served, on 127.0.0.1; yields the URL."""
    with served(_sandbox(qbo, workload.companies), _warm if warm else None, stripe_server.start_in_thread) as url:
        yield url


@contextmanager
def serve_memory_sizes(workload: Workload, scale: int, warm: bool) -> Iterator[MemorySizes]:
    """A sandbox of its own (own clock) with a company of N and one of scale x N objects, Stripe served over it."""
    qbo, specs, built = memory_companies(workload, scale, MEMORY_REALM_BASE, "Bench Memory")
    pairs = [(f"mem{spec.size}", account_id_for(spec.realm_id, ACCOUNT_WORD)) for spec in specs]
    with served(_sandbox(qbo, specs), _warm if warm else None, stripe_server.start_in_thread) as url:
        yield MemorySizes(url, pairs[0], pairs[1], built)


def _client(account_id: str, url: str) -> StripeClient:
    """A client as `StripeResource.client` builds one for a sandbox tenant served over HTTP (same pinned version)."""
    return StripeClient(account_id, PLATFORM_KEY, base_url=url, stripe_version=API_VERSION)


# --- in the contender's process --------------------------------------------------------------------


def fetch_and_parse(tenants: list[tuple[str, str]], url: str) -> dict:
    """The floor: every list page of every entity of every account, fetched and parsed, ids counted."""
    counts: dict[str, dict[str, int]] = {}
    pages = 0
    started = time.perf_counter()
    for tenant_id, account_id in tenants:
        per_entity = counts[tenant_id] = {}
        with _client(account_id, url) as client:
            for entity in ENTITIES:
                if entity.per_payout:  # a list per paid payout: its floor is the rail's own reading of them
                    per_entity[entity.name] = len(listed(client, entity))
                    continue
                ids: set[str] = set()
                for page in client.pages(entity.path):
                    pages += 1
                    ids.update(obj["id"] for obj in page.objects)
                per_entity[entity.name] = len(ids)
    seconds = time.perf_counter() - started
    objects = sum(sum(c.values()) for c in counts.values())
    return {"seconds": round(seconds, 4), "objects": objects, "pages": pages, "per_tenant": counts}


class Requests:
    """Counts, in this process only, the Stripe client's GETs by endpoint and the events its feed yields."""

    def __init__(self) -> None:
        self.gets: Counter[str] = Counter()
        self.event_ids: set[str] = set()
        self.events_yielded = 0

    @contextmanager
    def counting(self) -> Iterator[Requests]:
        get, events = StripeClient._get, StripeClient.events

        def counted_get(client: StripeClient, path: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            self.gets[path.split("/", 1)[0]] += 1
            return get(client, path, *args, **kwargs)

        def counted_events(client: StripeClient, **kwargs):  # noqa: ANN003, ANN202
            for event in events(client, **kwargs):
                self.events_yielded += 1
                self.event_ids.add(event["id"])
                yield event

        StripeClient._get, StripeClient.events = counted_get, counted_events  # type: ignore[method-assign]
        try:
            yield self
        finally:
            StripeClient._get, StripeClient.events = get, events  # type: ignore[method-assign]

    def reset(self) -> None:
        self.gets.clear()
        self.event_ids.clear()
        self.events_yielded = 0


def sync_all(conn: duckdb.DuckDBPyConnection, tenants: list[tuple[str, str]], url: str, run_id: str) -> dict:
    """Our extract + log of every entity of every account as the log assets run it (bench/rail_sandbox.py)."""
    accounts_of = dict(tenants)

    def session_for(tenant_id: str) -> StripeSession:
        return StripeSession(_client(accounts_of[tenant_id], url))

    return rail_sandbox.sync_all(conn, NAME, ENTITIES, list(accounts_of), session_for, run_id)


def log_rows(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute("select count(*) from raw.entity_log where rail = 'stripe'").fetchone()[0]



def initial(tenants: list[tuple[str, str]], url: str, ledger_path: Path) -> dict:
    """The first sync of every tenant into a fresh ledger (the memory runs: one tenant)."""
    with ledger(ledger_path) as conn:
        rss_before = rss_mb()
        done = sync_all(conn, tenants, url, "bench-stripe-initial")
        return done | {"log_rows": log_rows(conn), "rss_before_mb": rss_before}


def incremental(tenants: list[tuple[str, str]], url: str, qbo_url: str, ledger_path: Path) -> dict:
    """After the initial sync: a sync with nothing changed, then one after each clock step; per event costs."""
    steps = []
    with ledger(ledger_path) as conn, Requests().counting() as requests:
        for label, delta in STEPS:
            if delta:
                advance(qbo_url, delta)
            requests.reset()
            rows_before = log_rows(conn)
            done = sync_all(conn, tenants, url, f"bench-stripe-{label.replace(' ', '-')}")
            events = len(requests.event_ids)
            steps.append(done | {
                "step": label, "clock_step_hours": delta.total_seconds() / 3600, "events": events,
                "events_fetched": requests.events_yielded, "requests": sum(requests.gets.values()),
                "requests_by_endpoint": dict(sorted(requests.gets.items())),
                "log_rows_added": log_rows(conn) - rows_before,
                "ms_per_event": round(done["seconds"] / events * 1000, 2) if events else None,
            })  # fmt: skip
    fixed = steps[0]["seconds"]
    for step in steps[1:]:  # beyond what a sync with nothing changed costs
        extra = step["seconds"] - fixed
        step["ms_per_event_beyond_nothing_changed"] = round(extra / step["events"] * 1000, 2) if step["events"] \
            else None
    return {"steps": steps}


def stripe_ledger(paths: Paths) -> Path:
    return paths.root / "stripe_ledger.duckdb"


# --- in the benchmark's process ----------------------------------------------------------------------


def run_phases(bench, warm: bool, memory_scale: int) -> None:  # noqa: ANN001 - bench.run.Bench (imports this)
    """Stripe's floor, initial sync, incremental steps and memory runs, each a contender of its own, recorded."""
    rail_sandbox.run_phases(bench, NAME, "Stripe", accounts(bench.workload), stripe_ledger(bench.paths), serve,
                            serve_memory_sizes, warm, memory_scale, MEMORY_MAX_OBJECTS)
