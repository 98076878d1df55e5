"""The storm: advance the books, start a child, kill it on plan, check, repeat; then the final checks.

After the kills: a clean sync, `ledger-pipeline verify`, a full rebuild of
every mirror (it must change nothing, and log nothing), a reference run in a
fresh project at the final instant, and the invariants in `invariants`.
Bounded by a kill count, an attempt count and a time budget, so it always stops.
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from ledger_pipeline.rails.qbo.sandbox import Fault
from ledger_pipeline_tests.storm import invariants, probes
from ledger_pipeline_tests.storm.child import SyncSettings
from ledger_pipeline_tests.storm.killer import TARGETS, Attempt, KillPlan, Launcher
from ledger_pipeline_tests.storm.layout import StormProject


@dataclass(frozen=True)
class StormConfig:
    kills: int = 30
    seed: int = 1
    max_attempts: int | None = None  # default: three per kill
    time_budget: float = 600.0  # seconds for the kill loop; the final checks come on top
    scale: float = 0.04  # sandbox company size factor (0.04: about a hundred objects)
    page_size: int = 10
    batch_size: int = 10
    slow_delay: float = 0.005  # each query and CDC request of the children sleeps this long
    min_step_minutes: int = 5  # the sandbox clock moves by a random step in this range before each attempt
    max_step_minutes: int = 600
    check_every_kill: bool = True
    full_rebuild: bool = True  # after the final sync, also rebuild every mirror from the log and compare


@dataclass
class StormReport:
    config: StormConfig
    attempts: list[Attempt] = field(default_factory=list)
    instants: list[datetime] = field(default_factory=list)
    findings: invariants.Findings = field(default_factory=invariants.Findings)
    verify_output: str = ""
    verify_ok: bool = False
    dead_runs: int = 0  # killed runs marked failed (and their pool slots freed) before the restart
    storm_seconds: float = 0.0  # the kill loop
    seconds: float = 0.0  # the kill loop and the final checks

    @property
    def kills(self) -> list[Attempt]:
        return [a for a in self.attempts if a.killed]

    @property
    def kills_per_phase(self) -> Counter:
        return Counter(a.phase for a in self.kills)

    @property
    def kills_per_group(self) -> Counter:
        return Counter(probes.group(a.phase) for a in self.kills)

    @property
    def kills_per_rail(self) -> Counter:
        """Kills by the rail whose log or mirror step was running ("" when none had started yet)."""
        return Counter(a.rail for a in self.kills)

    def kills_per_group_in(self, rail: str) -> Counter:
        return Counter(probes.group(a.phase) for a in self.kills if a.rail == rail)

    @property
    def restarts(self) -> int:
        """Children started on a file a killed child had left (the final clean sync included)."""
        return sum(1 for before, after in zip(self.attempts, self.attempts[1:]) if before.killed)

    @property
    def final_checks(self) -> dict[str, bool]:
        """The asset checks of the final clean sync (chain_intact, rows_valid, matches_log per asset)."""
        final = next((a for a in self.attempts if a.plan is None and a.outcome), None)
        return dict(final.outcome["checks"]) if final else {}

    @property
    def ok(self) -> bool:
        return self.verify_ok and not self.findings.problems and not self.findings.lost and not self.findings.duplicated


def run_storm(workdir: Path, config: StormConfig, *, say=lambda line: None) -> StormReport:
    """Run the storm in `workdir` (it makes `storm/` and `reference/` there) and check everything."""
    started = time.monotonic()
    project = StormProject(str(workdir / "storm"), scale=config.scale).create()
    report = StormReport(config)
    launcher = Launcher(
        log_path=str(workdir / "children.log"),
        delays={"paging": config.slow_delay, "duckdb_write": 0.002, "commit": 0.001, "mirror_refresh": 0.05},
    )
    settings = SyncSettings(page_size=config.page_size, batch_size=config.batch_size)
    box = project.sandbox()
    for endpoint in ("query", "cdc"):
        box.inject(project.realm_id, Fault("slow", endpoint=endpoint, count=-1, delay=config.slow_delay))
    rng = random.Random(config.seed)
    max_attempts = config.max_attempts or 3 * config.kills
    order: list[str] = []
    while len(report.kills) < config.kills and len(report.attempts) < max_attempts:
        if time.monotonic() - started > config.time_budget:
            report.findings.problems.append(f"time budget of {config.time_budget:.0f}s spent after {len(report.kills)} kills")
            break
        if not order:
            order = rng.sample(TARGETS, len(TARGETS))
        step = timedelta(minutes=rng.randint(config.min_step_minutes, config.max_step_minutes))
        plan = KillPlan(order.pop(), rng.random(), rng.random())
        box.advance(step)
        report.instants.append(box.now)
        attempt = launcher.run(len(report.attempts), project, settings, plan)
        report.attempts.append(attempt)
        _judge(attempt, project, config, report)
        landed = f"killed in {attempt.phase:<14} ({attempt.rail or '-':<6})"
        say(
            f"attempt {attempt.index:>3}: aimed at {plan.target:<14} "
            + (landed if attempt.killed else f"{'ran to the end':<33}")
            + f" {attempt.seconds:5.2f}s; {len(report.kills)} kills in {time.monotonic() - started:.0f}s"
        )
    report.storm_seconds = time.monotonic() - started
    box.clear_faults()
    _final(project, launcher, settings, report)
    report.seconds = time.monotonic() - started
    return report


def _judge(attempt: Attempt, project: StormProject, config: StormConfig, report: StormReport) -> None:
    where = f"attempt {attempt.index} ({attempt.plan.target if attempt.plan else 'clean'}, landed in {attempt.phase})"
    if attempt.hung:
        report.findings.problems.append(f"{where}: the child hung and was killed after its timeout")
    if attempt.outcome is not None and not attempt.outcome["success"]:
        report.findings.problems.append(f"{where}: the sync failed: {attempt.outcome['failure'][:500]}")
    if not attempt.killed and attempt.outcome is None:
        report.findings.problems.append(f"{where}: the child died by itself (exit code {attempt.exitcode})")
    if attempt.killed:
        report.dead_runs += project.fail_dead_runs(f"killed by the crash storm (SIGKILL), {where}")
    if attempt.killed and config.check_every_kill:
        found = invariants.after_kill(project)
        report.findings.problems += [f"{where}: {p}" for p in found.problems]
        report.findings.duplicated += found.duplicated


def _final(project: StormProject, launcher: Launcher, settings: SyncSettings, report: StormReport) -> None:
    problems = report.findings.problems
    final_instant = project.sandbox().now
    report.instants.append(final_instant)
    # full_check: the final matches_log compares every mirror row with the log, not only this run's refreshes
    audit = dataclasses.replace(settings, full_check=True)
    clean = _clean_run(launcher, len(report.attempts), project, audit, "final clean sync", problems)
    report.attempts.append(clean)
    # verify reads the storm's file while the reference run syncs a fresh project at the same instant
    verifying = verify_cli(project)
    reference = project.sibling("reference").create(clock=final_instant)
    _clean_run(launcher, -1, reference, settings, "reference run", problems)
    report.verify_ok, report.verify_output = _finished(verifying)
    if not report.verify_ok:
        problems.append(f"ledger-pipeline verify failed: {report.verify_output}")
    report.findings.add(invariants.final(project, reference, report.instants))  # the mirrors as the storm left them

    if report.config.full_rebuild:
        _rebuild(project, launcher, settings, report)
    report.findings.versions = invariants.log_rows(project)


def _rebuild(project: StormProject, launcher: Launcher, settings: SyncSettings, report: StormReport) -> None:
    """Sync again at the same instant with full_rebuild: the mirrors must not change, nor the log grow."""
    problems = report.findings.problems
    before, logged = invariants.mirror_snapshot(project), invariants.log_rows(project)
    rebuild = dataclasses.replace(settings, full_rebuild=True)
    report.attempts.append(_clean_run(launcher, len(report.attempts), project, rebuild, "full rebuild", problems))
    if invariants.mirror_snapshot(project) != before:
        problems.append("a full rebuild of the mirrors changed them: incremental mirrors differ from f(log)")
    if invariants.log_rows(project) != logged:
        problems.append("re-running the sync at the same instant logged new rows (not idempotent)")


def _clean_run(
    launcher: Launcher, index: int, project: StormProject, settings: SyncSettings, what: str, problems: list[str]
) -> Attempt:
    attempt = launcher.run(index, project, settings, None)
    outcome = attempt.outcome or {"success": False, "failure": f"child exit code {attempt.exitcode}", "checks": {}}
    if not outcome["success"]:
        problems.append(f"{what} failed: {outcome['failure'][:1000]}")
    failed_checks = sorted(name for name, passed in outcome["checks"].items() if not passed)
    if failed_checks:
        problems.append(f"{what}: checks failed: {', '.join(failed_checks)}")
    return attempt


def verify_cli(project: StormProject) -> subprocess.Popen:
    """Start `ledger-pipeline verify` as an operator runs it, against the file and the Dagster instance."""
    env = os.environ | {"LEDGER_DUCKDB_PATH": str(project.db_path), "DAGSTER_HOME": str(project.dagster_home)}
    cli = Path(sys.executable).with_name("ledger-pipeline")
    return subprocess.Popen([str(cli), "verify"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finished(verifying: subprocess.Popen) -> tuple[bool, str]:
    output, _ = verifying.communicate(timeout=300)
    return verifying.returncode == 0, output.strip()
