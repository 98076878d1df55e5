"""The benchmark harness end to end at a tiny size (no dlt), and its gate failing when a promise breaks."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

from bench import report
from bench.storage import SUBSET_PLANNED_EVENTS

REPO = Path(__file__).resolve().parents[1]


def _deeper_with_other_as_of(figures: dict) -> None:
    deeper = copy.deepcopy(figures["queries"]["2"])
    deeper["queries"]["bills_as_of"]["digest"] = "0" * 16
    figures["queries"]["9"] = deeper


BREAKAGES = [  # (what breaks, how, what the gate must say)
    ("a check fails", lambda f: f["phases"]["phase2_incremental"]["runs"][0]["checks_failed"].append(
        {"asset": "mirror/qbo_bills", "check": "matches_log", "passed": False}), "check mirror/qbo_bills:matches_log"),
    ("verify finds a bad row", lambda f: f["phases"]["final_verify"]["problems"].append("first bad row seq=7"),
     "first bad row seq=7"),
    ("a recorded head is gone", lambda f: f["phases"]["phase5_verify"]["head_problems"].append("head seq=9 gone"),
     "head seq=9 gone"),
    ("history moved", lambda f: _deeper_with_other_as_of(f), "as-of answer changed"),
    ("objects went missing", lambda f: f["phases"]["phase1_initial"].update(log_rows=1), "initial sync logged 1 rows"),
    ("a run failed", lambda f: f["phases"]["phase3_nochange"]["runs"][0].update(success=False), "phase3_nochange: run"),
    ("Stripe objects went missing", lambda f: f["stripe"].update(log_rows_initial=1),
     "Stripe's initial sync logged 1 rows"),
    ("Plaid objects went missing", lambda f: f["plaid"].update(log_rows_initial=1),
     "Plaid's initial sync logged 1 rows"),
    ("Ramp objects went missing", lambda f: f["ramp"].update(log_rows_initial=1), "Ramp's initial sync logged 1 rows"),
]


def test_tiny_benchmark_reports_every_figure_and_its_gate_fails_when_a_promise_breaks(fast_tmp_path, monkeypatch,
                                                                                       capsys):
    tmp_path = fast_tmp_path  # each phase's Dagster instance keeps its events in SQLite files
    results = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tenants", "1", "--objects", "120", "--depths", "", "--dlt", "",
         "--no-warmup", "--stripe-memory-scale", "0", "--plaid-memory-scale", "0", "--ramp-memory-scale", "0",
         "--rail-rounds", "2",
         "--out", str(tmp_path / "out"), "--results", str(results)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if k != SUBSET_PLANNED_EVENTS},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(results.read_text())

    assert {"phase1_vs_dlt", "extract_log_vs_floor", "phase2_vs_phase1"} <= set(figures["ratios"])
    assert figures["ratios"]["phase1_vs_dlt"] is None  # no dlt raced: said so, not invented
    assert figures["ratios"]["extract_log_vs_floor"] > 0 and figures["ratios"]["phase2_vs_phase1"] > 0
    assert figures["peak_rss_mb"]["phase1_initial"] > 50 and figures["peak_rss_mb"]["floor"] > 20
    size = figures["workload_size"]
    assert size["tenants"] == 1 and size["objects_total"] > 100
    assert figures["phases"]["phase1_initial"]["log_rows"] == size["objects_total"]
    assert figures["gate"] == {"passed": True, "failures": [], "runs_checked": 4}
    assert figures["phases"]["final_verify"]["rows"] == size["log_rows_final"] > size["objects_total"]
    assert set(figures["queries"]) == {"2"}  # deepening is left to `make bench`: each depth is one more run
    overhead = figures["dagster_overhead_phase3"]
    assert 0 < overhead["asset_code_seconds"] < overhead["seconds"]
    assert len(figures["targets"]) == 11 and "ours 1: initial sync" in done.stdout and "gate passed" in done.stdout
    stripe = figures["stripe"]  # the Stripe rail's floor, first sync and incremental steps (memory: `make bench`)
    assert stripe["log_rows_initial"] == stripe["objects_total"] > 0 and stripe["extract_log_vs_floor"] > 0
    assert [s["step"] for s in stripe["incremental"]] == ["nothing changed", "small", "large"]
    assert all(s["requests"] > 0 and s["events"] >= 0 for s in stripe["incremental"]) and "memory" not in stripe
    assert "stripe ours: extract + log" in done.stdout and "extract + log / floor: QBO" in done.stdout
    plaid = figures["plaid"]  # the Plaid rail's likewise: items, accounts and live transactions, each logged once
    assert plaid["log_rows_initial"] == plaid["objects_total"] > plaid["objects_by_entity"]["transaction"] > 0
    assert plaid["objects_by_entity"]["item"] == 2 and plaid["extract_log_vs_floor"] > 0
    assert [s["step"] for s in plaid["incremental"]] == ["nothing changed", "small", "large"]
    assert all(s["requests"] > 0 for s in plaid["incremental"]) and "memory" not in plaid
    assert plaid["incremental"][0]["log_rows_added"] == 0  # nothing changed: nothing logged
    assert "plaid ours: extract + log" in done.stdout and "Plaid extract + log seconds" in done.stdout
    ramp = figures["ramp"]  # Ramp's: every set of every entity read whole by the floor, each object logged once
    assert ramp["log_rows_initial"] == ramp["objects_total"] > ramp["objects_by_entity"]["transaction"] > 0
    assert ramp["objects_by_entity"]["user"] > 0 and ramp["extract_log_vs_floor"] > 0 and "memory" not in ramp
    assert [s["step"] for s in ramp["incremental"]] == ["nothing changed", "small", "large"]
    assert all(s["requests"] > 0 and s["objects_read"] > 0 for s in ramp["incremental"])
    assert ramp["incremental"][0]["log_rows_added"] == 0 < ramp["incremental"][2]["log_rows_added"]
    assert "ramp ours: extract + log" in done.stdout and "Ramp extract + log seconds" in done.stdout
    for rail in ("stripe", "plaid", "ramp"):  # each rail's floor and first sync ran twice; the middle run is the figure
        rounds, phases = figures[rail]["rounds"], figures["phases"]
        assert len(rounds) == 2 and all(r["extract_log_vs_floor"] > 0 for r in rounds)
        assert phases[f"{rail}_floor"]["seconds"] == max(r["floor_seconds"] for r in rounds)
        assert phases[f"{rail}_initial"]["seconds"] == max(r["extract_log_seconds"] for r in rounds)
        assert figures[rail]["extract_log_vs_floor"] == round(phases[f"{rail}_initial"]["seconds"]
                                                              / phases[f"{rail}_floor"]["seconds"], 4)
    assert "middle of 2 rounds" in done.stdout
    storage = figures["dagster_storage"]  # what the run's Dagster storage was, in the results and the table
    assert storage["kind"] == "sqlite" and storage["planned_events"] == "per partition"
    assert "storage sqlite, event batch size" in done.stdout and "planned events per partition" in done.stdout

    import bench.__main__ as cli

    monkeypatch.setattr(report, "write", lambda figures, path: None)
    for what, breakage, expected in BREAKAGES:
        broken = copy.deepcopy(figures)
        breakage(broken)
        verdict = report.gate(broken)
        assert not verdict["passed"] and any(expected in f for f in verdict["failures"]), (what, verdict)
        monkeypatch.setattr(cli, "run", lambda *a, **k: broken | {"gate": verdict})
        assert cli.main(["--dlt", ""]) == 1, what
        assert "FAILED" in capsys.readouterr().err, what


def test_sync_trees_times_each_trees_sync_in_rounds_and_ratios_to_the_first(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench.sync_trees", str(REPO), str(REPO), "--tenants", "1", "--objects", "60",
         "--rounds", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    rounds = [line for line in lines if line.startswith("round ") and " floor " not in line]
    assert len(rounds) == 4  # 2 rounds x 2 trees
    floors = [float(line.split()[3]) for line in lines if line.startswith("round ") and " floor " in line]
    assert len(floors) == 2 and min(floors) > 0
    assert len([line for line in lines if "first sync / floor per round" in line]) == 2
    timed = [json.loads(line.split(" ", 3)[3].replace("'", '"')) for line in rounds]
    assert all(set(t) == {"first", "again"} and min(t.values()) > 0 for t in timed)
    summary = [line for line in done.stdout.splitlines() if " median " in line]
    assert len(summary) == 4  # 2 trees x 2 passes
    assert all(line.endswith("per round [1.0, 1.0]") for line in summary[:2])  # the reference against itself
