"""Running one contender in its own process and reading its peak memory from the kernel.

The contender reports its own peak (VmHWM since its exec, or the largest of the processes it
waited for, such as dlt's normalize workers: bench/contender.py). The ru_maxrss `os.wait4` gives
is only the fallback: Linux starts it from the memory of the benchmark driver the child was
forked from, so a contender smaller than the driver (which holds every sandbox) would show the
driver's figure, not its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class ContenderFailed(RuntimeError):
    """A contender's process exited non-zero; the message points at its log."""


@dataclass(frozen=True)
class ChildResult:
    result: dict
    peak_rss_mb: float
    process_seconds: float  # the whole process, interpreter start and imports included
    cpu_seconds: float  # user + system CPU of the process (and of children it waited for)


def run_child(name: str, job: dict, log_dir: Path, env: dict[str, str] | None = None) -> ChildResult:
    """Run `python -m bench.contender` on `job`; return what it reported with its peak RSS."""
    log_dir.mkdir(parents=True, exist_ok=True)
    job_path, result_path, log_path = (log_dir / f"{name}.{ext}" for ext in ("job.json", "result.json", "log"))
    job_path.write_text(json.dumps(job, default=str))
    result_path.unlink(missing_ok=True)
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.contender", str(job_path), str(result_path)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped above: keep Popen from waiting again
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 or not result_path.exists():
        tail = log_path.read_text()[-2000:]
        raise ContenderFailed(f"{name} exited with {proc.returncode}; see {log_path}\n{tail}")
    cpu = usage.ru_utime + usage.ru_stime
    result = json.loads(result_path.read_text())
    own = result.pop("own_peak_rss_mb", None)
    return ChildResult(result, own if own is not None else usage.ru_maxrss / 1024, elapsed, cpu)
