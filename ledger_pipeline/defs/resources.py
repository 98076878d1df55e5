"""Resources: the DuckDB ledger and the QBO client factory, both typed Dagster config."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from ledger_pipeline.lib import model_views, settings, warehouse
from ledger_pipeline.lib.canonical import sha256_hex
from ledger_pipeline.lib.sql_models import load_models
from ledger_pipeline.lib.tenants import Tenant, TenantError, TenantRegistry
from ledger_pipeline.rails.qbo import sandbox
from ledger_pipeline.rails.qbo.client import PRODUCTION_BASE_URL, PRODUCTION_TOKEN_URL, QboClient
from ledger_pipeline.rails.qbo.entities import ENTITIES
from ledger_pipeline.rails.qbo.oauth import QboCredentials
from ledger_pipeline.rails.qbo.token_store import FileTokenStore


# (view name, rail, entity type) of every per-entity view over raw.entity_log.
LOG_VIEWS = [(f"qbo_{e.table}", "qbo", e.name) for e in ENTITIES]


class LedgerDuckDB(DuckDBResource):
    """The ledger database. `database` empty means LEDGER_DUCKDB_PATH (default data/ledger.duckdb).

    All storage access goes through `ledger()`; pointing the pipeline at
    another engine is a change to this resource and lib/warehouse.py only.
    """

    database: str = ""

    @property
    def path(self) -> Path:
        return Path(self.database) if self.database else settings.duckdb_path()

    @contextmanager
    def ledger(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        conn = warehouse.connect(self.path, read_only=read_only)
        try:
            if not read_only:
                _ensure_views(conn)
            yield conn
        finally:
            conn.close()


@functools.cache
def _views_fingerprint() -> str:
    """What the view SQL of this code hashes to (the code and its SQL files do not change within a process)."""
    models = "".join(m.body for m in load_models())
    return sha256_hex(repr(LOG_VIEWS) + "".join(model_views.MACROS) + model_views.AS_OF_MACRO + models)


def _ensure_views(conn: duckdb.DuckDBPyConnection) -> None:
    """(Re)create the log views and view models when their SQL differs from what the file was built with."""
    fingerprint = _views_fingerprint()
    if warehouse.info(conn, "views_fingerprint") == fingerprint:
        return
    conn.execute("begin")
    warehouse.create_entity_views(conn, LOG_VIEWS)
    model_views.ensure_views(conn, load_models())
    warehouse.set_info(conn, "views_fingerprint", fingerprint)
    conn.execute("commit")


class TenantRegistryResource(dg.ConfigurableResource):
    """The tenant registry file. `path` empty means LEDGER_TENANTS_PATH (default data/tenants.json)."""

    path: str = ""

    def registry(self) -> TenantRegistry:
        return TenantRegistry(Path(self.path) if self.path else settings.tenants_path())


class QboResource(dg.ConfigurableResource):
    """Builds a QBO client per tenant: the in-process sandbox, or the live API with keys from the environment.

    Live keys are read through Dagster's EnvVar when a client is built, never
    at load time, so a sandbox-only deployment needs none of them.
    """

    state_dir: str = ""
    client_id_env: str = "QBO_CLIENT_ID"
    client_secret_env: str = "QBO_CLIENT_SECRET"
    page_size: int = 1000
    max_retries: int = 6
    backoff_base: float = 0.5  # seconds before the first retry; doubles each attempt, with jitter
    timeout: float = 30.0  # seconds per HTTP request (connect, read, write); a timed-out request is retried
    sandbox_rate_limit: bool = True
    sandbox_scale: float = 1.0  # multiplies the sandbox companies' sizes
    # Base URL of a sandbox served over HTTP (`ledger-pipeline sandbox serve`, the benchmark's server);
    # empty = the in-process sandbox. Used only for tenants with sandbox credentials.
    sandbox_url: str = ""

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir) if self.state_dir else settings.state_dir()

    def client(self, tenant: Tenant) -> QboClient:
        if tenant.qbo is None:
            raise TenantError(f"tenant {tenant.tenant_id!r} has no QBO connection")
        store = FileTokenStore(self.state_path / "qbo_tokens")
        common = dict(
            token_store=store, page_size=self.page_size, max_retries=self.max_retries, backoff_base=self.backoff_base,
            timeout=self.timeout,
        )
        if tenant.qbo.credentials == "sandbox":
            client_id, secret, refresh = sandbox.sandbox_credentials(tenant.qbo.realm_id)
            if self.sandbox_url:  # the client's own clock: a token the server's clock expired is refreshed on 401
                base = self.sandbox_url.rstrip("/")
                endpoint = dict(base_url=base, token_url=f"{base}/oauth2/v1/tokens/bearer")
            else:
                box = shared_sandbox(self.state_path, self.sandbox_scale, self.sandbox_rate_limit)
                endpoint = dict(
                    base_url=sandbox.SANDBOX_BASE_URL, token_url=sandbox.SANDBOX_TOKEN_URL,
                    transport=box.transport(), clock=lambda: box.now,
                )  # fmt: skip
            return QboClient(
                tenant.qbo.realm_id, QboCredentials(client_id, secret, refresh), **endpoint, **common
            )  # fmt: skip
        return QboClient(
            tenant.qbo.realm_id,
            QboCredentials(
                _secret(self.client_id_env, tenant), _secret(self.client_secret_env, tenant),
                _secret(tenant.qbo.refresh_token_env or "", tenant),
            ),
            base_url=PRODUCTION_BASE_URL,
            token_url=PRODUCTION_TOKEN_URL,
            **common,
        )


@functools.cache
def shared_sandbox(state_dir: Path, scale: float = 1.0, rate_limited: bool = True) -> sandbox.QboSandbox:
    """The emulator whose clock and tokens every process shares through a state file under state_dir.

    `scale` multiplies the demo companies' sizes (tests shrink them, benchmarks grow them).
    """
    companies = tuple(dataclasses.replace(c, size=max(50, int(c.size * scale))) for c in sandbox.DEMO_COMPANIES)
    options = {} if rate_limited else {"rate_limit": None}
    return sandbox.QboSandbox(companies, state_path=state_dir / "qbo_sandbox.json", **options)


def _secret(name: str, tenant: Tenant) -> str:
    value = dg.EnvVar(name).get_value() if name else None
    if not value:
        raise TenantError(
            f"tenant {tenant.tenant_id!r}: QBO credential variable {name or '(unnamed)'} is not set; "
            "export it or register the tenant with sandbox credentials"
        )
    return value
