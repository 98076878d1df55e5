"""Which Dagster instance settings a benchmark run uses: the project's own files under deploy/."""

from __future__ import annotations

import os
from pathlib import Path

from bench.children import REPO

STORAGES = {"sqlite": "dagster.yaml", "postgres": "dagster-postgres.yaml"}
POSTGRES_SETTINGS = ("DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB")


def instance_settings(storage: str) -> Path:
    return REPO / "deploy" / STORAGES[storage]


def missing_settings(storage: str) -> list[str]:
    """The environment variables the storage's instance settings read that are not set."""
    return [name for name in POSTGRES_SETTINGS if name not in os.environ] if storage == "postgres" else []


def recorded_storage(figures: dict) -> dict:
    """The storage a results file names; files from before the option ran on sqlite, one event at a time."""
    return figures.get("dagster_storage", {"kind": "sqlite", "event_batch_size": 0})
