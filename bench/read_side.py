"""`python -m bench.read_side`: what publishing the read side costs in `make demo`'s syncs, and what analysts' queries
cost on it next to the ledger. Prints two tables, writes the figures to a JSON file; exits 1 when the incremental
sync's publication is 5 % of its time or more.

Three phases of the demo's tenants, one run each: the initial sync, an incremental one after the sandbox clock
moved (the demo's days), and one with nothing new. Per run, Dagster's records give the run's and the publication
step's seconds and the step's metadata (files written and reused). Then every query of docs/analysts.md runs on
the ledger and on the read side (`ledger-pipeline analyst-db`), best of three, from a fresh read-only connection.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from bench.children import REPO
from bench.recon_cost import RunFailed, demo_sync_job, prepare, report
from ledger_pipeline import demo
from ledger_pipeline.commands import dagster_instance
from ledger_pipeline.lib import settings
from ledger_pipeline.lib.read_side.layout import ReadSide
from ledger_pipeline.rails.qbo.sandbox import shared_sandbox

STEP = "read_side__generation"
PROMISED_SHARE = 0.05  # of the incremental sync's time
PHASES = (("initial", "1: initial sync"), ("incremental", "2: incremental sync"), ("no_change", "3: nothing new"))
QUERIES = re.findall(r"```sql\n(.*?)```", (REPO / "docs" / "analysts.md").read_text(), flags=re.DOTALL)
PARAM = re.compile(r"\$([A-Za-z_]\w*)")
DEFAULT_OUT = REPO / "bench" / "out-read"
DEFAULT_RESULTS = REPO / "bench" / "results-read.json"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.read_side", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="working folder (wiped first)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results file")
    parser.add_argument("--scale", type=float, default=1.0, help="sandbox_scale (1 = the demo's sizes)")
    parser.add_argument("--tenants", type=int, default=None, help="only the first N demo tenants (a smoke run)")
    return parser.parse_args(argv)


def run_figures(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance) -> dict:
    """One run's seconds and its publication step's seconds and metadata, from Dagster's records."""
    if not result.success:
        raise RunFailed(f"run {result.run_id[:8]} failed; its events are in {instance.root_directory}")
    stats = instance.get_run_stats(result.run_id)
    (step,) = instance.get_run_step_stats(result.run_id, [STEP])
    (event,) = [e for e in result.get_asset_materialization_events() if e.step_key == STEP]
    metadata = event.step_materialization_data.materialization.metadata
    return {"run_id": result.run_id, "run_seconds": stats.end_time - stats.start_time,
            "publish_seconds": step.end_time - step.start_time,
            **{k: metadata[k].value for k in ("generation", "files_written", "files_reused", "bytes_written")}}


def phase(job: dg.JobDefinition, instance: dg.DagsterInstance, tenant_ids: list[str]) -> dict:
    runs = []
    for tenant_id in tenant_ids:
        result = job.execute_in_process(partition_key=tenant_id, instance=instance, run_config=demo.QUIET,
                                        raise_on_error=False)
        runs.append({"tenant_id": tenant_id} | run_figures(result, instance))
    run_s, publish_s = sum(r["run_seconds"] for r in runs), sum(r["publish_seconds"] for r in runs)
    return {"runs": runs, "run_seconds": run_s, "publish_seconds": publish_s, "publish_share": publish_s / run_s,
            "files_written": sum(r["files_written"] for r in runs),
            "files_reused": sum(r["files_reused"] for r in runs)}


def query_seconds(path: Path, sql: str, values: dict, *, repeats: int = 3) -> float:
    """Best of `repeats` of one query from a fresh read-only connection (opening it included: an analyst's cost)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        conn = duckdb.connect(str(path), read_only=True)
        try:
            conn.execute("set TimeZone = 'UTC'")
            conn.execute(sql, {name: values[name] for name in set(PARAM.findall(sql))}).fetchall()
        finally:
            conn.close()
        best = min(best, time.perf_counter() - started)
    return best


def queries(ledger: Path, analyst_db: Path, tenant_id: str) -> list[dict]:
    conn = duckdb.connect(str(ledger), read_only=True)
    try:
        bill = conn.execute("select entity_id from raw.qbo_bills where tenant_id = ? and op = 'updated' order by seq "
                            "limit 1", [tenant_id]).fetchall()[0][0]  # fmt: skip
    finally:
        conn.close()
    values = {"tenant": tenant_id, "bill_id": bill, "month_end": datetime.now(UTC)}
    return [{"query": i, "first_line": sql.strip().splitlines()[0][:60],
             "ledger_ms": query_seconds(ledger, sql, values) * 1000,
             "read_side_ms": query_seconds(analyst_db, sql, values) * 1000}
            for i, sql in enumerate(QUERIES, start=1)]  # fmt: skip


def measure(scale: float, count: int | None) -> dict:
    figures: dict = {}
    with dagster_instance() as instance:
        job, tenant_ids = demo_sync_job(instance, scale, count)
        figures["initial"] = phase(job, instance, tenant_ids)
        shared_sandbox(settings.state_dir(), scale).advance(timedelta(days=demo.CHANGE_DAYS))
        figures["incremental"] = phase(job, instance, tenant_ids)
        figures["no_change"] = phase(job, instance, tenant_ids)
    ledger = settings.duckdb_path()
    read_side = ReadSide(settings.read_dir(ledger))
    size = sum(p.stat().st_size for p in read_side.root.rglob("*") if p.is_file())
    return {"workload": {"tenants": tenant_ids, "sandbox_scale": scale, "change_days": demo.CHANGE_DAYS},
            "phases": figures, "promised_share": PROMISED_SHARE,
            "incremental_within_promise": figures["incremental"]["publish_share"] < PROMISED_SHARE,
            "read_side_bytes": size, "ledger_bytes": ledger.stat().st_size,
            "queries": queries(ledger, read_side.entry, tenant_ids[0])}  # fmt: skip


def table(figures: dict) -> str:
    lines = [f"{'phase':22} {'run s':>8} {'publish s':>9} {'share':>6} {'files written':>13} {'reused':>7}"]
    for key, label in PHASES:
        p = figures["phases"][key]
        lines.append(f"{label:22} {p['run_seconds']:8.2f} {p['publish_seconds']:9.2f} {p['publish_share']:6.1%} "
                     f"{p['files_written']:13,} {p['files_reused']:7,}")  # fmt: skip
    lines.append(f"read side {figures['read_side_bytes'] / 1e6:.1f} MB, ledger {figures['ledger_bytes'] / 1e6:.1f} MB")
    lines.append(f"\n{'query':6} {'ledger ms':>10} {'read side ms':>13}  first line")
    for q in figures["queries"]:
        lines.append(f"{q['query']:<6} {q['ledger_ms']:10.1f} {q['read_side_ms']:13.1f}  {q['first_line']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    prepare(args.out.resolve())
    os.environ["LEDGER_READ_DIR"] = str(args.out.resolve() / "read")
    try:
        figures = measure(args.scale, args.tenants)
    except RunFailed as exc:
        print(f"bench.read_side: FAILED - {exc}", file=sys.stderr)
        return 1
    broken = None if figures["incremental_within_promise"] else "publishing is 5 % or more of the incremental sync"
    return report("bench.read_side", figures, args.results, table(figures), broken)


if __name__ == "__main__":
    sys.exit(main())
