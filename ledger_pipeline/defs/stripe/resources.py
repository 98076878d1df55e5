"""The Stripe client factory as a Dagster resource: the in-process sandbox, or the live API with the platform key
from the environment."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ledger_pipeline.lib import settings
from ledger_pipeline.lib.tenants import Tenant, TenantError
from ledger_pipeline.rails.stripe.client import PRODUCTION_BASE_URL, StripeClient
from ledger_pipeline.rails.stripe.rail import NAME, StripeConnection
from ledger_pipeline.rails.stripe.sandbox import PLATFORM_KEY, SANDBOX_BASE_URL
from ledger_pipeline.rails.stripe.sandbox.shared import shared_sandbox
from ledger_pipeline.rails.stripe.sync import StripeSession

API_VERSION = "2026-10-28.endive"  # pinned, so the logged payloads keep one shape whatever the account's default


class StripeResource(dg.ConfigurableResource):
    """Builds a Stripe client per tenant (its connected account, read with the platform key).

    The live key is read through Dagster's EnvVar when a client is built, never at load time, so a sandbox-only
    deployment needs none.
    """

    state_dir: str = ""
    api_key_env: str = "STRIPE_API_KEY"
    max_retries: int = 6
    backoff_base: float = 0.5  # seconds before the first retry; doubles each attempt, with jitter
    timeout: float = 30.0
    sandbox_rate_limit: bool = True
    sandbox_scale: float = 1.0  # must equal the QBO resource's: both render the same businesses
    # Base URL of a Stripe sandbox served over HTTP (`ledger-pipeline sandbox serve --rail stripe`); empty = in-process.
    sandbox_url: str = ""

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir) if self.state_dir else settings.state_dir()

    def session(self, tenant: Tenant) -> StripeSession:
        """What the sync skeleton reads this tenant's account through (lib/sync.py)."""
        return StripeSession(self.client(tenant))

    def client(self, tenant: Tenant) -> StripeClient:
        stripe = tenant.connection(NAME)
        if not isinstance(stripe, StripeConnection):
            raise TenantError(f"tenant {tenant.tenant_id!r} has no Stripe connection")
        common = dict(
            max_retries=self.max_retries, backoff_base=self.backoff_base, timeout=self.timeout,
            stripe_version=API_VERSION,
        )  # fmt: skip
        if stripe.credentials == "sandbox":
            if self.sandbox_url:
                return StripeClient(stripe.account_id, PLATFORM_KEY, base_url=self.sandbox_url, **common)
            box = shared_sandbox(self.state_path, self.sandbox_scale, self.sandbox_rate_limit)
            return StripeClient(
                stripe.account_id, PLATFORM_KEY, base_url=SANDBOX_BASE_URL, transport=box.transport(), **common
            )
        key = dg.EnvVar(self.api_key_env).get_value()
        if not key:
            raise TenantError(
                f"tenant {tenant.tenant_id!r}: the Stripe platform key variable {self.api_key_env} is not set; "
                "export it or register the tenant with sandbox credentials"
            )
        return StripeClient(stripe.account_id, key, base_url=PRODUCTION_BASE_URL, **common)
