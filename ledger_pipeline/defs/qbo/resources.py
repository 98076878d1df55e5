"""The QBO client factory as a Dagster resource: the in-process sandbox, or the live API with keys from the
environment."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ledger_pipeline.lib import settings
from ledger_pipeline.defs.resources import env_secret
from ledger_pipeline.lib.tenants import Tenant, TenantError
from ledger_pipeline.rails.qbo import sandbox
from ledger_pipeline.rails.qbo.sandbox import shared_sandbox
from ledger_pipeline.rails.qbo.client import PRODUCTION_BASE_URL, PRODUCTION_TOKEN_URL, QboClient
from ledger_pipeline.rails.qbo.oauth import QboCredentials
from ledger_pipeline.rails.qbo.rail import NAME, QboConnection
from ledger_pipeline.rails.qbo.sync import QboSession
from ledger_pipeline.rails.qbo.token_store import FileTokenStore


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

    def session(self, tenant: Tenant) -> QboSession:
        """What the sync skeleton reads this tenant's company through (lib/sync.py)."""
        return QboSession(self.client(tenant))

    def client(self, tenant: Tenant) -> QboClient:
        qbo = tenant.connection(NAME)
        if not isinstance(qbo, QboConnection):
            raise TenantError(f"tenant {tenant.tenant_id!r} has no QBO connection")
        store = FileTokenStore(self.state_path / "qbo_tokens")
        common = dict(
            token_store=store, page_size=self.page_size, max_retries=self.max_retries, backoff_base=self.backoff_base,
            timeout=self.timeout,
        )
        if qbo.credentials == "sandbox":
            client_id, secret, refresh = sandbox.sandbox_credentials(qbo.realm_id)
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
                qbo.realm_id, QboCredentials(client_id, secret, refresh), **endpoint, **common
            )  # fmt: skip
        return QboClient(
            qbo.realm_id,
            QboCredentials(
                env_secret(self.client_id_env, tenant, "QBO", "client id"),
                env_secret(self.client_secret_env, tenant, "QBO", "client secret"),
                env_secret(qbo.refresh_token_env or "", tenant, "QBO", "refresh token"),
            ),
            base_url=PRODUCTION_BASE_URL,
            token_url=PRODUCTION_TOKEN_URL,
            **common,
        )
