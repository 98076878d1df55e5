"""`python -m bench.schedule_tick`: one hourly_sync tick of T tenants with nothing changed, by tenants per run.

The steady state a fleet pays every hour: the schedule is evaluated on the benchmark's Dagster
instance and every run it asks for is executed in turn (the DuckDB pool lets one write at a time),
through the real job, ledger and sandbox over localhost HTTP. Each round times one tick per setting
of LEDGER_SYNC_TENANTS_PER_RUN (1 = a run per tenant, as before ranges), the order reversed every
other round; it prints each tick, the medians and each setting's ratio to the first per round.
Runs execute in this process (`execute_in_process`): a deployment's run launcher also starts a
process and loads the code for every run, which this leaves out, so it understates a run's cost.
`--latency-ms` makes every request wait that long after the first sync (the sandbox's `slow`
fault on every company), as against QBO across a network.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from bench import ours
from bench.run import fresh_folder
from bench.storage import STORAGES, describe, missing_settings, storage_settings
from bench.workload import Paths, Workload, serve
from ledger_pipeline.defs.schedules import hourly_sync
from ledger_pipeline.rails.qbo.sandbox import Fault

DEFAULT_OUT = Path(__file__).resolve().parent / "out-tick"


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, per_run: int) -> dict:
    """Evaluate hourly_sync with `per_run` tenants per run and execute what it asks for; timed end to end."""
    os.environ["LEDGER_SYNC_TENANTS_PER_RUN"] = str(per_run)
    job = defs.resolve_job_def("sync_tenants")
    started = time.perf_counter()
    with dg.build_schedule_context(
        instance, datetime.now(UTC), resources={"tenants": defs.resources["tenants"]},
        repository_def=defs.get_repository_def(),
    ) as context:  # fmt: skip
        requests = hourly_sync(context)
    evaluated = time.perf_counter() - started
    failed = [
        request.run_key
        for request in requests
        if not job.execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags, run_config=ours.QUIET,
            asset_selection=request.asset_selection, raise_on_error=False,
        ).success
    ]  # fmt: skip
    return {"seconds": time.perf_counter() - started, "evaluation": evaluated, "runs": len(requests), "failed": failed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.schedule_tick", description=__doc__)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--per-run", default="1,100", help="settings of LEDGER_SYNC_TENANTS_PER_RUN to compare")
    parser.add_argument("--dagster-storage", choices=STORAGES, default="sqlite")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="every request to the sandbox waits this long first (a network's round trip)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="working folder (wiped first)")
    args = parser.parse_args(argv)
    settings = [int(s) for s in args.per_run.split(",")]
    if missing := missing_settings(args.dagster_storage):
        raise SystemExit(f"bench.schedule_tick: --dagster-storage postgres reads {', '.join(missing)}")
    workload, paths = Workload(args.tenants, args.objects, depths=()), Paths(args.out.resolve())
    fresh_folder(paths.root)
    print(f"bench.schedule_tick: {args.tenants} x {args.objects}, {describe(storage_settings(args.dagster_storage))}, "
          f"{args.latency_ms:g} ms a request")
    ticks: dict[int, list[dict]] = {s: [] for s in settings}
    with serve(workload, paths) as served, ours.open_instance(paths, args.dagster_storage) as instance:
        instance.wipe()  # a Postgres database keeps the previous run's events (sqlite files start empty)
        ours.register_tenants(workload, paths, instance)
        defs = ours.definitions(paths, served.base_url)
        first = tick(defs, instance, max(settings))
        if args.latency_ms:  # armed after the first sync: the ticks are what it is about
            for company in workload.companies:  # the sandbox's own `slow` fault, armed until cleared
                served.sandbox.inject(company.realm_id, Fault("slow", count=-1, delay=args.latency_ms / 1000))
        print(f"  first sync of every tenant: {first['seconds']:.1f} s in {first['runs']} runs (untimed below)")
        for number in range(args.rounds):
            for per_run in settings if number % 2 == 0 else settings[::-1]:
                figures = tick(defs, instance, per_run)
                if figures["failed"]:
                    raise SystemExit(f"bench.schedule_tick: runs failed: {', '.join(figures['failed'])}")
                ticks[per_run].append(figures)
                print(f"  round {number + 1}, {per_run:>4} per run: {figures['runs']:>4} runs, "
                      f"{figures['seconds']:7.2f} s (schedule evaluation {figures['evaluation']:.2f} s)", flush=True)
    reference = settings[0]
    print(f"\n| tenants per run | runs per tick | seconds per tick (median) | per tenant | vs {reference} per run |")
    print("|---:|---:|---:|---:|---|")
    for per_run in settings:
        seconds = statistics.median(t["seconds"] for t in ticks[per_run])
        ratios = ", ".join(f"{t['seconds'] / r['seconds']:.2f}x" for t, r in zip(ticks[per_run], ticks[reference]))
        print(f"| {per_run} | {ticks[per_run][0]['runs']} | {seconds:.2f} | {seconds / args.tenants:.3f} | {ratios} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
