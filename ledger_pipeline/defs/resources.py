"""Core resources: the DuckDB ledger and the tenant registry (each rail's own resource is in defs/<rail>/)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from ledger_pipeline.lib import ledger_views, settings, warehouse
from ledger_pipeline.lib.tenants import Tenant, TenantError, TenantRegistry


class LedgerDuckDB(DuckDBResource):
    """The ledger database. `database` empty means LEDGER_DUCKDB_PATH (default data/ledger.duckdb).

    All storage access goes through `ledger()`; pointing the pipeline at
    another engine is a change to this resource and lib/warehouse.py only.
    """

    database: str = ""
    read_side: str = ""  # the published read side's folder; empty: settings.read_dir (beside the ledger)

    @property
    def path(self) -> Path:
        return Path(self.database) if self.database else settings.duckdb_path()

    @property
    def read_path(self) -> Path:
        return Path(self.read_side).absolute() if self.read_side else settings.read_dir(self.path)

    @contextmanager
    def ledger(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        conn = warehouse.connect(self.path, read_only=read_only)
        try:
            if not read_only:
                ledger_views.ensure(conn)
            yield conn
        finally:
            conn.close()


class TenantRegistryResource(dg.ConfigurableResource):
    """The tenant registry file. `path` empty means LEDGER_TENANTS_PATH (default data/tenants.json)."""

    path: str = ""

    def registry(self) -> TenantRegistry:
        return TenantRegistry(Path(self.path) if self.path else settings.tenants_path())




def env_secret(name: str, tenant: Tenant, rail_title: str, what: str) -> str:
    """A live credential from the variable `name`, read through Dagster's EnvVar when a client is built (never at load
    time, so a sandbox-only deployment needs none); a missing one fails naming the tenant and the variable."""
    value = dg.EnvVar(name).get_value() if name else None
    if not value:
        raise TenantError(
            f"tenant {tenant.tenant_id!r}: the {rail_title} {what} variable {name or '(unnamed)'} is not set; "
            "export it or register the tenant with sandbox credentials"
        )
    return value
