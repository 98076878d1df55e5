"""One storm project on disk: DuckDB file, sandbox state, tenant registry and Dagster instance in one folder."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg

from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.defs.qbo.resources import shared_sandbox
from ledger_pipeline.lib.tenants import Tenant, TenantRegistry
from ledger_pipeline.rails.plaid.rail import PlaidConnection, PlaidItemLink
from ledger_pipeline.rails.plaid.sandbox import PlaidSandbox, items_for
from ledger_pipeline.rails.plaid.sandbox import shared_sandbox as shared_plaid_sandbox
from ledger_pipeline.rails.qbo.rail import QboConnection
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES, QboSandbox
from ledger_pipeline.rails.stripe.rail import StripeConnection
from ledger_pipeline.rails.stripe.sandbox import DEMO_ACCOUNTS, StripeSandbox
from ledger_pipeline.rails.stripe.sandbox.shared import shared_sandbox as shared_stripe_sandbox

FAST_FOLDER_MIN_FREE = 2 << 30  # a container's default /dev/shm (64 MB) is too small for a run's files
DEPLOYED_INSTANCE = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"
NO_STEP_CAPTURE = "\ncompute_logs:\n  module: dagster.core.storage.noop_compute_log_manager\n  class: NoOpComputeLogManager\n"


@contextmanager
def fast_folder(fallback: Path) -> Iterator[Path]:
    """A temporary folder in memory (/dev/shm) when there is a roomy one, else in `fallback`; removed afterwards.

    Dagster's SQLite event log fsyncs every event, which makes a disk the slowest part of a
    child's sync. A SIGKILL leaves the page cache to the next process whatever backs the
    files, so the crash model is the same; only a power cut would differ, and none is simulated.
    """
    shm = Path("/dev/shm")
    roomy = shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= FAST_FOLDER_MIN_FREE
    parent = shm if roomy else fallback
    with tempfile.TemporaryDirectory(prefix="ledger-storm-", dir=parent) as folder:
        yield Path(folder)


@dataclass(frozen=True)
class StormProject:
    """Paths and sandbox settings shared by the driver and every child it starts (picklable).

    The tenant connects three rails: QBO on demo company `company`, Stripe on that company's demo account and
    Plaid on its bank logins, windows on the same books and clock, so every sync (and every kill) goes through all.
    """

    root: str
    tenant_id: str = "storm"
    company: int = 0
    scale: float = 0.04

    @property
    def db_path(self) -> Path:
        return Path(self.root) / "ledger.duckdb"

    @property
    def state_dir(self) -> Path:
        return Path(self.root) / "state"

    @property
    def tenants_path(self) -> Path:
        return Path(self.root) / "tenants.json"

    @property
    def dagster_home(self) -> Path:
        return Path(self.root) / "dagster_home"

    @property
    def realm_id(self) -> str:
        return DEMO_COMPANIES[self.company].realm_id

    @property
    def stripe_account_id(self) -> str:
        return DEMO_ACCOUNTS[self.company].account_id

    @property
    def plaid_item_ids(self) -> tuple[str, ...]:
        return tuple(i.item_id for i in items_for(self.realm_id))

    def sandbox(self) -> QboSandbox:
        """The sandbox whose clock, tokens and faults the children share through the state file."""
        return shared_sandbox(self.state_dir, self.scale, False)

    def stripe_sandbox(self) -> StripeSandbox:
        """The Stripe view of that sandbox (its clock; its faults would be this process's own)."""
        return shared_stripe_sandbox(self.state_dir, self.scale, False)

    def plaid_sandbox(self) -> PlaidSandbox:
        """The Plaid view of that sandbox (its clock and login switches; its faults would be this process's own)."""
        return shared_plaid_sandbox(self.state_dir, self.scale, False)

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def create(self, *, clock: datetime | None = None, pools: bool = True) -> StormProject:
        """Lay the project down: tenant registered (QBO, Stripe and Plaid), its partition added, sandbox clock set if asked.

        With `pools`, the Dagster instance gets the deployment's settings (deploy/dagster.yaml: one
        slot in the ledger_duckdb pool); without, writers are not queued by Dagster at all, and the
        instance has no settings at all: with any, Dagster 1.13 runs logging.config.dictConfig at
        every run start, which can deadlock with another run of the same process logging an event.
        Step output is not captured (Dagster's capture swaps the process's stdout and stderr, which
        two runs in one process would tangle); children send theirs to the storm's log file.
        """
        Path(self.root).mkdir(parents=True, exist_ok=True)
        self.dagster_home.mkdir(exist_ok=True)
        settings = DEPLOYED_INSTANCE.read_text() if pools else ""
        (self.dagster_home / "dagster.yaml").write_text(settings + NO_STEP_CAPTURE)
        connections = (
            QboConnection(self.realm_id), StripeConnection(self.stripe_account_id),
            PlaidConnection(tuple(PlaidItemLink(i) for i in self.plaid_item_ids)),
        )  # fmt: skip
        TenantRegistry(self.tenants_path).add(Tenant(self.tenant_id, *connections))
        with self.instance() as instance:
            instance.add_dynamic_partitions(TENANTS.name, [self.tenant_id])
        if clock is not None:
            self.sandbox().set_clock(clock)
        return self

    def fail_dead_runs(self, why: str) -> int:
        """Mark runs whose process was killed as failed and free their pool slots; how many there were.

        A SIGKILLed in-process run stays STARTED and keeps its ledger_duckdb slot, so every later run
        would wait for it forever. Dagster's run monitoring cannot see that a local run's process died,
        so an operator does this (Runs: terminate; Concurrency: free the run's slots); the driver does
        it for them, only ever between children.
        """
        with self.instance() as instance:
            dead = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            for run in dead:
                instance.report_run_failed(run, why)
                instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        return len(dead)

    def sibling(self, name: str) -> StormProject:
        """A fresh project beside this one, with the same tenant and sandbox settings (the reference run)."""
        return dataclasses.replace(self, root=str(Path(self.root).parent / name))
