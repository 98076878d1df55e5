"""The soak: `python -m ledger_pipeline_tests.storm --kills 500` (what `make soak` runs), then a table."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ledger_pipeline_tests.storm.driver import StormConfig, StormReport, run_storm
from ledger_pipeline_tests.storm.layout import fast_folder
from ledger_pipeline_tests.storm.probes import GROUP_NAMES, PHASES, RAIL_NAMES


def table(report: StormReport) -> str:
    """What was tried and what came of it, as a Markdown table (pasteable into docs/reliability.md)."""
    groups, phases, rails = report.kills_per_group, report.kills_per_phase, report.kills_per_rail
    rows = [("kills", str(len(report.kills)))]
    rows += [(f"kills during {name}", str(groups[name])) for name in GROUP_NAMES]
    rows.append(("kills per rail (its step running)", ", ".join(f"{r} {rails[r]}" for r in RAIL_NAMES)
                 + f", before any step {rails['']}"))  # fmt: skip
    for rail, title in (("stripe", "Stripe"), ("plaid", "Plaid")):
        inside = report.kills_per_group_in(rail)
        rows.append((f"kills inside {title} syncs, per group", ", ".join(f"{g} {inside[g]}" for g in GROUP_NAMES)))
    rows.append(("kills per fine phase", ", ".join(f"{p} {phases[p]}" for p in PHASES if phases[p])))
    rows += [
        ("attempts (incl. final, rebuild)", str(len(report.attempts))),
        ("restarts after a kill", str(report.restarts)),
        ("killed Dagster runs marked failed, pool slot freed", str(report.dead_runs)),
        ("syncs that ran to the end", str(sum(1 for a in report.attempts if a.outcome is not None))),
        ("sandbox instants", f"{len(report.instants)} ({report.instants[0]:%Y-%m-%d} to {report.instants[-1]:%Y-%m-%d})"),
        ("versions logged", str(report.findings.versions)),
        ("final sync's checks passed", f"{sum(report.final_checks.values())} of {len(report.final_checks)}"),
        ("full rebuild equals the mirrors", "checked" if report.config.full_rebuild else "skipped"),
        ("rows lost", str(report.findings.lost)),
        ("rows duplicated", str(report.findings.duplicated)),
        ("verify", "OK" if report.verify_ok else "FAILED"),
        ("problems", str(len(report.findings.problems))),
        ("seed", str(report.config.seed)),
        ("duration", f"{report.seconds:.0f} s ({report.storm_seconds:.0f} s of kills, then the final checks)"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"| {'what':<{width}} | result |", f"|{'-' * (width + 2)}|--------|"]
    lines += [f"| {name:<{width}} | {value} |" for name, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Crash-storm soak: SIGKILL real syncs, restart, check.")
    parser.add_argument("--kills", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-budget", type=float, default=3600.0, help="seconds for the kill loop")
    parser.add_argument("--workdir", help="keep the storm's files here (default: a temporary folder)")
    parser.add_argument("--quiet", action="store_true", help="print only the table, not a line per attempt")
    args = parser.parse_args(argv)
    config = StormConfig(kills=args.kills, seed=args.seed, time_budget=args.time_budget)
    with fast_folder(Path(tempfile.gettempdir())) as tmp:
        workdir = Path(args.workdir) if args.workdir else tmp
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"crash storm: {args.kills} kills, seed {args.seed}, in {workdir}", flush=True)
        report = run_storm(workdir, config, say=(lambda line: None) if args.quiet else print)
    print(table(report))
    print(f"verify: {report.verify_output.splitlines()[-1] if report.verify_output else '-'}")
    for problem in report.findings.problems[:50]:
        print(f"PROBLEM: {problem}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
