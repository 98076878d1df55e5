"""QBO's Dagster definitions, merged into the project's by defs/rails.py: log assets, rail checks, resource."""

import dagster as dg

from ledger_pipeline.defs.qbo.assets import LOG_ASSETS
from ledger_pipeline.defs.qbo.checks import RAIL_CHECKS, whole_book_ops
from ledger_pipeline.defs.qbo.resources import QboResource


def audit_ops() -> dict[str, dict]:
    """The nightly audit's run config for this rail's checks: the control totals compare the whole book."""
    return whole_book_ops()


def default_resource() -> QboResource:
    return QboResource()


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=LOG_ASSETS, asset_checks=RAIL_CHECKS)
