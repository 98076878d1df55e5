"""The Ramp client factory as a Dagster resource: the in-process sandbox, or the live API with the app's keys and
the business's first refresh token from the environment (later ones live in the token store)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ledger_pipeline.lib import settings
from ledger_pipeline.lib.oauth import OAuthCredentials
from ledger_pipeline.defs.resources import env_secret
from ledger_pipeline.lib.tenants import Tenant, TenantError
from ledger_pipeline.rails.ramp.client import ENVIRONMENTS, MAX_PAGE_SIZE, RampClient
from ledger_pipeline.rails.ramp.rail import NAME, RampConnection
from ledger_pipeline.rails.ramp.sync import RampSession
from ledger_pipeline.rails.ramp.token_store import FileTokenStore


class RampResource(dg.ConfigurableResource):
    """Builds a Ramp client per tenant. Live secrets are read through Dagster's EnvVar when a client is built,
    never at load time, so a sandbox-only deployment needs none."""

    state_dir: str = ""
    environment: str = "production"  # live credentials: "production" or Ramp's "demo"
    api_url: str = ""  # live credentials through another address (a proxy; tests: the sandbox served over HTTP)
    client_id_env: str = "RAMP_CLIENT_ID"
    client_secret_env: str = "RAMP_CLIENT_SECRET"
    page_size: int = MAX_PAGE_SIZE
    max_retries: int = 6
    backoff_base: float = 0.5  # seconds before the first retry; doubles each attempt, with jitter
    timeout: float = 30.0
    sandbox_rate_limit: bool = True
    sandbox_scale: float = 1.0  # must equal the QBO resource's: every sandbox renders the same businesses
    # Base URL of a Ramp sandbox served over HTTP (`ledger-pipeline sandbox serve --rail ramp`); empty = in-process.
    sandbox_url: str = ""

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir) if self.state_dir else settings.state_dir()

    def session(self, tenant: Tenant) -> RampSession:
        """What the sync skeleton reads this tenant's business through (lib/sync.py)."""
        return RampSession(self.client(tenant), _connection(tenant))

    def client(self, tenant: Tenant) -> RampClient:
        ramp = _connection(tenant)
        common = dict(token_store=FileTokenStore(self.state_path / "ramp_tokens"), page_size=self.page_size,
                      max_retries=self.max_retries, backoff_base=self.backoff_base, timeout=self.timeout)  # fmt: skip
        if ramp.credentials == "sandbox":
            from ledger_pipeline.rails.ramp import sandbox

            credentials = OAuthCredentials(sandbox.CLIENT_ID, sandbox.CLIENT_SECRET,
                                           sandbox.initial_refresh_token(ramp.business_id))  # fmt: skip
            if self.sandbox_url:  # the client's own clock: a token the server's clock expired is refreshed on 401
                return RampClient(ramp.business_id, credentials, base_url=self.sandbox_url, **common)
            box = sandbox.shared_sandbox(self.state_path, self.sandbox_scale, self.sandbox_rate_limit)
            return RampClient(ramp.business_id, credentials, base_url=sandbox.SANDBOX_BASE_URL,
                              transport=box.transport(), clock=lambda: box.now, **common)  # fmt: skip
        if self.environment not in ENVIRONMENTS:
            raise TenantError(f"Ramp environment must be one of {sorted(ENVIRONMENTS)}, got {self.environment!r}")
        credentials = OAuthCredentials(
            env_secret(self.client_id_env, tenant, "Ramp", "client id"),
            env_secret(self.client_secret_env, tenant, "Ramp", "client secret"),
            env_secret(ramp.refresh_token_env or "", tenant, "Ramp", "refresh token"),
        )  # fmt: skip
        return RampClient(ramp.business_id, credentials, base_url=self.api_url or ENVIRONMENTS[self.environment],
                          **common)  # fmt: skip


def _connection(tenant: Tenant) -> RampConnection:
    ramp = tenant.connection(NAME)
    if not isinstance(ramp, RampConnection):
        raise TenantError(f"tenant {tenant.tenant_id!r} has no Ramp connection")
    return ramp
