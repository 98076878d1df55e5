"""The storm's child: one real sync of the log and mirror assets, announcing each phase to the driver.

Runs the `sync_tenants` job with `execute_in_process` on the project's
on-disk Dagster instance, DuckDB file and sandbox state, exactly as a
deployment would, except that its phases are announced through a pipe. It
is started from a fork server that has already imported Dagster and the
pipeline and opened a Dagster instance once (preload.py), so a restart costs
milliseconds, not the three seconds of imports and first-use set-up.
`python -m ledger_pipeline_tests.storm.child ROOT` runs one sync by hand.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import dagster as dg

from ledger_pipeline.defs.models.assets import MIRROR_ASSETS
from ledger_pipeline.defs.qbo.assets import LOG_ASSETS as QBO_LOG_ASSETS
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.defs.qbo.resources import QboResource
from ledger_pipeline.defs.plaid.assets import LOG_ASSETS as PLAID_LOG_ASSETS
from ledger_pipeline.defs.plaid.resources import PlaidResource
from ledger_pipeline.defs.stripe.assets import LOG_ASSETS as STRIPE_LOG_ASSETS
from ledger_pipeline.defs.stripe.resources import StripeResource
from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.rails.stripe import sync as stripe_sync
from ledger_pipeline_tests.helpers import failure_text, op_config
from ledger_pipeline_tests.storm import probes
from ledger_pipeline_tests.storm.invariants import STORM_RAILS
from ledger_pipeline_tests.storm.layout import StormProject

DONE = "done "
STRIPE_WINDOW_OBJECTS = 1  # every page of a Stripe first listing closes a window (the storm's accounts are small)
# The log assets and mirrors of the rails the storm's tenant connects (each mirror depends on its log asset, which
# orders the steps): another rail's steps would only skip the tenant, at a step's cost in every child run.
LOG_ASSETS = [*QBO_LOG_ASSETS, *STRIPE_LOG_ASSETS, *PLAID_LOG_ASSETS]
STORM_MIRRORS = [a for a in MIRROR_ASSETS if a.key.path[-1].split("_", 1)[0] in STORM_RAILS]
SYNCED_KEYS = {a.key for a in LOG_ASSETS} | {a.key for a in STORM_MIRRORS}
# Only the checks the log and mirror steps evaluate themselves (chain_intact, rows_valid, matches_log); the
# separate check steps (rail counts, control totals, SQL assertions) ask the rail again and are not under test.
IN_STEP_CHECKS = {key for a in [*LOG_ASSETS, *STORM_MIRRORS] for key in a.check_keys}


@dataclass(frozen=True)
class SyncSettings:
    """How a child syncs: small pages and batches make paging and log writes many, short and killable."""

    page_size: int = 10
    batch_size: int = 10
    full_rebuild: bool = False
    full_check: bool = False  # matches_log compares every mirror row, not only those this run refreshed


@functools.lru_cache(maxsize=8)
def sync_job(scale: float, page_size: int) -> dg.JobDefinition:
    """`sync_tenants` cut down to SYNCED_KEYS, with resources that read every path from the environment.

    LedgerDuckDB, QboResource, StripeResource, PlaidResource and TenantRegistryResource left without paths use LEDGER_DUCKDB_PATH,
    LEDGER_STATE_DIR and LEDGER_TENANTS_PATH when a step runs, so one job serves every project. The
    fork server builds the default one when it imports this module: children inherit it, snapshot
    included, instead of spending half a second each on it.
    """
    defs = build_definitions(
        warehouse=LedgerDuckDB(),
        qbo=QboResource(sandbox_scale=scale, sandbox_rate_limit=False, page_size=page_size, backoff_base=0.0),
        stripe=StripeResource(sandbox_scale=scale, sandbox_rate_limit=False, backoff_base=0.0),
        plaid=PlaidResource(sandbox_scale=scale, sandbox_rate_limit=False, count=page_size, backoff_base=0.0),
        tenants=TenantRegistryResource(),
    )
    job = defs.resolve_job_def("sync_tenants").get_subset(
        asset_selection=SYNCED_KEYS, asset_check_selection=IN_STEP_CHECKS
    )
    job.get_job_snapshot()
    return job


def run_attempt(project: StormProject, settings: SyncSettings, progress: Connection, log_path: str) -> None:
    """Process target: sync once, sending a marker per phase and a final `done {json}` line."""
    _redirect_output(log_path)

    sending = threading.Lock()  # the rail's requests come from the sync's reader threads too

    def send(marker: str) -> None:
        with sending:
            progress.send_bytes(marker.encode())

    send("boot")
    probes.install(send)
    # Stripe's first listings commit at every page, so kills land between their checkpoints and their end too.
    stripe_sync.WINDOW_OBJECTS = STRIPE_WINDOW_OBJECTS
    outcome = sync_once(project, settings)
    send(DONE + json.dumps(outcome))
    progress.close()


def sync_once(project: StormProject, settings: SyncSettings) -> dict[str, Any]:
    """One materialisation of every log and mirror asset for the project's tenant; a summary of how it went."""
    os.environ["LEDGER_STATE_DIR"] = str(project.state_dir)
    os.environ["LEDGER_DUCKDB_PATH"] = str(project.db_path)
    os.environ["LEDGER_TENANTS_PATH"] = str(project.tenants_path)
    os.environ["DAGSTER_HOME"] = str(project.dagster_home)
    run_config = op_config("raw__", batch_size=settings.batch_size)  # op_config knows QBO's log ops only
    run_config["ops"] |= {
        a.op.name: {"config": {"batch_size": settings.batch_size}} for a in [*STRIPE_LOG_ASSETS, *PLAID_LOG_ASSETS]
    }
    # The storm's mirrors only: Dagster refuses config naming an op its job subset does not hold (Ramp's mirrors).
    mirror = {"full_rebuild": True} if settings.full_rebuild else {"full_check": True} if settings.full_check else {}
    if mirror:
        run_config["ops"] |= {a.op.name: {"config": mirror} for a in STORM_MIRRORS}
    run_config["loggers"] = {"console": {"config": {"log_level": "WARNING"}}}
    with project.instance() as instance:
        result = sync_job(project.scale, settings.page_size).execute_in_process(
            partition_key=project.tenant_id, instance=instance, run_config=run_config, raise_on_error=False
        )
    checks = {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed for e in result.get_asset_check_evaluations()
    }
    return {
        "run_id": result.run_id,
        "success": result.success,
        "failure": "" if result.success else failure_text(result)[:2000],
        "checks": checks,
    }


def _redirect_output(log_path: str) -> None:
    """Send the child's stdout and stderr (Dagster is chatty) to the storm's log file, not the driver's terminal."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="a storm project folder (made by the driver)")
    parser.add_argument("--tenant", default="storm")
    parser.add_argument("--scale", type=float, default=0.04)
    parser.add_argument("--full-rebuild", action="store_true")
    args = parser.parse_args(argv)
    project = StormProject(args.root, args.tenant, scale=args.scale)
    outcome = sync_once(project, SyncSettings(full_rebuild=args.full_rebuild))
    print(json.dumps(outcome, indent=2))
    return 0 if outcome["success"] else 1


sync_job(StormProject.scale, SyncSettings.page_size)

if __name__ == "__main__":
    sys.exit(main())
