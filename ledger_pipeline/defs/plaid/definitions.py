"""Plaid's Dagster definitions, merged into the project's by defs/rails.py: log assets, rail checks, resource."""

import dagster as dg

from ledger_pipeline.defs.plaid.assets import LOG_ASSETS
from ledger_pipeline.defs.plaid.checks import RAIL_CHECKS
from ledger_pipeline.defs.plaid.resources import PlaidResource


def audit_ops() -> dict[str, dict]:
    """The nightly audit's run config for this rail's checks: none, they compare the same on every run."""
    return {}


def default_resource() -> PlaidResource:
    return PlaidResource()


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=LOG_ASSETS, asset_checks=RAIL_CHECKS)
