"""Every rail's Dagster definitions (defs/<rail>/definitions.py, the same file in every rail), found through the
registry: what the project's Definitions, the jobs, schedules and operator commands iterate."""

from __future__ import annotations

import importlib
from types import ModuleType

import dagster as dg

from ledger_pipeline.lib import rails


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"ledger_pipeline.defs.{name}.definitions")


RAIL_DEFINITIONS: dict[str, ModuleType] = {name: _module(name) for name in rails.all_rails()}
LOG_ASSETS: list[dg.AssetsDefinition] = [a for m in RAIL_DEFINITIONS.values() for a in m.LOG_ASSETS]


def definitions() -> list[dg.Definitions]:
    return [m.definitions() for m in RAIL_DEFINITIONS.values()]


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """Each rail's client resource under the rail's name (the key its assets and checks require)."""
    return {name: m.default_resource() for name, m in RAIL_DEFINITIONS.items()}

