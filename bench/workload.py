"""The benchmark's workload: T sandbox companies of N objects each, served over localhost HTTP.

The sandbox's own history gives the realistic mix (vendors and customers a few percent each,
bills and invoices most, payments the rest, a chart of accounts) and objects of realistic size
(lines, refs, notes). The change step moves the simulated clock so that about a fraction c of
the objects get a new version (updates, payments, voids, deletes and some creations); the
benchmark reports the fraction it actually logged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from ledger_pipeline.rails.qbo.entities import ENTITIES
from ledger_pipeline.rails.qbo.sandbox import CompanySpec, QboSandbox
from ledger_pipeline.rails.qbo.sandbox import server as sandbox_server

# One simulated day at change_rate r gives about r x size events on an average day; an event touches
# 1-3 objects (a payment changes the document, its party and itself). Measured on the first simulated
# day (a weekday, busier than average): one unit of change_rate logs about this many versions.
VERSIONS_PER_EVENT = 2.85
CHANGE_STEP = timedelta(days=1)  # phase 2's change, and each step of the log's deepening in phase 6
REALM_BASE = 9_130_360_000_000_000


@dataclass(frozen=True)
class Workload:
    """T tenants x N objects, the change fraction c of phase 2, and how deep the log grows (phase 6)."""

    tenants: int
    objects: int
    change: float = 0.01
    depths: tuple[int, ...] = (10, 50)
    seed: int = 7

    def __post_init__(self) -> None:
        if self.tenants < 1 or self.objects < 50:
            raise ValueError("a workload needs at least 1 tenant of at least 50 objects")
        if not 0 < self.change <= 0.5:
            raise ValueError("the change fraction must be within (0, 0.5]")

    @property
    def tenant_ids(self) -> list[str]:
        return [f"bench{i:04d}" for i in range(self.tenants)]

    @property
    def companies(self) -> tuple[CompanySpec, ...]:
        rate = self.change / VERSIONS_PER_EVENT
        return tuple(
            CompanySpec(str(REALM_BASE + i), f"Bench Company {i}", size=self.objects, change_rate=rate)
            for i in range(self.tenants)
        )

    def realm(self, tenant_id: str) -> str:
        return self.companies[self.tenant_ids.index(tenant_id)].realm_id

    def to_json(self) -> dict:
        return asdict(self) | {"depths": list(self.depths)}

    @classmethod
    def from_json(cls, data: dict) -> Workload:
        return cls(**(data | {"depths": tuple(data["depths"])}))


@dataclass(frozen=True)
class Paths:
    """Where one benchmark run keeps its files (all under one output folder)."""

    root: Path

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.duckdb"

    @property
    def tenants(self) -> Path:
        return self.root / "tenants.json"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


@dataclass
class Served:
    """The running sandbox and its URL; `advance` is the change step."""

    sandbox: QboSandbox
    base_url: str

    def advance(self, delta: timedelta) -> None:
        self.sandbox.advance(delta)


@contextmanager
def serve(workload: Workload, paths: Paths) -> Iterator[Served]:
    """Build every company (so no contender pays for that) and serve them on 127.0.0.1."""
    sandbox = QboSandbox(workload.companies, seed=workload.seed, state_path=paths.state_dir / "qbo_sandbox.json",
                         rate_limit=None)
    started = time.perf_counter()
    for spec in workload.companies:
        sandbox.live_objects(spec.realm_id, "Account")  # replays the company's history once
    print(f"bench: sandbox built {workload.tenants} x {workload.objects} in {time.perf_counter() - started:.1f}s",
          flush=True)
    server = sandbox_server.start_in_thread(sandbox, "127.0.0.1", 0)
    try:
        yield Served(sandbox, server.base_url)
    finally:
        server.stop()


def entity_names() -> list[str]:
    return [e.name for e in ENTITIES]


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
