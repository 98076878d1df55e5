"""Which Dagster instance settings a benchmark run uses: the project's own files under deploy/."""

from __future__ import annotations

import os
from pathlib import Path

from bench.children import REPO

STORAGES = {"sqlite": "dagster.yaml", "postgres": "dagster-postgres.yaml"}
POSTGRES_SETTINGS = ("DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB")


def instance_settings(storage: str) -> Path:
    return REPO / "deploy" / STORAGES[storage]


def open_instance(paths, storage: str):
    """The benchmark's Dagster instance (`paths`: a workload.Paths) with the project's settings for that storage (pools
    included). Dagster is imported here, not with this module: the verify child needs no more (bench.contender)."""
    import shutil

    import dagster as dg

    paths.dagster_home.mkdir(parents=True, exist_ok=True)
    config = paths.dagster_home / "dagster.yaml"
    if not config.exists():
        shutil.copy(instance_settings(storage), config)
    return dg.DagsterInstance.from_config(str(paths.dagster_home))


def missing_settings(storage: str) -> list[str]:
    """The environment variables the storage's instance settings read that are not set."""
    return [name for name in POSTGRES_SETTINGS if name not in os.environ] if storage == "postgres" else []


# Dagster's opt-in to plan a range run with one event per asset rather than per asset and partition.
SUBSET_PLANNED_EVENTS = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


def storage_settings(storage: str) -> dict:
    """What this run's Dagster storage is and how events reach it, from the environment the children inherit."""
    per_asset = os.environ.get(SUBSET_PLANNED_EVENTS, "").lower() in ("1", "true")
    return {"kind": storage, "event_batch_size": int(os.environ.get("DAGSTER_EVENT_BATCH_SIZE", "0")),
            "planned_events": "per asset" if per_asset else "per partition"}


def recorded_storage(figures: dict) -> dict:
    """The storage a results file names; files from before the option ran on sqlite, one event at a time."""
    return {"kind": "sqlite", "event_batch_size": 0, "planned_events": "per partition"} | figures.get(
        "dagster_storage", {})


def describe(storage: dict) -> str:
    return (f"storage {storage['kind']}, event batch size {storage['event_batch_size']}, "
            f"planned events {storage['planned_events']}")
