"""Fixtures for pipeline tests: a project in a temporary folder, synced through real Dagster runs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ledger_pipeline.defs.jobs import rails_selection
from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.defs.qbo.resources import QboResource, shared_sandbox
from ledger_pipeline.defs.plaid.resources import PlaidResource
from ledger_pipeline.defs.ramp.resources import RampResource
from ledger_pipeline.defs.stripe.resources import StripeResource
from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.lib import warehouse
from ledger_pipeline.lib.tenants import Tenant, TenantRegistry
from ledger_pipeline.rails.plaid.rail import PlaidConnection, PlaidItemLink
from ledger_pipeline.rails.qbo.rail import QboConnection
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES, QboSandbox
from ledger_pipeline.rails.stripe.rail import StripeConnection
from ledger_pipeline.rails.stripe.sandbox import DEMO_ACCOUNTS
from ledger_pipeline_tests.shared_ledger import (
    ACME_ONCE, BROKEN_ACME, BROKEN_COMPANIES, THREE_TENANTS, SharedLedger, built_once, open_project, start_building,
)
from ledger_pipeline_tests.storm.layout import fast_folder

TEST_SCALE = 0.25  # demo companies shrunk to keep each sync well under a second


@dataclass
class Project:
    """One isolated pipeline: DuckDB file, state dir, tenant registry, Dagster instance, sandbox."""

    root: Path
    instance: dg.DagsterInstance
    qbo: QboResource
    defs: dg.Definitions

    @property
    def db_path(self) -> Path:
        return self.root / "ledger.duckdb"

    @property
    def registry(self) -> TenantRegistry:
        return TenantRegistry(self.root / "tenants.json")

    @property
    def sandbox(self) -> QboSandbox:
        return shared_sandbox(self.qbo.state_path, self.qbo.sandbox_scale, self.qbo.sandbox_rate_limit)

    def add_tenant(self, tenant_id: str, company: int = 0, *, rails: tuple[str, ...] = ("qbo",)) -> str:
        """Register a tenant on demo company `company` with the rails named; returns its QBO realm id."""
        from ledger_pipeline.rails.plaid.sandbox import items_for
        from ledger_pipeline.rails.ramp.rail import RampConnection
        from ledger_pipeline.rails.ramp.sandbox import businesses_for

        realm = DEMO_COMPANIES[company].realm_id
        connections = {
            "qbo": QboConnection(realm), "stripe": StripeConnection(DEMO_ACCOUNTS[company].account_id),
            "plaid": PlaidConnection(tuple(PlaidItemLink(i.item_id) for i in items_for(realm))),
            "ramp": RampConnection(businesses_for(realm)[0].business_id),
        }  # fmt: skip
        self.registry.add(Tenant(tenant_id, *(connections[r] for r in rails)))
        self.instance.add_dynamic_partitions(TENANTS.name, [tenant_id])
        return realm

    def job(self) -> dg.JobDefinition:
        """The sync job over the rails the registered tenants connected: what a run over all of them needs."""
        job = self.defs.resolve_job_def("sync_tenants")
        rails = {rail for tenant in self.registry.load().values() for rail in tenant.rails}
        return job.get_subset(asset_selection=rails_selection(rails).resolve(self.defs.resolve_asset_graph()))

    def sync(self, tenant_id: str, *, run_config: dict | None = None, raise_on_error: bool = True, **kw):
        """The sync job for one tenant, over the rails it connected (defs/jobs.rails_selection): the steps of the
        others would only skip it."""
        job = self.defs.resolve_job_def("sync_tenants")
        tenant = self.registry.load().get(tenant_id)
        run_config = dict(run_config or {})
        if tenant is not None and tenant.rails and "asset_selection" not in kw:
            keys = rails_selection(tenant.rails).resolve(self.defs.resolve_asset_graph())
            job = job.get_subset(asset_selection=keys)
            ops = {node.name for node in job.graph.node_defs}  # config for the other rails' ops has no op here
            run_config["ops"] = {op: c for op, c in run_config.get("ops", {}).items() if op in ops}
        return job.execute_in_process(
            partition_key=tenant_id,
            instance=self.instance,
            run_config=run_config,
            raise_on_error=raise_on_error,
            **kw,
        )

    def with_qbo(self, **settings) -> Project:
        """The same project (files, instance, sandbox state) with other QBO client settings."""
        qbo = QboResource(
            **{"state_dir": self.qbo.state_dir, "sandbox_scale": TEST_SCALE, "sandbox_rate_limit": False, **settings}
        )
        defs = build_definitions(
            warehouse=self.defs.resources["warehouse"], qbo=qbo, tenants=self.defs.resources["tenants"],
            stripe=self.defs.resources["stripe"], plaid=self.defs.resources["plaid"], ramp=self.defs.resources["ramp"],
        )
        return Project(self.root, self.instance, qbo, defs)

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        conn = warehouse.connect(self.db_path, read_only=True)
        try:
            return conn.execute(sql, params or []).fetchall()
        finally:
            conn.close()

    def connect(self) -> duckdb.DuckDBPyConnection:
        return warehouse.connect(self.db_path)


@pytest.fixture(autouse=True)
def hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's (or the Makefile's) ledger, state, registry or Dagster home."""
    for name in ("DAGSTER_HOME", "LEDGER_DUCKDB_PATH", "LEDGER_STATE_DIR", "LEDGER_TENANTS_PATH"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fast_tmp_path(tmp_path: Path) -> Iterator[Path]:
    """A temporary folder in memory when the machine has room there (storm/layout.fast_folder), else tmp_path:
    for tests whose Dagster instance keeps its event log in SQLite files, which fsync every event."""
    with fast_folder(tmp_path) as folder:
        yield folder


def project_at(root: Path, instance: dg.DagsterInstance) -> Project:
    """The `project` fixture's project over the files in root: ledger, sandbox state and registry."""
    qbo = QboResource(state_dir=str(root / "state"), sandbox_scale=TEST_SCALE, sandbox_rate_limit=False)
    defs = build_definitions(
        warehouse=LedgerDuckDB(database=str(root / "ledger.duckdb")),
        qbo=qbo,
        tenants=TenantRegistryResource(path=str(root / "tenants.json")),
        stripe=StripeResource(state_dir=str(root / "state"), sandbox_scale=TEST_SCALE, sandbox_rate_limit=False),
        plaid=PlaidResource(state_dir=str(root / "state"), sandbox_scale=TEST_SCALE, sandbox_rate_limit=False),
        ramp=RampResource(state_dir=str(root / "state"), sandbox_scale=TEST_SCALE, sandbox_rate_limit=False),
    )
    return Project(root, instance, qbo, defs)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with dg.DagsterInstance.ephemeral() as instance:
        yield project_at(tmp_path, instance)


def _shared_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's temp folder, common to every xdist worker (each worker's basetemp is a child of it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


# The fixtures that start from a build of shared_ledger.py, and the build each needs.
SHARED_BUILDS = {"synced_acme": ACME_ONCE, "broken_acme": BROKEN_ACME, "shared_ledger": THREE_TENANTS}


def _builds_used(item: pytest.Item) -> set[str]:
    return {build for name, build in SHARED_BUILDS.items() if name in getattr(item, "fixturenames", ())}


def _uses_shared_ledger(item: pytest.Item) -> bool:
    return bool(_builds_used(item))


@pytest.fixture(scope="session", autouse=True)
def _shared_ledger_in_background(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Start the builds of shared_ledger.py the collected tests need as the session starts, off the test path."""
    builder = None
    needed = set().union(*(_builds_used(item) for item in request.session.items))
    if needed:
        recipes = [build for build in SHARED_BUILDS.values() if build in needed]  # acme-once first: one sync
        builder = start_building(_shared_folder(tmp_path_factory), recipes)
    yield
    if builder is not None:
        if request.session.shouldstop or request.session.shouldfail:
            builder.kill()  # stopping early (-x, Ctrl-C): the build is no longer needed
        try:
            builder.wait(timeout=600)
        except subprocess.TimeoutExpired:
            builder.kill()
            builder.wait()


@pytest.fixture(scope="session")
def shared_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedLedger]:
    """The synced three-tenant ledger of shared_ledger.py: built once per session, shared by the xdist workers.

    Open it read-only (`project.query`, the CLI's read commands); write only to `shared_ledger.copy(dest)`.
    """
    root, facts = built_once(_shared_folder(tmp_path_factory), THREE_TENANTS)
    before = hashlib.sha256((root / "ledger.duckdb").read_bytes()).hexdigest()
    with dg.DagsterInstance.ephemeral() as instance:
        yield SharedLedger(open_project(root, instance), facts)
    after = hashlib.sha256((root / "ledger.duckdb").read_bytes()).hexdigest()
    assert after == before, f"a test wrote to the shared ledger {root}: write to shared_ledger.copy(dest) instead"


@pytest.fixture
def shared_ledger_copy(shared_ledger: SharedLedger, tmp_path: Path) -> Iterator[Project]:
    """A writable copy of the shared ledger (`shared_ledger.copy`): acme, globex and initech synced, acme and
    globex twice. For tests that start from synced tenants and write; a fresh Dagster instance."""
    with shared_ledger.copy(tmp_path / "shared-copy") as project:
        yield project


@pytest.fixture
def synced_acme(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Iterator[Project]:
    """What `project.add_tenant("acme"); project.sync("acme")` leaves, without the sync: acme registered on sandbox
    company 0 and synced once through the whole job, copied from the session's build (shared_ledger.ACME_ONCE) into
    tmp_path, the `project` fixture's layout. A fresh Dagster instance: no earlier run, no recorded chain head."""
    root, _ = built_once(_shared_folder(tmp_path_factory), ACME_ONCE)
    shutil.copytree(root, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.lock", "facts.pickle"))
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(TENANTS.name, ["acme"])
        yield project_at(tmp_path, instance)


@pytest.fixture
def broken_acme(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """acme on all four rails of a world where its business breaks five times as often as the demo's
    (shared_ledger.BROKEN_COMPANIES, in force for the test), synced once: copied from the session's build
    (shared_ledger.BROKEN_ACME) into tmp_path. A fresh Dagster instance, as `synced_acme`'s."""
    from ledger_pipeline.rails.qbo import sandbox as qbo_sandbox

    monkeypatch.setattr(qbo_sandbox, "DEMO_COMPANIES", BROKEN_COMPANIES)  # read when the project's sandbox is built
    root, _ = built_once(_shared_folder(tmp_path_factory), BROKEN_ACME)
    shutil.copytree(root, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.lock", "facts.pickle"))
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(TENANTS.name, ["acme"])
        yield project_at(tmp_path, instance)


# The three longest tests (minutes each on 2 cores). With --maxschedchunk=2 (pyproject addopts) xdist hands
# items 0-1 to gw0 and items 2-3 to gw1, then one or two at a time to whichever worker finishes: so the storm
# starts at once on gw0, the dagster-dev backfill and then the bench smoke on gw1, and neither worker ends
# the run alone with one of them.
ON_GW0_FIRST = ("test_crash_storm.py",)
ON_GW1_FIRST = ("test_dagster_dev_backfill.py", "test_bench_smoke.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run order: the longest tests first (as above), the shared ledger's readers last (its build has time)."""
    names = [item.path.name for item in items]
    gw0 = [i for i, n in zip(items, names, strict=True) if n in ON_GW0_FIRST]
    gw1 = [i for name in ON_GW1_FIRST for i, n in zip(items, names, strict=True) if n == name]
    rest = [i for i, n in zip(items, names, strict=True) if n not in ON_GW0_FIRST + ON_GW1_FIRST]
    readers = [i for i in rest if _uses_shared_ledger(i)]
    rest = [i for i in rest if not _uses_shared_ledger(i)]
    filler = rest[: max(0, 2 - len(gw0))]  # short tests completing gw0's first pair
    items[:] = gw0 + filler + gw1 + rest[len(filler) :] + readers
