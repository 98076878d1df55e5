"""Fixtures for pipeline tests: a project in a temporary folder, synced through real Dagster runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.defs.resources import LedgerDuckDB, QboResource, TenantRegistryResource, shared_sandbox
from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.lib import warehouse
from ledger_pipeline.lib.tenants import QboConnection, Tenant, TenantRegistry
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES, QboSandbox

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

    def add_tenant(self, tenant_id: str, company: int = 0) -> str:
        realm = DEMO_COMPANIES[company].realm_id
        self.registry.add(Tenant(tenant_id, QboConnection(realm)))
        self.instance.add_dynamic_partitions(TENANTS.name, [tenant_id])
        return realm

    def sync(self, tenant_id: str, *, run_config: dict | None = None, raise_on_error: bool = True, **kw):
        job = self.defs.resolve_job_def("sync_tenants")
        return job.execute_in_process(
            partition_key=tenant_id,
            instance=self.instance,
            run_config=run_config or {},
            raise_on_error=raise_on_error,
            **kw,
        )

    def with_qbo(self, **settings) -> Project:
        """The same project (files, instance, sandbox state) with other QBO client settings."""
        qbo = QboResource(
            **{"state_dir": self.qbo.state_dir, "sandbox_scale": TEST_SCALE, "sandbox_rate_limit": False, **settings}
        )
        defs = build_definitions(
            warehouse=self.defs.resources["warehouse"], qbo=qbo, tenants=self.defs.resources["tenants"]
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
def project(tmp_path: Path) -> Iterator[Project]:
    qbo = QboResource(state_dir=str(tmp_path / "state"), sandbox_scale=TEST_SCALE, sandbox_rate_limit=False)
    defs = build_definitions(
        warehouse=LedgerDuckDB(database=str(tmp_path / "ledger.duckdb")),
        qbo=qbo,
        tenants=TenantRegistryResource(path=str(tmp_path / "tenants.json")),
    )
    with dg.DagsterInstance.ephemeral() as instance:
        yield Project(tmp_path, instance, qbo, defs)
