"""`python -m bench`: run the benchmark, print the table, write results.json; exit 1 if the gate fails."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import report
from bench.run import run
from bench.storage import STORAGES
from bench.workload import Workload

DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--tenants", type=int, default=4, help="T: sandbox companies, one tenant each")
    parser.add_argument("--objects", type=int, default=25_000, help="N: objects per company")
    parser.add_argument("--change", type=float, default=0.01, help="c: fraction changed before phase 2")
    parser.add_argument("--depths", default="10,50", help="incremental syncs deep at which phase 6 is repeated")
    parser.add_argument("--dlt", default="default,tuned", help="dlt modes to race ('' for none)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="working folder (wiped first)")
    parser.add_argument("--results", type=Path, default=None, help="results file (default bench/results.json)")
    parser.add_argument("--dagster-storage", choices=STORAGES, default="sqlite",
                        help="Dagster's instance storage: the sqlite files of deploy/dagster.yaml, or the Postgres "
                        "database of deploy/dagster-postgres.yaml named by DAGSTER_PG_* (emptied first)")
    parser.add_argument("--profile", action="store_true", help="run our phases under cProfile (timings inflate)")
    parser.add_argument("--no-stripe", action="store_true", help="skip the Stripe rail's floor and phases")
    parser.add_argument("--stripe-memory-scale", type=int, default=4,
                        help="Stripe's peak memory at N and at this x N objects per company (0: skip)")
    parser.add_argument("--no-plaid", action="store_true", help="skip the Plaid rail's floor and phases")
    parser.add_argument("--plaid-memory-scale", type=int, default=4,
                        help="Plaid's peak memory at N and at this x N objects per company (0: skip)")
    parser.add_argument("--no-ramp", action="store_true", help="skip the Ramp rail's floor and phases")
    parser.add_argument("--ramp-memory-scale", type=int, default=4,
                        help="Ramp's peak memory at N and at this x N objects per company (0: skip)")
    parser.add_argument("--rail-rounds", type=int, default=3,
                        help="each rail's floor and first sync, alternated this many times; the middle run of each "
                        "is the figure (one run's noise is larger than the 1.5x target's margin)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed first read (tiny smoke runs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    depths = tuple(int(d) for d in args.depths.split(",") if d.strip())
    workload = Workload(args.tenants, args.objects, args.change, depths)
    dlt_modes = tuple(m for m in args.dlt.split(",") if m.strip())
    figures = run(workload, args.out.resolve(), dlt_modes=dlt_modes, profile=args.profile, warmup=not args.no_warmup,
                  storage=args.dagster_storage, stripe=not args.no_stripe,
                  stripe_memory_scale=args.stripe_memory_scale, plaid=not args.no_plaid,
                  plaid_memory_scale=args.plaid_memory_scale, ramp=not args.no_ramp,
                  ramp_memory_scale=args.ramp_memory_scale, rail_rounds=args.rail_rounds)
    default = args.out.resolve() / "results-profile.json" if args.profile else DEFAULT_OUT.parent / "results.json"
    results_path = args.results or default
    report.write(figures, results_path)
    print(report.table(figures))
    print(report.targets_text(figures))
    gate = figures["gate"]
    print(f"bench: results in {results_path}")
    if not gate["passed"]:
        print("bench: FAILED - " + "; ".join(gate["failures"]), file=sys.stderr)
        return 1
    print("bench: gate passed (verify, chain heads, every check of every run, as-of stable, same objects loaded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
