"""The reconciliation-cost benchmarks end to end at a tiny size: its four phases in its table, figures that add up; and
re-matching against matching everything, side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_tiny_recon_benchmark_prints_its_phases_with_consistent_figures(fast_tmp_path):
    tmp_path = fast_tmp_path  # the Dagster instance keeps its events in SQLite files, which fsync every event
    results = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.recon_cost", "--scale", "0.05", "--tenants", "1", "--days", "1",
         "--larger-days", "3", "--out", str(tmp_path / "out"), "--results", str(results)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(results.read_text())
    phases = figures["phases"]
    assert list(phases) == ["phase1_initial", "phase2_incremental", "phase3_nochange", "phase4_larger"]
    assert phases["phase3_nochange"]["appended"] == 0
    for phase in (phases["phase1_initial"], phases["phase2_incremental"], phases["phase4_larger"]):
        assert 0 < phase["recon_seconds"] < phase["run_seconds"]
        assert phase["recon_share"] == phase["recon_seconds"] / phase["run_seconds"]
        assert 0 < sum(phase["recon_sql_seconds_by_table"].values()) < phase["recon_seconds"]  # the SQL, in the step
        assert {"recon/links", "recon/breaks", "core/money_movements"} <= set(phase["recon_sql_seconds_by_table"])
        assert phase["appended"] > 0 and phase["recon_rows"] > 0 and len(phase["runs"]) == 1
    first, second, idle, larger = (phases[key] for key in phases)
    assert first["appended"] > max(second["appended"], larger["appended"])  # an incremental sync logs what changed
    matched, rematched = first["matching"], second["matching"]
    assert matched["objects_rematched"] == matched["objects"] > 0  # the first matching: every object
    assert 0 < rematched["objects_changed"] <= rematched["objects_rematched"] < rematched["objects"]
    assert figures["phase1_within_promise"] == (first["recon_share"] < 0.10)
    assert idle["matching"]["objects_changed"] == idle["matching"]["objects_rematched"] == 0
    assert "beyond_fixed" not in idle and "beyond_fixed" not in first
    for phase in (second, larger):  # beyond what the sync in which nothing changed cost, as measured
        beyond = phase["beyond_fixed"]
        assert beyond["step_seconds"] == phase["recon_seconds"] - idle["recon_seconds"]
        sql = sum(phase["recon_sql_seconds_by_table"].values()) - sum(idle["recon_sql_seconds_by_table"].values())
        assert beyond["sql_seconds"] == pytest.approx(sql)
        assert beyond["step_us_per_version"] == pytest.approx(1e6 * beyond["step_seconds"] / phase["appended"])
    for key, phase in (("phase2_vs_phase1", second), ("phase4_vs_phase1", larger)):
        assert figures[key] == {"appended": phase["appended"] / first["appended"],
                                "recon_seconds": phase["recon_seconds"] / first["recon_seconds"]}
    growth = figures["phase4_vs_phase2_beyond_fixed"]
    assert growth["appended"] == larger["appended"] / second["appended"]
    big, base = larger["beyond_fixed"]["step_seconds"], second["beyond_fixed"]["step_seconds"]
    assert growth["step_seconds"] == (big / base if big > 0 and base > 0 else None)

    lines = {line[:2]: line for line in done.stdout.splitlines() if line[:2] in ("1:", "2:", "3:", "4:")}
    assert set(lines) == {"1:", "2:", "3:", "4:"}, done.stdout
    for key, phase in (("1:", first), ("2:", second), ("4:", larger)):
        cells = lines[key].split()  # "1: initial sync" or "2: incremental sync", then the figures
        run_s, recon_s, share = float(cells[3]), float(cells[4]), float(cells[5].rstrip("%"))
        assert 0 < recon_s < run_s and abs(share - 100 * recon_s / run_s) < 0.2
        assert (run_s, recon_s) == (round(phase["run_seconds"], 2), round(phase["recon_seconds"], 2))
    assert lines["1:"].endswith("under the 10 % line")
    for key, phase in (("2:", second), ("4:", larger)):
        ratio = figures[f"phase{key[0]}_vs_phase1"]
        assert lines[key].endswith(f"{ratio['recon_seconds']:.0%} of phase 1's seconds for {ratio['appended']:.0%} of "
                                   "its versions")
        assert f"{phase['beyond_fixed']['step_seconds']:.2f}" in lines[key].split()
    assert f"phase 4 / phase 2: {growth['appended']:.2f}x the versions" in done.stdout
    assert lines["3:"].endswith("nothing appended: the fixed part, what any run costs")


def test_tiny_rematch_benchmark_compares_rematching_with_matching_everything(tmp_path):
    results = tmp_path / "rematch.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.rematch_scale", "--pairs", "2000", "--changed", "0.05", "--results",
         str(results)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run,) = json.loads(results.read_text())["runs"]
    assert run["objects"] == 4000 and run["same_as_whole"]
    assert 0 < run["objects_changed"] <= run["objects_rematched"] < run["objects"] / 2
    assert run["links"] >= 2000 and run["links_for_review"] > 0  # references, and amounts that compete
    row = done.stdout.splitlines()[1].split()
    assert row[0] == "4,000" and row[-1] == "yes", done.stdout
