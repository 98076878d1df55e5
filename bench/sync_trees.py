"""`python -m bench.sync_trees TREE [TREE ...]`: the sync alone (extract + log, no Dagster) of work trees, side by side.

A change to the per-sync cost (a statement, a transaction) moves the full benchmark by less than its
noise here: consecutive runs of one tree differ by 15-30 %, and the second run of a pair is the
slower one. This serves one sandbox of T x N and runs, in rounds, each tree's `sync_entity` over
every tenant and entity into a fresh ledger (a first sync, then the same again with nothing
changed), each in a process of its own, the tree order reversed every other round; each round also
times the floor (fetch and parse, no database). It prints each round, the medians, each tree's ratio
to the first tree per round (the machine's drift cancels within a round) and its first sync over the
round's floor. A tree is a checkout of this repository with `.venv` linked.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.workload import Paths, Workload, serve
from ledger_pipeline.rails.qbo.sandbox import Fault

REPO = Path(__file__).resolve().parents[1]
CHILD = REPO / "bench" / "sync_child.py"
PASSES = ("first", "again")


def run_tree(tree: Path, base_url: str, ledger: Path, workload: Workload) -> dict[str, float]:
    for path in (ledger, ledger.with_suffix(".duckdb.wal")):
        path.unlink(missing_ok=True)
    tenants = [[t, c.realm_id] for t, c in zip(workload.tenant_ids, workload.companies)]
    done = subprocess.run(
        [str(tree / ".venv/bin/python"), str(CHILD), str(tree), base_url, str(ledger.parent / "state"), str(ledger),
         json.dumps(tenants)],
        capture_output=True, text=True, cwd=tree,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"bench.sync_trees: {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_floor(base_url: str, folder: Path, workload: Workload) -> float:
    """The floor's seconds (fetch and parse, no database) in a process of its own, as the benchmark runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.floor", str(workload.tenants), str(workload.objects), str(folder), base_url],
        capture_output=True, text=True, cwd=REPO, check=True,
    )  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_trees", description=__doc__)
    parser.add_argument("trees", nargs="+", type=Path, help="work trees to compare (the first is the reference)")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="every request to the sandbox waits this long first (a network's round trip; floor too)")
    args = parser.parse_args(argv)
    trees = [t.resolve() for t in args.trees]
    workload = Workload(args.tenants, args.objects)
    names = [f"{number}:{tree.name}" for number, tree in enumerate(trees)]  # a tree may be given twice
    seconds: list[list[dict[str, float]]] = [[] for _ in trees]
    floors: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sync-trees-") as folder, serve(workload, Paths(Path(folder))) as served:
        if args.latency_ms:
            for company in workload.companies:  # the sandbox's own `slow` fault, armed until cleared
                served.sandbox.inject(company.realm_id, Fault("slow", count=-1, delay=args.latency_ms / 1000))
        run_floor(served.base_url, Path(folder), workload)  # untimed: the first reader pays the server's cold caches
        for number in range(args.rounds):
            floors.append(run_floor(served.base_url, Path(folder), workload))
            print(f"round {number}: floor {floors[-1]} s", flush=True)
            order = range(len(trees)) if number % 2 == 0 else reversed(range(len(trees)))
            for index in order:
                ledger = Path(folder) / f"tree{index}.duckdb"
                seconds[index].append(run_tree(trees[index], served.base_url, ledger, workload))
                print(f"round {number}: {names[index]} {seconds[index][-1]}", flush=True)
    for index, name in enumerate(names):
        for what in PASSES:
            values = [r[what] for r in seconds[index]]
            ratios = [r[what] / ref[what] for r, ref in zip(seconds[index], seconds[0])]
            print(f"{name} {what}: median {statistics.median(values):.2f} s, per round {values}, "
                  f"vs {names[0]} per round {[round(x, 2) for x in ratios]}")  # fmt: skip
        over_floor = [r["first"] / floor for r, floor in zip(seconds[index], floors)]
        print(f"{name} first sync / floor per round: {[round(x, 2) for x in over_floor]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
