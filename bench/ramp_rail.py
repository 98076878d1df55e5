"""Ramp in the benchmark: its floor, our extract + log, incremental syncs after clock steps, and memory at two sizes.

The Ramp sandbox is the corporate card and bill-pay side of the QBO sandbox the benchmark already serves (same
world, same clock): each bench company has one Ramp business, whose card spend, bills and reimbursements follow
that company's books. It is served over loopback HTTP by the benchmark's process, after Plaid's phases.

Ramp's app tokens rotate on every refresh and the sandbox keeps the current generation in the QBO sandbox's
state, so every Ramp contender of a run keeps its tokens in one folder (`state/ramp_tokens`, as the resource
does): the first one starts from the business's first refresh token, the next ones from what it left.

- Floor: one `RampClient` per tenant (the pipeline's client, 100 objects a page) reads every set of every entity
  whole (the default list and each set it hides), parsed by the client; ids counted, nothing stored.
- Ours: what the Ramp log assets run, without Dagster: entity by entity in their order, `lib.sync.syncs_ahead`
  over the tenants with a `RampSession` each, into a ledger of its own (`ramp_ledger.duckdb`).
- Incremental: nothing changed, then the shared clock moved 1 day and 7 days, one sync of everything after each.
  Ramp has no change feed: windows and whole lists are read again, and only what differs is logged; the
  requests and objects read say what that costs beside the rows logged.
- Memory: the same extract for one tenant alone at N and at K x N objects per company, each in its own process,
  on a sandbox of its own.
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
from ledger_pipeline.lib.oauth import OAuthCredentials
from ledger_pipeline.lib.token_store import TokenStore
from ledger_pipeline.rails.qbo.sandbox import CompanySpec, QboSandbox
from ledger_pipeline.rails.ramp.client import RampClient
from ledger_pipeline.rails.ramp.entities import ENTITIES, RampEntity
from ledger_pipeline.rails.ramp.rail import NAME, RampConnection
from ledger_pipeline.rails.ramp.sandbox import (CLIENT_ID, CLIENT_SECRET, SANDBOX_BASE_URL, RampSandbox,
                                                business_for, initial_refresh_token)
from ledger_pipeline.rails.ramp.sandbox import server as ramp_server
from ledger_pipeline.rails.ramp.sync import RampSession
from ledger_pipeline.rails.ramp.token_store import FileTokenStore, MemoryTokenStore

MEMORY_MAX_OBJECTS = 250_000  # larger companies are not built for it (the large run: --ramp-memory-scale 0)
MEMORY_REALM_BASE = REALM_BASE + 3_000  # the memory sandbox's own companies, apart from the tenants' and Plaid's

Tenant = tuple[str, str]  # (tenant id, business id)


def tenants(workload: Workload) -> list[Tenant]:
    """(tenant id, business id) of every bench tenant: the Ramp business of its QBO company."""
    return [(t, business_for(spec.realm_id, spec.name).business_id) for t, spec in zip(workload.tenant_ids,
                                                                                       workload.companies)]


def _sandbox(qbo: QboSandbox, specs: tuple[CompanySpec, ...]) -> RampSandbox:
    return RampSandbox(qbo, [business_for(s.realm_id, s.name) for s in specs], rate_limit=None)


def _client(business_id: str, url: str, tokens: TokenStore, transport=None) -> RampClient:  # noqa: ANN001
    """A client as `RampResource.client` builds one for a sandbox tenant served over HTTP: the app's keys and the
    business's first refresh token, the rotated ones in `tokens`."""
    credentials = OAuthCredentials(CLIENT_ID, CLIENT_SECRET, initial_refresh_token(business_id))
    return RampClient(business_id, credentials, tokens, base_url=url, transport=transport)


def token_dir(paths: Paths) -> Path:
    """Where every Ramp contender of a run keeps the business's rotated tokens (each refresh retires the last)."""
    return paths.state_dir / "ramp_tokens"


def _whole(client: RampClient, entity: RampEntity) -> Iterator[list[dict]]:
    """Every page of the entity's default list and of each set that list hides (terminated cards, declined
    transactions, archived bills): all a first sync logs."""
    for params in [{}] + [{name: value} for name, value in entity.hidden]:
        yield from client.pages(entity.path, params)


def _warm(sandbox: RampSandbox) -> None:
    """Read every set whole once in-process: the business caches are built for nobody's clock. Then forget the
    token rotation this made, so the contenders start from the first refresh token as a new deployment does."""
    for business_id in sandbox.businesses:
        with _client(business_id, SANDBOX_BASE_URL, MemoryTokenStore(), sandbox.transport()) as client:
            for entity in ENTITIES:
                for _ in _whole(client, entity):
                    pass
        sandbox.reconnect(business_id)


@contextmanager
def serve(qbo: QboSandbox, workload: Workload, warm: bool) -> Iterator[str]:
    """The bench tenants' Ramp businesses over the QBO sandbox being served, on 127.0.0.1; yields the URL."""
    with served(_sandbox(qbo, workload.companies), _warm if warm else None, ramp_server.start_in_thread) as url:
        yield url


@contextmanager
def serve_memory_sizes(workload: Workload, scale: int, warm: bool) -> Iterator[MemorySizes]:
    """A sandbox of its own (own clock) with a company of N and one of scale x N objects, Ramp served over it."""
    qbo, specs, built = memory_companies(workload, scale, MEMORY_REALM_BASE, "Bench Ramp Memory")
    pairs = [(f"mem{spec.size}", business_for(spec.realm_id, spec.name).business_id) for spec in specs]
    with served(_sandbox(qbo, specs), _warm if warm else None, ramp_server.start_in_thread) as url:
        yield MemorySizes(url, pairs[0], pairs[1], built)


# --- in the contender's process --------------------------------------------------------------------


def fetch_and_parse(tenants: list[Tenant], url: str, tokens: Path) -> dict:
    """The floor: every set of every entity of every business read whole, fetched and parsed, ids counted (an
    object in two sets, a card both terminated and never activated, counts once, as the log keeps it once)."""
    counts: dict[str, dict[str, int]] = {}
    pages = 0
    started = time.perf_counter()
    for tenant_id, business_id in tenants:
        per_entity = counts[tenant_id] = {}
        with _client(business_id, url, FileTokenStore(tokens)) as client:
            for entity in ENTITIES:
                ids: set[str] = set()
                for page in _whole(client, entity):
                    pages += 1
                    ids.update(obj["id"] for obj in page)
                per_entity[entity.name] = len(ids)
    seconds = time.perf_counter() - started
    objects = sum(sum(c.values()) for c in counts.values())
    return {"seconds": round(seconds, 4), "objects": objects, "pages": pages, "per_tenant": counts}


class Requests:
    """Counts, in this process only, the Ramp client's GETs by endpoint and the objects they brought: without a
    change feed, a sync reads windows and whole lists again, and the objects read beside the rows logged show it."""

    def __init__(self) -> None:
        self.gets: Counter[str] = Counter()
        self.objects = 0

    @contextmanager
    def counting(self) -> Iterator[Requests]:
        get = RampClient._get

        def counted_get(client: RampClient, url: str, query, endpoint: str) -> dict:  # noqa: ANN001
            body = get(client, url, query, endpoint)
            self.gets[endpoint] += 1
            data = body.get("data")
            self.objects += len(data) if isinstance(data, list) else 1
            return body

        RampClient._get = counted_get  # type: ignore[method-assign]
        try:
            yield self
        finally:
            RampClient._get = get  # type: ignore[method-assign]

    def reset(self) -> None:
        self.gets.clear()
        self.objects = 0

    def figures(self) -> dict:
        return {"requests": sum(self.gets.values()), "requests_by_endpoint": dict(sorted(self.gets.items())),
                "objects_read": self.objects}


def _syncs(tenants: list[Tenant], url: str, tokens: Path) -> rail_sandbox.Sync:
    """Our extract + log of every tenant's business, entity by entity in the assets' order."""
    business_of = dict(tenants)

    def session_for(tenant_id: str) -> RampSession:
        business_id = business_of[tenant_id]
        return RampSession(_client(business_id, url, FileTokenStore(tokens)), RampConnection(business_id))

    return lambda conn, run_id: rail_sandbox.sync_all(conn, NAME, ENTITIES, list(business_of), session_for, run_id)


def initial(tenants: list[Tenant], url: str, tokens: Path, ledger_path: Path) -> dict:
    """The first sync of every tenant into a fresh ledger (the memory runs: one tenant)."""
    return rail_sandbox.initial(ledger_path, NAME, _syncs(tenants, url, tokens))


def incremental(tenants: list[Tenant], url: str, tokens: Path, qbo_url: str, ledger_path: Path) -> dict:
    """After the initial sync: a sync with nothing changed, then one after each clock step; per logged row costs."""
    return rail_sandbox.incremental(ledger_path, NAME, qbo_url, _syncs(tenants, url, tokens), Requests())


def ramp_ledger(paths: Paths) -> Path:
    return paths.root / "ramp_ledger.duckdb"


# --- in the benchmark's process ----------------------------------------------------------------------


def run_phases(bench, warm: bool, memory_scale: int) -> None:  # noqa: ANN001 - bench.run.Bench (imports this)
    """Ramp's floor, initial sync, incremental steps and memory runs, each a contender of its own, recorded."""
    rail_sandbox.run_phases(bench, NAME, "Ramp", tenants(bench.workload), ramp_ledger(bench.paths), serve,
                            serve_memory_sizes, warm, memory_scale, MEMORY_MAX_OBJECTS)
