"""`python -m bench.recon_cost`: what the reconciliation (recon tables and cross-rail marts) costs in `make demo`'s
two syncs, against the promise "under 10 % of the initial sync, and proportional to the changes in the incremental
one"; in a third sync with nothing changed (the fixed part: what a run costs whatever changed); and in a fourth after
a larger change (is what lies beyond the fixed part proportional to the versions appended?). Prints one table, writes
the figures to a JSON file; exits 1 when phase 1's share is 10 % or more.

The demo's own tenants, registration, partitions and run config are used (ledger_pipeline/demo.py), in a working
folder of its own, so the figures are those of the syncs `make demo` runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg

from bench.children import REPO
from bench.storage import instance_settings
from bench.workload import write_json
from ledger_pipeline import demo
from ledger_pipeline.commands import add_partition, dagster_instance
from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.defs import rails as rail_defs
from ledger_pipeline.defs.models.assets import RECONCILIATION_STEP
from ledger_pipeline.lib import settings
from ledger_pipeline.lib.tenants import TenantRegistry
from ledger_pipeline.rails.qbo.sandbox import shared_sandbox

# The step that refreshes the cross-rail layer (core, recon) and the marts built over every rail.
RECON_STEPS = (RECONCILIATION_STEP,)
PROMISED_SHARE = 0.10
MATCHING = ("objects", "objects_changed", "objects_rematched")  # recon.links' metadata: what was matched again
PHASES = (("phase1_initial", "1: initial sync"), ("phase2_incremental", "2: incremental sync"),
          ("phase3_nochange", "3: nothing changed"), ("phase4_larger", "4: larger change"))
CHANGED = ("phase1_initial", "phase2_incremental", "phase4_larger")  # the phases that appended versions
LARGER_DAYS = 10  # the clock's move before phase 4
DEFAULT_OUT = REPO / "bench" / "out-recon"
DEFAULT_RESULTS = REPO / "bench" / "results-recon.json"


class RunFailed(RuntimeError):
    """A sync run failed: its steps' seconds would not be the reconciliation's cost."""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.recon_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="working folder (wiped first)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results file")
    parser.add_argument("--days", type=int, default=demo.CHANGE_DAYS,
                        help="days the sandbox clock moves between the two syncs (the demo's by default)")
    parser.add_argument("--larger-days", type=int, default=LARGER_DAYS,
                        help="days the clock moves before phase 4, a larger change than phase 2's")
    parser.add_argument("--scale", "--tenants-scale", dest="scale", type=float, default=1.0,
                        help="sandbox_scale: multiplies the demo businesses' sizes (1 = the demo's)")
    parser.add_argument("--tenants", type=int, default=None,
                        help="only the first N demo tenants (a quicker smoke run; default: all, as the demo)")
    return parser.parse_args(argv)


def prepare(out: Path) -> None:
    """Wipe the working folder and point the pipeline's settings and DAGSTER_HOME at it: the developer's ledger,
    registry and Dagster runs stay untouched."""
    shutil.rmtree(out, ignore_errors=True)
    home = out / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(instance_settings("sqlite"), home / "dagster.yaml")
    os.environ.update(DAGSTER_HOME=str(home), LEDGER_DUCKDB_PATH=str(out / "ledger.duckdb"),
                      LEDGER_STATE_DIR=str(out / "state"), LEDGER_TENANTS_PATH=str(out / "tenants.json"))


def definitions(scale: float) -> dg.Definitions:
    """The demo's definitions (every resource at its defaults, paths from the environment), with every rail's
    sandbox at `scale`."""
    return build_definitions(**{name: type(resource)(sandbox_scale=scale)
                                for name, resource in rail_defs.default_resources().items()})


def demo_sync_job(instance: dg.DagsterInstance, scale: float, count: int | None) -> tuple[dg.JobDefinition, list[str]]:
    """The demo's tenants (the first `count`) registered with their partitions, and the sync job at `scale`."""
    registry = TenantRegistry(settings.tenants_path())
    tenants = demo.demo_tenants()[:count]
    for tenant in tenants:
        demo.register_demo_tenant(registry, tenant)
        add_partition(tenant.tenant_id, instance)
    return definitions(scale).resolve_job_def("sync_tenants"), [t.tenant_id for t in tenants]


def run_figures(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance) -> dict:
    """One run's figures from Dagster's records: the run's and each recon step's start-to-end seconds, the versions
    the log assets appended (as the demo counts them) and the rows each recon step left."""
    if not result.success:
        failed = ", ".join(e.step_key for e in result.get_step_failure_events()) or "the run itself"
        raise RunFailed(f"run {result.run_id[:8]} failed ({failed}); its events are in {instance.root_directory}")
    stats = instance.get_run_stats(result.run_id)
    steps = {s.step_key: s.end_time - s.start_time
             for s in instance.get_run_step_stats(result.run_id, list(RECON_STEPS))
             if s.start_time is not None and s.end_time is not None}
    if missing := [step for step in RECON_STEPS if step not in steps]:
        raise RuntimeError(f"run {result.run_id[:8]} has no timed step {', '.join(missing)}: did the job change?")
    appended, rows, table_seconds, matching = 0, {}, {}, {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata = materialization.metadata
        if "appended" in metadata and "rail" in metadata:
            appended += metadata["appended"].value
        if event.step_key in RECON_STEPS and "dagster/row_count" in metadata:
            table = materialization.asset_key.to_user_string()
            rows[table] = metadata["dagster/row_count"].value
            table_seconds[table] = metadata["seconds"].value
        if event.step_key in RECON_STEPS and "objects_rematched" in metadata:
            matching = {name: metadata[name].value for name in MATCHING}
    return {"run_id": result.run_id, "run_seconds": stats.end_time - stats.start_time,
            "recon_step_seconds": steps, "recon_table_seconds": table_seconds, "appended": appended,
            "recon_rows": rows, "matching": matching}


def sync_phase(job: dg.JobDefinition, instance: dg.DagsterInstance, tenant_ids: list[str]) -> dict:
    """`sync_tenants` once per tenant, as the demo runs it; the runs' figures and their sums."""
    runs = []
    for tenant_id in tenant_ids:
        started = time.perf_counter()
        result = job.execute_in_process(partition_key=tenant_id, instance=instance, run_config=demo.QUIET,
                                        raise_on_error=False)
        runs.append({"tenant_id": tenant_id, "call_seconds": time.perf_counter() - started}
                    | run_figures(result, instance))
    run_s = sum(r["run_seconds"] for r in runs)
    recon_s = sum(sum(r["recon_step_seconds"].values()) for r in runs)
    appended = sum(r["appended"] for r in runs)
    by_table = {table: sum(r["recon_table_seconds"].get(table, 0.0) for r in runs)
                for table in runs[0]["recon_table_seconds"]}
    return {"runs": runs, "load_average_after": os.getloadavg()[0], "run_seconds": run_s, "recon_seconds": recon_s,
            "recon_share": recon_s / run_s, "appended": appended,
            "recon_seconds_per_version": recon_s / appended if appended else None,
            "recon_sql_seconds_by_table": by_table,
            "recon_rows": sum(sum(r["recon_rows"].values()) for r in runs),
            "matching": {name: sum(r["matching"].get(name, 0) for r in runs) for name in MATCHING}}


def measure(days: int, larger_days: int, scale: float, count: int | None) -> dict:
    """Register the demo tenants (the first `count`), sync them, move the sandbox clock `days` on, sync them again,
    once more with the clock where it was, and once after it moves `larger_days` on."""
    phases = {}
    with dagster_instance() as instance:
        job, tenant_ids = demo_sync_job(instance, scale, count)
        # advance_shared_clock's sandbox at the run's scale: the state file belongs to the companies' sizes
        sandbox = shared_sandbox(settings.state_dir(), scale)
        phases["phase1_initial"] = sync_phase(job, instance, tenant_ids)
        sandbox.advance(timedelta(days=days))
        phases["phase2_incremental"] = sync_phase(job, instance, tenant_ids)
        # the clock where it was: what a reconciliation costs whatever changed (its step, the tables recomputed whole)
        phases["phase3_nochange"] = sync_phase(job, instance, tenant_ids)
        sandbox.advance(timedelta(days=larger_days))
        phases["phase4_larger"] = sync_phase(job, instance, tenant_ids)
    first, second, idle, larger = (phases[key] for key, _ in PHASES)
    for phase in (second, larger):
        phase["beyond_fixed"] = _beyond(phase, idle)
    return {
        "workload": {"tenants": tenant_ids, "sandbox_scale": scale, "change_days": days,
                     "larger_change_days": larger_days, "recon_steps": RECON_STEPS},
        "phases": phases, "promised_share": PROMISED_SHARE,
        "phase1_within_promise": first["recon_share"] < PROMISED_SHARE,
        "phase2_vs_phase1": _versus(second, first), "phase4_vs_phase1": _versus(larger, first),
        "phase4_vs_phase2_beyond_fixed": _versus_beyond(larger, second),
    }


def _sql_seconds(phase: dict) -> float:
    return sum(phase["recon_sql_seconds_by_table"].values())


def _beyond(phase: dict, idle: dict) -> dict:
    """An incremental phase's reconciliation seconds (the step's, and its SQL's) beyond those of the sync in which
    nothing changed, as measured (noise can make them negative), and per version appended."""
    step = phase["recon_seconds"] - idle["recon_seconds"]
    sql = _sql_seconds(phase) - _sql_seconds(idle)
    return {"step_seconds": step, "sql_seconds": sql,
            "step_us_per_version": 1e6 * step / phase["appended"], "sql_us_per_version": 1e6 * sql / phase["appended"]}


def _versus(phase: dict, first: dict) -> dict:
    """An incremental phase against phase 1, as the promise reads: its share of the versions and of the seconds."""
    return {"appended": phase["appended"] / first["appended"],
            "recon_seconds": phase["recon_seconds"] / first["recon_seconds"]}


def _versus_beyond(larger: dict, smaller: dict) -> dict:
    """Two incremental phases beyond the fixed part: proportional to the changes when the seconds grow by the factor
    the versions do (None where either phase's seconds beyond are not positive: the noise is larger than they are)."""
    def ratio(name: str) -> float | None:
        big, base = larger["beyond_fixed"][name], smaller["beyond_fixed"][name]
        return big / base if big > 0 and base > 0 else None

    return {"appended": larger["appended"] / smaller["appended"], "step_seconds": ratio("step_seconds"),
            "sql_seconds": ratio("sql_seconds")}


def _factor(value: float | None) -> str:
    return "n/a (not above phase 3 in both)" if value is None else f"{value:.2f}x"


def _per_version(phase: dict) -> str:
    per = phase["recon_seconds_per_version"]
    return f"{per * 1000:.3f} ms" if per is not None else "n/a"


def table(figures: dict) -> str:
    """Run and recon seconds are sums over the phase's runs (one per tenant), from Dagster's run and step records;
    load is the machine's 1-minute load average at the end of the phase (others' work shows there)."""
    phases = figures["phases"]
    lines = [f"{'phase':20} {'run s':>8} {'recon s':>8} {'share':>6} {'appended':>9} {'recon rows':>10} "
             f"{'recon/version':>13} {'beyond 3: s':>11} {'us/version':>10} {'SQL us/v':>8} {'load':>5}  verdict"]
    for key, label in PHASES:
        p = phases[key]
        beyond = p.get("beyond_fixed")
        if key == "phase1_initial":
            verdict = f"{'under' if figures['phase1_within_promise'] else 'NOT under'} the 10 % line"
        elif beyond:
            ratio = figures[f"{key.split('_')[0]}_vs_phase1"]
            verdict = (f"{ratio['recon_seconds']:.0%} of phase 1's seconds for {ratio['appended']:.0%} of its "
                       "versions")
        else:
            verdict = "nothing appended: the fixed part, what any run costs"
        extra = (f"{beyond['step_seconds']:11.2f} {beyond['step_us_per_version']:10.0f} "
                 f"{beyond['sql_us_per_version']:8.0f}" if beyond else f"{'':11} {'':10} {'':8}")
        lines.append(f"{label:20} {p['run_seconds']:8.2f} {p['recon_seconds']:8.2f} {p['recon_share']:6.1%} "
                     f"{p['appended']:9,} {p['recon_rows']:10,} {_per_version(p):>13} {extra} "
                     f"{p['load_average_after']:5.2f}  {verdict}")
    growth = figures["phase4_vs_phase2_beyond_fixed"]
    lines.append(f"beyond phase 3 (the fixed part), phase 4 / phase 2: {growth['appended']:.2f}x the versions, "
                 f"{_factor(growth['step_seconds'])} the step's seconds, {_factor(growth['sql_seconds'])} its SQL's "
                 "(proportional to the changes: the same factor)")
    for key, label in PHASES:
        if key not in CHANGED:
            continue
        matched = phases[key]["matching"]
        share = matched["objects_rematched"] / matched["objects"] if matched["objects"] else 0.0
        lines.append(f"phase {label[0]} matching: {matched['objects_changed']:,} objects changed, "
                     f"{matched['objects_rematched']:,} re-matched of {matched['objects']:,} ({share:.1%}); "
                     f"recon.links took {phases[key]['recon_sql_seconds_by_table'].get('recon/links', 0.0):.2f} s")
    for key, label in PHASES:
        by_table = phases[key]["recon_sql_seconds_by_table"]
        listed = ", ".join(f"{table} {s:.2f}" for table, s in by_table.items())
        lines.append(f"phase {label[0]} SQL seconds by table ({sum(by_table.values()):.2f} of the step's "
                     f"{phases[key]['recon_seconds']:.2f}): {listed}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    prepare(args.out.resolve())
    try:
        figures = measure(args.days, args.larger_days, args.scale, args.tenants)
    except RunFailed as exc:
        print(f"bench.recon_cost: FAILED - {exc}", file=sys.stderr)
        return 1
    broken = None if figures["phase1_within_promise"] else "the reconciliation is 10 % or more of the initial sync"
    return report("bench.recon_cost", figures, args.results, table(figures), broken)


def report(prog: str, figures: dict, results: Path, text: str, broken: str | None) -> int:
    """Write the figures, print the table, and return 1 naming the promise not kept (`broken`), if one is not."""
    write_json(results, figures)
    print(text)
    print(f"{prog}: results in {results}")
    if broken:
        print(f"{prog}: FAILED - {broken}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
