"""`python -m bench.sync_trees TREE [TREE ...]`: the sync alone (extract + log, no Dagster) of work trees, side by side.

A change to the per-sync cost (a statement, a transaction) moves the full benchmark by less than its
noise here: consecutive runs of one tree differ by 15-30 %, and the second run of a pair is the
slower one. This serves one sandbox of T x N and runs, in rounds, each tree's `sync_entity` over
every tenant and entity into a fresh ledger (a first sync, then the same again with nothing
changed), each in a process of its own, the tree order reversed every other round. It prints each
round, the medians, and each tree's ratio to the first tree per round (the machine's drift cancels
within a round). A tree is a checkout of this repository with `.venv` linked.
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

CHILD = Path(__file__).resolve().parent / "sync_child.py"
PASSES = ("first", "again")


def run_tree(tree: Path, base_url: str, root: Path, workload: Workload) -> dict[str, float]:
    ledger = root / f"{tree.name}.duckdb"
    for path in (ledger, ledger.with_suffix(".duckdb.wal")):
        path.unlink(missing_ok=True)
    tenants = [[t, c.realm_id] for t, c in zip(workload.tenant_ids, workload.companies)]
    done = subprocess.run(
        [str(tree / ".venv/bin/python"), str(CHILD), str(tree), base_url, str(root / "state"), str(ledger),
         json.dumps(tenants)],
        capture_output=True, text=True, cwd=tree,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"bench.sync_trees: {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_trees", description=__doc__)
    parser.add_argument("trees", nargs="+", type=Path, help="work trees to compare (the first is the reference)")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    trees = [t.resolve() for t in args.trees]
    workload = Workload(args.tenants, args.objects)
    seconds: dict[Path, list[dict[str, float]]] = {t: [] for t in trees}
    with tempfile.TemporaryDirectory(prefix="sync-trees-") as folder, serve(workload, Paths(Path(folder))) as served:
        for number in range(args.rounds):
            for tree in trees if number % 2 == 0 else trees[::-1]:
                seconds[tree].append(run_tree(tree, served.base_url, Path(folder), workload))
                print(f"round {number}: {tree.name} {seconds[tree][-1]}", flush=True)
    reference = seconds[trees[0]]
    for tree in trees:
        for what in PASSES:
            values = [r[what] for r in seconds[tree]]
            ratios = [r[what] / ref[what] for r, ref in zip(seconds[tree], reference)]
            print(f"{tree.name} {what}: median {statistics.median(values):.2f} s, per round {values}, "
                  f"vs {trees[0].name} per round {[round(x, 2) for x in ratios]}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
