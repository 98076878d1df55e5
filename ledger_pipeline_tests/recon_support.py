"""What the reconciliation tests share: businesses of a test's own on all four rails, one sync run over several
tenants, and recon.breaks scored against the sandbox's ground truth (world/ground_truth.py)."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

import dagster as dg
import pytest

from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.lib.tenants import Tenant
from ledger_pipeline.rails.plaid.rail import PlaidConnection, PlaidItemLink
from ledger_pipeline.rails.plaid.sandbox import shared as plaid_shared
from ledger_pipeline.rails.plaid.sandbox.spec import bank_item
from ledger_pipeline.rails.qbo import sandbox as qbo_sandbox
from ledger_pipeline.rails.qbo.rail import QboConnection
from ledger_pipeline.rails.qbo.sandbox import CompanySpec, QboSandbox
from ledger_pipeline.rails.ramp.rail import RampConnection
from ledger_pipeline.rails.ramp.sandbox import shared as ramp_shared
from ledger_pipeline.rails.ramp.sandbox.spec import business_for
from ledger_pipeline.rails.stripe.rail import StripeConnection
from ledger_pipeline.rails.stripe.sandbox import shared as stripe_shared
from ledger_pipeline.rails.stripe.sandbox.spec import StripeAccount, account_id_for
from ledger_pipeline.world.ground_truth import injected_breaks, score

RAILS = ("qbo", "stripe", "plaid", "ramp")
SEEDS_VARIABLE = "LEDGER_TEST_WORLD_SEEDS"  # `make soak-recon` sets it: the scoring tests under many worlds


def world_seeds(*default: int) -> list[int]:
    """The world seeds a scoring test runs under: `default`, or those LEDGER_TEST_WORLD_SEEDS lists."""
    listed = os.environ.get(SEEDS_VARIABLE, "").split()
    return [int(seed) for seed in listed] or list(default)


def in_world(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """The project's sandboxes, built after this, render the world of `seed`."""
    monkeypatch.setattr(QboSandbox, "__init__", functools.partialmethod(QboSandbox.__init__, seed=seed))
BREAKS = "select tenant_id, kind, amount_minor, evidence, break_id, status, currency from recon.breaks order by all"


def on_every_rail(monkeypatch: pytest.MonkeyPatch, companies: tuple[CompanySpec, ...]) -> None:
    """The project's sandboxes, built after this, render `companies` instead of the demo's: each with a Stripe
    account, a bank login (Checking and Savings, as Bluebird's) and a Ramp business of its own. The rails' lists
    are read when their shared sandbox is built."""
    monkeypatch.setattr(qbo_sandbox, "DEMO_COMPANIES", companies)
    monkeypatch.setattr(stripe_shared, "DEMO_ACCOUNTS", tuple(_stripe_account(c) for c in companies))
    monkeypatch.setattr(plaid_shared, "DEMO_ITEMS", tuple(bank_item(c.realm_id) for c in companies))
    monkeypatch.setattr(ramp_shared, "DEMO_BUSINESSES", tuple(business_for(c.realm_id, c.name) for c in companies))


def _stripe_account(company: CompanySpec) -> StripeAccount:
    return StripeAccount(account_id_for(company.realm_id, "Shop"), company.realm_id, company.name)


def add_business(project, tenant_id: str, company: CompanySpec) -> None:
    """Register a tenant on all four rails of one of the businesses `on_every_rail` put in the sandboxes."""
    realm = company.realm_id
    project.registry.add(Tenant(tenant_id, QboConnection(realm), StripeConnection(_stripe_account(company).account_id),
                                PlaidConnection((PlaidItemLink(bank_item(realm).item_id),)),
                                RampConnection(business_for(realm, company.name).business_id)))  # fmt: skip
    project.instance.add_dynamic_partitions(TENANTS.name, [tenant_id])


def sync_in_one_run(project, first: str, last: str, **kwargs) -> dg.ExecuteInProcessResult:
    """One run of the sync job over the tenants registered from `first` to `last` (a partition range)."""
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return project.defs.resolve_job_def("sync_tenants").execute_in_process(
        instance=project.instance, tags=tags, **kwargs
    )


@dataclass(frozen=True)
class Scored:
    """recon.breaks (`rows`, as BREAKS reads them; `reported`, as `score` takes them) against the ground truth of
    the tenants' businesses (`truth`) at the sandbox's clock: `found` and `missed` (of those due), `false`
    (reported and not injected)."""

    rows: list[tuple]
    reported: list[dict]
    truth: list[dict]
    found: list[dict]
    missed: list[dict]
    false: list[dict]


def scored_breaks(project, realms: dict[str, str]) -> Scored:
    """recon.breaks scored against what the sandbox broke in the businesses of `realms` (tenant -> QBO realm)."""
    rows = project.query(BREAKS)
    reported = [{"tenant_id": t, "kind": k, "evidence": json.loads(e)} for t, k, _, e, *_ in rows]
    truth = [b for tenant, realm in realms.items() for b in injected_breaks(project.sandbox, realm, tenant)]
    return Scored(rows, reported, truth, *score(reported, truth, project.sandbox.now.isoformat()))
