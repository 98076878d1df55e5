"""The benchmark's sequence: floor, dlt, then the pipeline's six phases, then the gate.

Every contender runs in its own process (bench.children) against the one sandbox this process
serves. Order: a warm-up read, the floor, dlt default and tuned (same instant of the books), our
initial sync; then the change step and our phases 2-6, the log deepened to each depth by more
change steps of phase 2's size; then Stripe's floor and phases (bench/stripe_rail.py), then Plaid's
(bench/plaid_rail.py), then Ramp's (bench/ramp_rail.py). The gate at the end (verify, chain heads,
every check of every run, the as-of answer unchanged as the log deepens, dlt loading the same objects,
Stripe's, Plaid's and Ramp's logs holding what their floors read) decides the exit code.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from pathlib import Path

from bench import plaid_rail, ramp_rail, report, stripe_rail
from bench.children import ChildResult, run_child
from bench.storage import missing_settings, storage_settings
from bench.workload import CHANGE_STEP, Paths, Served, Workload, serve
from ledger_pipeline.rails.qbo.token_store import FileTokenStore


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all processes, all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    """CPU seconds of this process so far: the sandbox server's threads, while a child runs."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Bench:
    """One benchmark run: a workload, an output folder, the sandbox, and what each child reported."""

    def __init__(self, workload: Workload, root: Path, served: Served, profile: bool, storage: str,
                 rail_rounds: int = 1) -> None:
        self.workload, self.paths, self.served, self.profile = workload, Paths(root), served, profile
        self.storage, self.rail_rounds = storage, rail_rounds
        # With batching on, a run's per-partition events reach a Postgres event log in batches (sqlite: one by one).
        self.figures: dict = {
            "workload": workload.to_json(), "phases": {}, "dagster_storage": storage_settings(storage)
        }

    def child(self, name: str, kind: str, env: dict[str, str] | None = None, **job) -> ChildResult:
        profiled = self.profile and kind not in ("dlt", "explain")
        profile = str(self.paths.root / "profile" / f"{name}.prof") if profiled else None
        if profile:
            Path(profile).parent.mkdir(parents=True, exist_ok=True)
        started, load_before, server_cpu, busy = time.perf_counter(), os.getloadavg()[0], _own_cpu(), _machine_busy()
        print(f"bench: {name} ... (load {load_before:.2f})", flush=True)
        result = run_child(
            name,
            {"kind": kind, "workload": self.workload.to_json(), "root": str(self.paths.root),
             "sandbox_url": self.served.base_url, "profile": profile, "dagster_storage": self.storage, **job},
            self.paths.logs, env,
        )  # fmt: skip
        result.result.setdefault("load_avg_1m_before", round(load_before, 2))
        server_cpu = _own_cpu() - server_cpu  # the sandbox server's threads, serving this child
        result.result.setdefault("server_cpu_seconds", round(server_cpu, 2))
        # CPU other processes of the machine used meanwhile: how much this figure was disturbed
        others = _machine_busy() - busy - server_cpu - result.cpu_seconds
        result.result.setdefault("others_cpu_seconds", round(max(others, 0.0), 1))
        print(f"bench: {name} done in {time.perf_counter() - started:.1f}s (peak RSS {result.peak_rss_mb:.0f} MB, "
              f"load {os.getloadavg()[0]:.2f}, other processes' CPU {result.result['others_cpu_seconds']:.1f}s)",
              flush=True)
        return result

    def record(self, phase: str, child: ChildResult) -> dict:
        entry = child.result | {"peak_rss_mb": round(child.peak_rss_mb, 1),
                                "process_seconds": round(child.process_seconds, 2),
                                "cpu_seconds": round(child.cpu_seconds, 2),
                                "load_avg_1m_after": round(os.getloadavg()[0], 2)}
        self.figures["phases"][phase] = entry
        return entry

    def access_tokens(self) -> dict[str, str]:
        """The access token our client left in the token store for each realm (still valid: the clock is held)."""
        store = FileTokenStore(self.paths.state_dir / "qbo_tokens")
        tokens = {}
        for spec in self.workload.companies:
            stored = store.load(spec.realm_id)
            if stored is None or not stored.access_token:
                raise RuntimeError(f"no access token stored for realm {spec.realm_id}")
            tokens[spec.realm_id] = stored.access_token
        return tokens


MARKER = ".bench-output"  # only a folder holding it is ever wiped


def fresh_folder(root: Path) -> None:
    if root.exists() and any(root.iterdir()) and not (root / MARKER).exists():
        raise SystemExit(f"bench: {root} is not empty and not a benchmark folder; choose another --out")
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("made by python -m bench; wiped by the next run\n")


def run(workload: Workload, root: Path, *, dlt_modes: tuple[str, ...], profile: bool = False,
        warmup: bool = True, storage: str = "sqlite", stripe: bool = True, stripe_memory_scale: int = 4,
        plaid: bool = True, plaid_memory_scale: int = 4, ramp: bool = True, ramp_memory_scale: int = 4,
        rail_rounds: int = 3) -> dict:
    if rail_rounds < 1:
        raise SystemExit(f"bench: --rail-rounds must be at least 1, got {rail_rounds}")
    missing = missing_settings(storage)
    if missing:
        raise SystemExit(f"bench: --dagster-storage {storage} reads {', '.join(missing)} from the environment; "
                         "set them (docs/performance.md, \"Dagster's storage\")")
    fresh_folder(root)
    with serve(workload, Paths(root)) as served:
        bench = Bench(workload, root, served, profile, storage, rail_rounds)
        figures = bench.figures
        if warmup:  # the first reader of a fresh server pays for cold caches; nobody is timed on that
            bench.child("warmup", "floor")
        floor = bench.record("floor", bench.child("floor", "floor"))
        if dlt_modes:
            env = {"BENCH_QBO_ACCESS_TOKENS": json.dumps(bench.access_tokens())}
            for mode in dlt_modes:
                bench.record(f"dlt_{mode}", bench.child(f"dlt_{mode}", "dlt", env, dlt_mode=mode))
        bench.record("phase1_initial", bench.child("phase1_initial", "ours", phase="initial"))
        served.advance(CHANGE_STEP)
        phase2 = bench.record("phase2_incremental", bench.child("phase2_incremental", "ours", phase="incremental"))
        bench.record("phase3_nochange", bench.child("phase3_nochange", "ours", phase="nochange"))
        bench.record("phase4_rebuild", bench.child("phase4_rebuild", "ours", phase="rebuild"))
        verified = bench.record("phase5_verify", bench.child("phase5_verify", "verify"))
        as_of = phase2["finished_at"]  # history before this instant must read the same at every depth
        depth = 2  # phases 2 and 3 were incremental syncs
        figures["queries"] = {str(depth): bench.record("phase6_queries_depth2",
                                                       bench.child("queries_depth2", "queries", as_of=as_of))}
        for target in (d for d in workload.depths if d > depth):
            bench.record(f"deepen_to_{target}",
                         bench.child(f"deepen_to_{target}", "ours", phase="deepen", steps=target - depth))
            depth = target
            figures["queries"][str(depth)] = bench.record(
                f"phase6_queries_depth{depth}", bench.child(f"queries_depth{depth}", "queries", as_of=as_of))
        if depth > 2:  # the gate's verify covers the deepest log
            verified = bench.record("final_verify", bench.child("final_verify", "verify"))
        figures["phases"]["final_verify"] = verified
        if profile:
            figures["explain"] = bench.child("explain", "explain", as_of=as_of,
                                             out_dir=str(root / "profile")).result
        if stripe:  # after every QBO phase, so theirs run as without it (the rails' steps move the shared clock)
            stripe_rail.run_phases(bench, warmup, stripe_memory_scale)
        if plaid:  # after Stripe's: each rail's incremental steps move the shared clock, one rail after another
            plaid_rail.run_phases(bench, warmup, plaid_memory_scale)
        if ramp:  # after Plaid's, last
            ramp_rail.run_phases(bench, warmup, ramp_memory_scale)
        figures["floor_objects"], figures["floor_tombstones"] = floor["objects"], floor["tombstones"]
    return report.finish(figures)
