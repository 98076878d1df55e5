"""One contender's process: `python -m bench.contender JOB.json RESULT.json` (started by bench.children).

Kinds: `floor` (fetch and parse), `ours` (one phase of the pipeline: initial, incremental,
nochange, rebuild or deepen), `verify`, `queries`, `explain` (DuckDB's EXPLAIN ANALYZE of the
SQL-bound phases), `dlt` (default or tuned), Stripe's `stripe_floor` and `stripe_ours` (initial
or incremental; bench/stripe_rail.py), Plaid's `plaid_floor` and `plaid_ours` (likewise;
bench/plaid_rail.py) and Ramp's `ramp_floor` and `ramp_ours` (likewise; bench/ramp_rail.py).
With `profile` set in the job, the timed part runs under cProfile (imports done first) and its
top functions are written beside the .prof file.
"""

from __future__ import annotations

import cProfile
import importlib
import io
import json
import os
import pstats
import resource
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from bench.workload import Paths, Workload

PREIMPORT = {
    "floor": ("bench.floor",),
    "ours": ("bench.ours", "bench.stopwatch"),
    "verify": ("bench.storage", "dagster", "ledger_pipeline.defs.heads", "ledger_pipeline.rails.qbo.entities"),
    "queries": ("bench.queries",),
    "stripe_floor": ("bench.stripe_rail",),
    "stripe_ours": ("bench.stripe_rail", "bench.stopwatch"),
    "plaid_floor": ("bench.plaid_rail",),
    "plaid_ours": ("bench.plaid_rail", "bench.stopwatch"),
    "ramp_floor": ("bench.ramp_rail",),
    "ramp_ours": ("bench.ramp_rail", "bench.stopwatch"),
}


def main(job_path: str, result_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    workload, paths = Workload.from_json(job["workload"]), Paths(Path(job["root"]))
    kind = job["kind"]
    runner = {"floor": _floor, "ours": _ours, "verify": _verify, "queries": _queries, "dlt": _dlt,
              "explain": _explain, "stripe_floor": _stripe_floor, "stripe_ours": _stripe_ours,
              "plaid_floor": _plaid_floor, "plaid_ours": _plaid_ours, "ramp_floor": _ramp_floor,
              "ramp_ours": _ramp_ours}[kind]
    for module in PREIMPORT.get(kind, ()):  # imports are not what a profile should show
        importlib.import_module(module)
    result = _profiled(job.get("profile"), lambda: runner(job, workload, paths))
    result["own_peak_rss_mb"] = _own_peak_rss_mb()
    Path(result_path).write_text(json.dumps(result, indent=2, default=str))
    return 0


def _own_peak_rss_mb() -> float | None:
    """The peak resident memory of this process since its exec, or of any process it waited for (dlt's workers).
    The parent's rusage of this process cannot tell it: the kernel starts it from the benchmark driver's memory,
    copied at the fork before exec, so every contender smaller than the driver would report the driver's."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    own_kb = int(status.split("VmHWM:", 1)[1].split()[0])
    return round(max(own_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024, 1)


def _profiled(profile_path: str | None, work: Callable[[], dict]) -> dict:
    if not profile_path:
        return work()
    profiler = cProfile.Profile()
    result = profiler.runcall(work)
    profiler.dump_stats(profile_path)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)
    Path(profile_path).with_suffix(".txt").write_text(text.getvalue())
    return result


def _floor(job: dict, workload: Workload, paths: Paths) -> dict:
    from bench.floor import fetch_and_parse

    return fetch_and_parse(workload, paths, job["sandbox_url"])


def _stripe_floor(job: dict, workload: Workload, paths: Paths) -> dict:
    from bench.stripe_rail import fetch_and_parse

    return fetch_and_parse([tuple(t) for t in job["stripe_tenants"]], job["stripe_url"])


def _stripe_ours(job: dict, workload: Workload, paths: Paths) -> dict:
    from bench import stripe_rail

    tenants, ledger = [tuple(t) for t in job["stripe_tenants"]], Path(job["stripe_ledger"])
    if job["phase"] == "incremental":  # the clock moves through the QBO sandbox's admin endpoint: one clock
        return stripe_rail.incremental(tenants, job["stripe_url"], job["sandbox_url"], ledger)
    return stripe_rail.initial(tenants, job["stripe_url"], ledger)


def _plaid_tenants(job: dict) -> list[tuple[str, list[str]]]:
    return [(tenant_id, list(item_ids)) for tenant_id, item_ids in job["plaid_tenants"]]


def _plaid_floor(job: dict, workload: Workload, paths: Paths) -> dict:
    from bench.plaid_rail import fetch_and_parse

    return fetch_and_parse(_plaid_tenants(job), job["plaid_url"])


def _plaid_ours(job: dict, workload: Workload, paths: Paths) -> dict:
    from bench import plaid_rail

    tenants, ledger = _plaid_tenants(job), Path(job["plaid_ledger"])
    if job["phase"] == "incremental":  # the clock moves through the QBO sandbox's admin endpoint: one clock
        return plaid_rail.incremental(tenants, job["plaid_url"], job["sandbox_url"], ledger)
    return plaid_rail.initial(tenants, job["plaid_url"], ledger)


def _ramp_tenants(job: dict) -> list[tuple[str, str]]:
    return [(tenant_id, business_id) for tenant_id, business_id in job["ramp_tenants"]]


def _ramp_floor(job: dict, workload: Workload, paths: Paths) -> dict:
    from bench.ramp_rail import fetch_and_parse, token_dir

    return fetch_and_parse(_ramp_tenants(job), job["ramp_url"], token_dir(paths))


def _ramp_ours(job: dict, workload: Workload, paths: Paths) -> dict:
    from bench import ramp_rail

    tenants, ledger, tokens = _ramp_tenants(job), Path(job["ramp_ledger"]), ramp_rail.token_dir(paths)
    if job["phase"] == "incremental":  # the clock moves through the QBO sandbox's admin endpoint: one clock
        return ramp_rail.incremental(tenants, job["ramp_url"], tokens, job["sandbox_url"], ledger)
    return ramp_rail.initial(tenants, job["ramp_url"], tokens, ledger)


def _ours(job: dict, workload: Workload, paths: Paths) -> dict:
    from bench import ours
    from bench.stopwatch import instrumented
    from ledger_pipeline.defs.qbo.checks import whole_book_ops

    defs = ours.definitions(paths, job["sandbox_url"])
    phase = job["phase"]
    with ours.open_instance(paths, job["dagster_storage"]) as instance, instrumented() as watch:
        if phase == "initial":
            instance.wipe()  # a Postgres database keeps the previous benchmark's runs (sqlite files start empty)
            ours.register_tenants(workload, paths, instance)
        if phase == "rebuild":
            rebuilt = ours.rebuilt_keys(defs, workload.tenant_ids)
            run = ours.sync_all(defs, instance, workload.tenant_ids, watch,
                                run_config=ours.full_rebuild_config(rebuilt), selection=rebuilt)
            return {"runs": [run.to_json()], "log_rows": _log_rows(paths)}
        figures: dict = {}
        if phase == "deepen":  # the log grows by steps - 1 direct syncs, then one full run like every phase
            figures["direct_step_seconds"] = ours.deepen_directly(workload, paths, job["sandbox_url"],
                                                                  job["steps"] - 1)
            ours.advance_clock(job["sandbox_url"])
        # Each deepened log's run compares the whole book with QBO, as the nightly audit does: the last run is whole.
        whole_book = {"ops": whole_book_ops()} if phase == "deepen" else None
        run = ours.sync_all(defs, instance, workload.tenant_ids, watch, run_config=whole_book)
        return figures | {"runs": [run.to_json()], "finished_at": datetime.now().astimezone().isoformat(),
                          "log_rows": _log_rows(paths)}


def _log_rows(paths: Paths) -> int:
    from ledger_pipeline.lib import warehouse

    conn = warehouse.connect(paths.ledger, read_only=True)
    try:
        return conn.execute("select count(*) from raw.entity_log").fetchone()[0]
    finally:
        conn.close()


def _verify(job: dict, workload: Workload, paths: Paths) -> dict:
    import dagster as dg

    from bench.storage import open_instance
    from ledger_pipeline.defs.heads import recorded_heads
    from ledger_pipeline.lib import warehouse
    from ledger_pipeline.lib.verify import compare_heads, verify
    from ledger_pipeline.rails.qbo.entities import ENTITIES

    # QBO's log assets' keys (defs/log_assets.py names them so), without importing the definitions: their imports
    # cost this process two seconds, half of it.
    log_keys = [dg.AssetKey(["raw", f"qbo_{e.table}"]) for e in ENTITIES]

    conn = warehouse.connect(paths.ledger, read_only=True)
    try:
        started = time.perf_counter()
        report = verify(conn)
        verify_seconds = time.perf_counter() - started
        with open_instance(paths, job["dagster_storage"]) as instance:
            started = time.perf_counter()
            heads = recorded_heads(instance, log_keys)
            head_problems = compare_heads(conn, heads)
            heads_seconds = time.perf_counter() - started
    finally:
        conn.close()
    return {
        "seconds": round(verify_seconds, 4), "rows": report.rows, "chains": report.chains,
        "rows_per_second": round(report.rows / verify_seconds) if verify_seconds else None,
        "problems": [str(p) for p in report.problems], "heads_compared": len(heads),
        "head_problems": head_problems, "heads_seconds": round(heads_seconds, 4),
    }  # fmt: skip


def _queries(job: dict, workload: Workload, paths: Paths) -> dict:
    from bench.queries import run_queries

    return run_queries(paths, workload.tenant_ids[0], datetime.fromisoformat(job["as_of"]))


def _explain(job: dict, workload: Workload, paths: Paths) -> dict:
    from bench.explain import explain_all

    return explain_all(paths, workload.tenant_ids[0], datetime.fromisoformat(job["as_of"]), Path(job["out_dir"]))


def _dlt(job: dict, workload: Workload, paths: Paths) -> dict:
    from bench.dlt_load import load

    tokens = json.loads(os.environ["BENCH_QBO_ACCESS_TOKENS"])  # passed in the environment, never written down
    return load(workload, paths, job["sandbox_url"], job["dlt_mode"], tokens)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
