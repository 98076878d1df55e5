"""Ramp's Dagster definitions, merged into the project's by defs/rails.py: log assets, rail checks, resource."""

import dagster as dg

from ledger_pipeline.defs.ramp.assets import LOG_ASSETS
from ledger_pipeline.defs.ramp.checks import RAIL_CHECKS
from ledger_pipeline.defs.ramp.resources import RampResource


def audit_ops() -> dict[str, dict]:
    """The nightly audit's run config for this rail's checks: none."""
    return {}


def default_resource() -> RampResource:
    return RampResource()


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=LOG_ASSETS, asset_checks=RAIL_CHECKS)
