"""What each rail's part of the benchmark does alike: serve its sandbox over the QBO sandbox on loopback, build
the memory comparison's companies of N and scale x N objects, open its ledger, move the shared clock between the
incremental steps, and read a contender's resident memory."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx

from bench.workload import Workload
from ledger_pipeline.lib import ledger_views, warehouse
from ledger_pipeline.rails.qbo.sandbox import CompanySpec, QboSandbox

# The incremental steps of every rail: a sync with nothing changed, then after the shared clock moved.
STEPS = (("nothing changed", timedelta(0)), ("small", timedelta(days=1)), ("large", timedelta(days=7)))


@contextmanager
def served(sandbox: Any, warm: Callable[[Any], None] | None, start_in_thread: Callable[..., Any]) -> Iterator[str]:
    """`sandbox` on 127.0.0.1 (its rail's `server.start_in_thread`), read once first by `warm` if given (the
    indexes and render caches are built for nobody's clock); yields the base URL."""
    if warm is not None:
        warm(sandbox)
    server = start_in_thread(sandbox, "127.0.0.1", 0)
    try:
        yield server.base_url
    finally:
        server.stop()


@dataclass(frozen=True)
class MemorySizes:
    """The memory comparison's sandbox: one company of N and one of scale x N; what to read of each."""

    url: str
    small: Any  # the rail's tenant description: (tenant id, account id or item ids)
    large: Any
    build_seconds: float


def memory_companies(workload: Workload, scale: int, realm_base: int, title: str
                     ) -> tuple[QboSandbox, tuple[CompanySpec, ...], float]:  # fmt: skip
    """A QBO sandbox of its own (own clock) with a company of N and one of scale x N objects, built; the seconds
    the build took."""
    rate = workload.companies[0].change_rate
    specs = tuple(CompanySpec(str(realm_base + i), f"{title} {size}", size=size, change_rate=rate)
                  for i, size in enumerate((workload.objects, workload.objects * scale)))  # fmt: skip
    started = time.perf_counter()
    qbo = QboSandbox(specs, seed=workload.seed, rate_limit=None)
    for spec in specs:
        qbo.live_objects(spec.realm_id, "Account")
    return qbo, specs, round(time.perf_counter() - started, 2)


def rss_mb() -> float:
    """This process's resident memory now, MB."""
    from bench.stopwatch import _rss_mb as now

    return round(now(), 1)


@contextmanager
def ledger(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The ledger as `LedgerDuckDB.ledger()` opens it for writing (without importing Dagster for it)."""
    conn = warehouse.connect(path)
    try:
        ledger_views.ensure(conn)
        yield conn
    finally:
        conn.close()


def advance(qbo_url: str, delta: timedelta) -> None:
    """Move the shared clock (the QBO sandbox's admin endpoint: every rail's sandbox reads the same clock)."""
    body = {"advance_seconds": int(delta.total_seconds())}
    httpx.post(f"{qbo_url}/_sandbox/clock", json=body, timeout=60).raise_for_status()


def run_phases(bench: Any, rail: str, title: str, tenants: list, ledger_path: Path, serve: Callable[..., Any],
               serve_memory_sizes: Callable[..., Any], warm: bool, memory_scale: int, max_objects: int) -> None:
    """A rail's floor, first sync, incremental steps and memory runs (`<rail>_floor`, `<rail>_initial`,
    `<rail>_incremental`, `<rail>_memory_n` / `_scaled`), each a contender of its own (kinds `<rail>_floor` and
    `<rail>_ours`), recorded by `bench` (bench.run.Bench). `serve(qbo, workload, warm)` serves the rail's sandbox
    for the bench tenants; `serve_memory_sizes(workload, scale, warm)` one of its own for the memory runs."""
    workload, paths = bench.workload, bench.paths
    job = {f"{rail}_tenants": tenants, f"{rail}_ledger": str(ledger_path)}
    with serve(bench.served.sandbox, workload, warm) as url:
        bench.record(f"{rail}_floor", bench.child(f"{rail}_floor", f"{rail}_floor", **{f"{rail}_url": url}, **job))
        for phase in ("initial", "incremental"):
            bench.record(f"{rail}_{phase}", bench.child(f"{rail}_{phase}", f"{rail}_ours", phase=phase,
                                                        **{f"{rail}_url": url}, **job))  # fmt: skip
    if memory_scale < 2:
        return
    if workload.objects * memory_scale > max_objects:
        print(f"bench: {title} memory at {memory_scale} x {workload.objects:,} objects skipped (more than "
              f"{max_objects:,}; --{rail}-memory-scale)", flush=True)
        return
    with serve_memory_sizes(workload, memory_scale, warm) as sizes:
        print(f"bench: {title} memory sandbox built (1 x {workload.objects:,} and 1 x "
              f"{workload.objects * memory_scale:,}) in {sizes.build_seconds:.1f}s", flush=True)
        for key, tenant, objects in ((f"{rail}_memory_n", sizes.small, workload.objects),
                                     (f"{rail}_memory_scaled", sizes.large, workload.objects * memory_scale)):
            entry = bench.record(key, bench.child(
                key, f"{rail}_ours", phase="initial", **{f"{rail}_url": sizes.url, f"{rail}_tenants": [tenant],
                                                         f"{rail}_ledger": str(paths.root / f"{key}.duckdb")}))
            entry["qbo_objects"] = objects
