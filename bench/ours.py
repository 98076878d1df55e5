"""Our pipeline as a user deploys it: the `sync_tenants` job over every tenant in one run, timed.

The project is wired the way tests and `make demo` wire it (LedgerDuckDB, QboResource,
TenantRegistryResource, a Dagster instance on disk with deploy/dagster.yaml), except that the QBO
client reaches the sandbox over localhost HTTP (`QboResource.sandbox_url`), like dlt does.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

import dagster as dg

from bench.stopwatch import Stopwatch
from bench.storage import open_instance  # noqa: F401 - where the phases and bench.schedule_tick get it
from bench.workload import CHANGE_STEP, Paths, Workload
from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.defs.jobs import rails_asset_keys
from ledger_pipeline.defs.models.assets import REFRESHED_ASSETS
from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.defs.qbo.resources import QboResource
from ledger_pipeline.defs.schedules import range_tags
from ledger_pipeline.lib.tenants import Tenant, TenantRegistry
from ledger_pipeline.rails.qbo.rail import QboConnection
from ledger_pipeline.rails.qbo.entities import ENTITIES
from ledger_pipeline.rails.qbo.sync import sync_entity

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # as `make demo`: events still go to storage


def definitions(paths: Paths, sandbox_url: str) -> dg.Definitions:
    return build_definitions(
        warehouse=LedgerDuckDB(database=str(paths.ledger)),
        qbo=QboResource(state_dir=str(paths.state_dir), sandbox_rate_limit=False, sandbox_url=sandbox_url),
        tenants=TenantRegistryResource(path=str(paths.tenants)),
    )


def register_tenants(workload: Workload, paths: Paths, instance: dg.DagsterInstance) -> None:
    registry = TenantRegistry(paths.tenants)
    for tenant_id, spec in zip(workload.tenant_ids, workload.companies):
        registry.add(Tenant(tenant_id, QboConnection(spec.realm_id)))
    instance.add_dynamic_partitions(TENANTS.name, workload.tenant_ids)


def advance_clock(sandbox_url: str) -> None:
    """One change step of the books, through the sandbox's admin endpoint (the server holds the clock)."""
    body = {"advance_seconds": int(CHANGE_STEP.total_seconds())}
    httpx.post(f"{sandbox_url}/_sandbox/clock", json=body, timeout=60).raise_for_status()


def deepen_directly(workload: Workload, paths: Paths, sandbox_url: str, steps: int) -> list[float]:
    """Grow the log by `steps` changes of phase 2's size with the pipeline's own sync code, without Dagster.

    Each step moves the sandbox clock by CHANGE_STEP (about c of the objects change) and runs
    `sync_entity` (what every log asset runs) for every tenant and entity; the Dagster run that
    follows refreshes mirrors and marts and re-checks every chain. Only the log's depth matters to
    phase 6, and 50 full runs per benchmark would cost more than the rest of it. Returns each
    step's seconds.
    """
    qbo = QboResource(state_dir=str(paths.state_dir), sandbox_rate_limit=False, sandbox_url=sandbox_url)
    database = LedgerDuckDB(database=str(paths.ledger))
    seconds = []
    for step in range(steps):
        advance_clock(sandbox_url)
        started = time.perf_counter()
        with database.ledger() as conn:
            for tenant_id, spec in zip(workload.tenant_ids, workload.companies):
                with qbo.client(Tenant(tenant_id, QboConnection(spec.realm_id))) as client:
                    for entity in ENTITIES:
                        sync_entity(conn, client, tenant_id, entity, run_id=f"bench-deepen-{step}",
                                    observed_at=datetime.now(UTC))
        seconds.append(time.perf_counter() - started)
    return seconds


def rebuilt_keys(defs: dg.Definitions, tenant_ids: list[str]) -> list[dg.AssetKey]:
    """The tables phase 4 rebuilds from the log: the mirrors and history of the rails the tenants connected
    (the bench's: QBO), which a rebuild of these tenants selects; the other rails' would only skip them."""
    refreshed = {key for a in REFRESHED_ASSETS for key in a.keys}
    synced = rails_asset_keys(_rails(defs, tenant_ids), defs.get_repository_def())
    return sorted(refreshed if synced is None else refreshed & set(synced))


def full_rebuild_config(keys: list[dg.AssetKey]) -> dict:
    """Run config giving `full_rebuild: true` to every mirror and history op rebuilding `keys` (as the
    launchpad would)."""
    wanted = set(keys)
    return {"ops": {a.op.name: {"config": {"full_rebuild": True}} for a in REFRESHED_ASSETS if wanted & set(a.keys)}}


def _rails(defs: dg.Definitions, tenant_ids: list[str]) -> set[str]:
    registered = defs.resources["tenants"].registry().load()
    return {rail for tenant_id in tenant_ids for rail in registered[tenant_id].rails}


@dataclass
class RunFigures:
    """One Dagster run: wall time, time inside our code, the checks it evaluated."""

    run_id: str
    success: bool
    seconds: float
    asset_code_seconds: float
    step_seconds: float
    events: int
    parts: dict
    checks: list[dict]

    @property
    def dagster_overhead_seconds(self) -> float:
        return self.seconds - self.asset_code_seconds

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id, "success": self.success, "seconds": round(self.seconds, 4),
            "asset_code_seconds": round(self.asset_code_seconds, 4),
            "dagster_overhead_seconds": round(self.dagster_overhead_seconds, 4),
            "dagster_overhead_share": round(self.dagster_overhead_seconds / self.seconds, 4) if self.seconds else None,
            "step_seconds": round(self.step_seconds, 4), "events": self.events, "parts": self.parts,
            "checks_failed": [c for c in self.checks if not c["passed"]], "checks_evaluated": len(self.checks),
        }  # fmt: skip


def sync_all(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    tenant_ids: list[str],
    watch: Stopwatch,
    *,
    run_config: dict | None = None,
    selection: list[dg.AssetKey] | None = None,
) -> RunFigures:
    """One run of sync_tenants over every tenant (a partition range: the single-run backfill shape), over the
    rails they connected as the schedules run it, or over `selection`."""
    job = defs.resolve_job_def("sync_tenants")
    if selection is None:
        selection = rails_asset_keys(_rails(defs, tenant_ids), defs.get_repository_def())
    tags = range_tags(tenant_ids)
    watch.reset()
    started = time.perf_counter()
    result = job.execute_in_process(
        instance=instance, tags=tags, run_config={**QUIET, **(run_config or {})}, asset_selection=selection,
        raise_on_error=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    snapshot = watch.snapshot()
    checks = [
        {"asset": e.asset_key.to_user_string(), "check": e.check_name, "passed": e.passed}
        for e in result.get_asset_check_evaluations()
    ]
    return RunFigures(
        run_id=result.run_id, success=result.success, seconds=seconds,
        asset_code_seconds=snapshot["seconds"].get("asset_code", 0.0),
        step_seconds=_step_seconds(instance, result.run_id),
        events=len(result.all_events), parts=snapshot, checks=checks,
    )  # fmt: skip


def _step_seconds(instance: dg.DagsterInstance, run_id: str) -> float:
    """Sum over steps of STEP_START .. STEP_SUCCESS/FAILURE, from the run's event log records."""
    starts: dict[str, float] = {}
    spent: dict[str, float] = defaultdict(float)
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            if event.step_key in starts:
                spent[event.step_key] += entry.timestamp - starts.pop(event.step_key)
    return sum(spent.values())
