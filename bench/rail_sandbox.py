"""What each rail's part of the benchmark does alike: serve its sandbox over the QBO sandbox on loopback, build
the memory comparison's companies of N and scale x N objects, open its ledger, sync every entity of every tenant
as the log assets do, move the shared clock between the incremental steps, and read a contender's resident
memory."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import duckdb
import httpx

from bench.workload import Workload
from ledger_pipeline.lib import ledger_views, warehouse
from ledger_pipeline.lib.sync import RailSession, close_sync, syncs_ahead
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


def sync_all(conn: duckdb.DuckDBPyConnection, rail: str, entities: Iterable[Any], tenant_ids: list[str],
             session_for: Callable[[str], RailSession], run_id: str) -> dict:
    """Our extract + log of every entity of every tenant as the rail's log assets run it, without Dagster: entity
    by entity in the assets' order (one step each), the tenants' syncs started ahead of their turn
    (`lib.sync.syncs_ahead`), so the figure is the pipeline's own code path."""
    appended = pages = swept = 0
    started = time.perf_counter()
    for entity in entities:
        with closing(syncs_ahead(conn, rail, entity, tenant_ids, session_for)) as ahead:
            for _, taken in ahead:
                sync = taken()
                try:
                    result = sync.run(conn, run_id=run_id, observed_at=datetime.now(UTC))
                finally:
                    close_sync(sync)
                appended += result.stats.appended
                pages += result.pages
                swept += result.swept
    return {"seconds": round(time.perf_counter() - started, 4), "appended": appended, "pages": pages,
            "swept": swept}


Sync = Callable[[duckdb.DuckDBPyConnection, str], dict]  # (ledger, run id) -> the figures of `sync_all`


def log_rows(conn: duckdb.DuckDBPyConnection, rail: str) -> dict[str, int]:
    """The rail's log rows by entity: what the gate compares with the floor's objects."""
    rows = conn.execute("select entity_type, count(*) from raw.entity_log where rail = ? group by entity_type",
                        [rail]).fetchall()
    return {name: n for name, n in sorted(rows)}


def initial(ledger_path: Path, rail: str, sync: Sync) -> dict:
    """The first sync of every tenant into a fresh ledger (the memory runs: one tenant), with the rows it logged
    and the process's memory before it (so the peak can be told from the imports)."""
    with ledger(ledger_path) as conn:
        rss_before = rss_mb()
        done = sync(conn, f"bench-{rail}-initial")
        by_entity = log_rows(conn, rail)
        return done | {"log_rows": sum(by_entity.values()), "log_rows_by_entity": by_entity,
                       "rss_before_mb": rss_before}


class Requests(Protocol):
    """What a rail counts of its client's traffic in the contender's process, step by step."""

    def counting(self) -> AbstractContextManager[Any]: ...

    def reset(self) -> None: ...

    def figures(self) -> dict: ...


def incremental(ledger_path: Path, rail: str, qbo_url: str, sync: Sync, requests: Requests) -> dict:
    """After the first sync: a sync with nothing changed, then one after each clock step. Rows logged are the
    changes a rail without events has to show for a step, so the cost is given per row, and beyond what a sync
    with nothing changed costs (the part that should grow with the changes)."""
    steps = []
    with ledger(ledger_path) as conn, requests.counting():
        for label, delta in STEPS:
            if delta:
                advance(qbo_url, delta)
            requests.reset()
            before = log_rows(conn, rail)
            done = sync(conn, f"bench-{rail}-{label.replace(' ', '-')}")
            after = log_rows(conn, rail)
            added = {name: after.get(name, 0) - before.get(name, 0) for name in after}
            rows = sum(added.values())
            steps.append(done | {"step": label, "clock_step_hours": delta.total_seconds() / 3600} | requests.figures()
                         | {"log_rows_added": rows, "log_rows_added_by_entity": added,
                            "ms_per_row": round(done["seconds"] / rows * 1000, 2) if rows else None})  # fmt: skip
    fixed = steps[0]["seconds"]
    for step in steps[1:]:
        rows = step["log_rows_added"]
        step["ms_per_row_beyond_nothing_changed"] = round((step["seconds"] - fixed) / rows * 1000, 2) if rows else None
    return {"steps": steps}


def first_syncs(bench: Any, rail: str, url: str, job: dict, ledger_path: Path) -> None:
    """The rail's floor and our first sync, alternated `bench.rail_rounds` times (each first sync into a fresh ledger;
    the last one's is kept for the incremental steps); the run of middle seconds of each is recorded as
    `<rail>_floor` and `<rail>_initial`, with every round's seconds beside it."""
    rounds = bench.rail_rounds
    floors, initials = [], []
    for n in range(1, rounds + 1):
        suffix = f"_round{n}" if rounds > 1 else ""
        ledger = ledger_path if n == rounds else ledger_path.with_name(f"{ledger_path.stem}{suffix}.duckdb")
        floors.append(bench.child(f"{rail}_floor{suffix}", f"{rail}_floor", **{f"{rail}_url": url}, **job))
        initials.append(bench.child(f"{rail}_initial{suffix}", f"{rail}_ours", phase="initial",
                                    **{f"{rail}_url": url}, **job | {f"{rail}_ledger": str(ledger)}))  # fmt: skip
    for key, children in ((f"{rail}_floor", floors), (f"{rail}_initial", initials)):
        middle = sorted(children, key=lambda child: child.result["seconds"])[len(children) // 2]
        bench.record(key, middle)["rounds_seconds"] = [child.result["seconds"] for child in children]


def run_phases(bench: Any, rail: str, title: str, tenants: list, ledger_path: Path, serve: Callable[..., Any],
               serve_memory_sizes: Callable[..., Any], warm: bool, memory_scale: int, max_objects: int) -> None:
    """A rail's floor, first sync, incremental steps and memory runs (`<rail>_floor`, `<rail>_initial`,
    `<rail>_incremental`, `<rail>_memory_n` / `_scaled`), each a contender of its own (kinds `<rail>_floor` and
    `<rail>_ours`), recorded by `bench` (bench.run.Bench). `serve(qbo, workload, warm)` serves the rail's sandbox
    for the bench tenants; `serve_memory_sizes(workload, scale, warm)` one of its own for the memory runs."""
    workload, paths = bench.workload, bench.paths
    job = {f"{rail}_tenants": tenants, f"{rail}_ledger": str(ledger_path)}
    with serve(bench.served.sandbox, workload, warm) as url:
        first_syncs(bench, rail, url, job, ledger_path)
        bench.record(f"{rail}_incremental", bench.child(f"{rail}_incremental", f"{rail}_ours", phase="incremental",
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
