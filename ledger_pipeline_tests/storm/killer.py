"""Starting storm children and SIGKILLing them where a kill plan says.

A plan names a target phase, which occurrence of it (as a fraction of how
often the last complete sync entered it) and how long after entering it to
kill. The plan's numbers come from the driver's seeded RNG; where they land
in wall-clock time is read from the child's own phase markers, so the same
seed aims at the same points of the same syncs.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ledger_pipeline_tests.storm import child, probes
from ledger_pipeline_tests.storm.layout import StormProject

# The fork server imports this before forking children (the child module, Dagster's instance storage warmed up); by
# name, so that the driver's process does not pay for it.
PRELOAD = "ledger_pipeline_tests.storm.preload"
# Target -> the marker that starts it ("anywhere" is a time after boot instead).
TARGET_MARKERS = {"paging": "paging", "duckdb_write": "log_write", "commit": "commit", "mirror_refresh": "mirror_refresh"}
TARGETS = (*TARGET_MARKERS, "anywhere")
# How often a complete incremental sync enters each phase, until one has been seen (9 QBO, 7 Stripe and 3 Plaid
# entities).
DEFAULT_OCCURRENCES = {"paging": 59, "log_write": 19, "commit": 19, "mirror_refresh": 19}


@dataclass(frozen=True)
class KillPlan:
    target: str
    occurrence: float  # in [0, 1): which occurrence of the target, as a fraction of how many there are
    delay: float  # in [0, 1): how far into the target's delay window


@dataclass
class Attempt:
    index: int
    plan: KillPlan | None
    killed: bool = False
    phase: str = "boot"  # the last phase the child announced
    rail: str = ""  # the rail of the last log or mirror step the child started ("" before the first)
    markers: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    outcome: dict[str, Any] | None = None  # the child's own summary when it ran to the end
    exitcode: int | None = None
    hung: bool = False
    first_seen: dict[str, float] = field(default_factory=dict)  # phase -> seconds after the start when first entered


@dataclass
class Launcher:
    """Starts children from a fork server that already imported the pipeline, and kills them on plan."""

    log_path: str
    delays: dict[str, float]  # target -> longest wait after its marker before the kill, seconds
    attempt_timeout: float = 120.0
    expected: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_OCCURRENCES))
    last_duration: float = 3.0

    def __post_init__(self) -> None:
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload([PRELOAD])

    def run(self, index: int, project: StormProject, settings: child.SyncSettings, plan: KillPlan | None) -> Attempt:
        attempt = Attempt(index, plan)
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=child.run_attempt, args=(project, settings, writer, self.log_path), name=f"storm-child-{index}"
        )
        started = time.perf_counter()
        process.start()
        writer.close()
        try:
            self._watch(process, reader, attempt, started)
        finally:
            process.join(30)
            if process.is_alive():  # never expected: a SIGKILLed child cannot linger
                os.kill(process.pid, signal.SIGKILL)
                process.join()
            reader.close()
        attempt.exitcode = process.exitcode
        attempt.seconds = time.perf_counter() - started
        if attempt.outcome is not None:
            self._learn(attempt)
        return attempt

    def _watch(self, process: Any, reader: Any, attempt: Attempt, started: float) -> None:
        plan = attempt.plan
        target_marker = TARGET_MARKERS.get(plan.target) if plan else None
        occurrence = 1 + int(plan.occurrence * self.expected[target_marker]) if target_marker else 0
        fire_at: float | None = None
        deadline = started + self.attempt_timeout
        while True:
            now = time.perf_counter()
            if fire_at is not None and now >= fire_at:
                os.kill(process.pid, signal.SIGKILL)
                attempt.killed = True
                break
            if now >= deadline:
                os.kill(process.pid, signal.SIGKILL)
                attempt.hung = attempt.killed = True
                break
            if not reader.poll(min(fire_at or deadline, deadline) - now):
                continue
            try:
                marker = reader.recv_bytes().decode()
            except EOFError:
                return  # the child exited by itself
            if marker.startswith(child.DONE):
                attempt.outcome = json.loads(marker[len(child.DONE) :])
                fire_at = None  # it finished: let it exit
                continue
            if marker.startswith(probes.RAIL):
                attempt.rail = marker.removeprefix(probes.RAIL)
                continue
            attempt.markers[marker] += 1
            attempt.first_seen.setdefault(marker, time.perf_counter() - started)
            attempt.phase = marker
            if plan is None or fire_at is not None or attempt.outcome is not None:
                continue
            if plan.target == "anywhere" and marker == "boot":
                fire_at = time.perf_counter() + plan.delay * self.last_duration
            elif marker == target_marker and attempt.markers[marker] == occurrence:
                fire_at = time.perf_counter() + plan.delay * self.delays[plan.target]
        self._drain(reader, attempt)

    @staticmethod
    def _drain(reader: Any, attempt: Attempt) -> None:
        """Read the markers the child sent before it died: the last one is where the kill landed."""
        while True:
            try:
                if not reader.poll(1.0):
                    return
                marker = reader.recv_bytes().decode()
            except (EOFError, OSError):
                return
            if marker.startswith(child.DONE):
                attempt.outcome = json.loads(marker[len(child.DONE) :])
                attempt.killed = False  # the kill came after the sync had finished
                continue
            if marker.startswith(probes.RAIL):
                attempt.rail = marker.removeprefix(probes.RAIL)
                continue
            attempt.markers[marker] += 1
            attempt.phase = marker

    def _learn(self, attempt: Attempt) -> None:
        """A complete sync shows how often each phase occurs and how long a sync takes now."""
        for marker in DEFAULT_OCCURRENCES:
            self.expected[marker] = max(1, attempt.markers[marker])
        self.last_duration = attempt.seconds
