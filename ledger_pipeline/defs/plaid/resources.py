"""The Plaid client factory as a Dagster resource: the in-process sandbox, or the live API with the platform's keys
and each item's access token from the environment."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ledger_pipeline.lib import settings
from ledger_pipeline.defs.resources import env_secret
from ledger_pipeline.lib.tenants import Tenant, TenantError
from ledger_pipeline.rails.plaid.client import ENVIRONMENTS, MAX_COUNT, PlaidClient
from ledger_pipeline.rails.plaid.rail import NAME, PlaidConnection
from ledger_pipeline.rails.plaid.sync import PlaidSession


class PlaidResource(dg.ConfigurableResource):
    """Builds a Plaid client per tenant (its items' access tokens, the platform's client id and secret).

    Live secrets are read through Dagster's EnvVar when a client is built, never at load time, so a sandbox-only
    deployment needs none.
    """

    state_dir: str = ""
    environment: str = "production"  # live credentials: "production" or Plaid's own "sandbox"
    api_url: str = ""  # live credentials through another address (a proxy; tests: the sandbox served over HTTP)
    client_id_env: str = "PLAID_CLIENT_ID"
    secret_env: str = "PLAID_SECRET"
    count: int = MAX_COUNT  # transactions per /transactions/sync page
    max_retries: int = 6
    backoff_base: float = 0.5  # seconds before the first retry; doubles each attempt, with jitter
    timeout: float = 30.0
    sandbox_rate_limit: bool = True
    sandbox_scale: float = 1.0  # must equal the QBO resource's: every sandbox renders the same businesses
    # Base URL of a Plaid sandbox served over HTTP (`ledger-pipeline sandbox serve --rail plaid`); empty = in-process.
    sandbox_url: str = ""

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir) if self.state_dir else settings.state_dir()

    def session(self, tenant: Tenant) -> PlaidSession:
        """What the sync skeleton reads this tenant's items through (lib/sync.py)."""
        return PlaidSession(self.client(tenant), _connection(tenant), count=self.count)

    def client(self, tenant: Tenant) -> PlaidClient:
        plaid = _connection(tenant)
        common = dict(max_retries=self.max_retries, backoff_base=self.backoff_base, timeout=self.timeout)
        if plaid.credentials == "sandbox":
            from ledger_pipeline.rails.plaid import sandbox

            tokens = {item_id: sandbox.access_token_for(item_id) for item_id in plaid.account_ids}
            if self.sandbox_url:
                return PlaidClient(sandbox.CLIENT_ID, sandbox.SECRET, tokens, base_url=self.sandbox_url, **common)
            box = sandbox.shared_sandbox(self.state_path, self.sandbox_scale, self.sandbox_rate_limit)
            return PlaidClient(
                sandbox.CLIENT_ID, sandbox.SECRET, tokens, base_url=sandbox.SANDBOX_BASE_URL,
                transport=box.transport(), **common,
            )  # fmt: skip
        if self.environment not in ENVIRONMENTS:
            raise TenantError(f"Plaid environment must be one of {sorted(ENVIRONMENTS)}, got {self.environment!r}")
        tokens = {i.item_id: env_secret(i.access_token_env or "", tenant, "Plaid", f"item {i.item_id}'s access token")
                  for i in plaid.items}  # fmt: skip
        return PlaidClient(
            env_secret(self.client_id_env, tenant, "Plaid", "client id"),
            env_secret(self.secret_env, tenant, "Plaid", "secret"), tokens,
            base_url=self.api_url or ENVIRONMENTS[self.environment], **common,
        )  # fmt: skip


def _connection(tenant: Tenant) -> PlaidConnection:
    plaid = tenant.connection(NAME)
    if not isinstance(plaid, PlaidConnection):
        raise TenantError(f"tenant {tenant.tenant_id!r} has no Plaid connection")
    return plaid
