"""Where a Dagster run's time goes: inside our asset and check functions, or in Dagster around them.

The benchmark wraps, in its own process only, Dagster's `invoke_compute_fn` (every asset and
check body goes through it) and a few functions our assets call by module-level name. Nothing in
the pipeline changes; the wrappers add two clock reads per call.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# (module, attribute or Class.method, label): the parts of our asset code the report breaks out.
PARTS = (
    ("ledger_pipeline.lib.sync", "_start_sync", "extract_log"),  # a tenant's client, cursor, reads started
    ("ledger_pipeline.lib.sync", "EntitySync.run", "extract_log"),
    ("ledger_pipeline.defs.log_assets", "_chain_check", "chain_check"),
    ("ledger_pipeline.defs.models.assets", "refresh_tenants", "mirror_refresh"),
    ("ledger_pipeline.defs.models.assets", "mirror_check_results", "mirror_checks"),
    ("ledger_pipeline.defs.models.assets", "refresh_tenant_tables", "marts"),
)
COMPUTE_MODULE = "dagster._core.execution.plan.compute_generator"


_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _rss_mb() -> float:
    """This process's resident set now (the kernel's figure, DuckDB's buffers included)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_MB


class Stopwatch:
    """Seconds and calls per label, seconds per op inside user code, and the peak RSS seen during each op.

    The RSS sampler is a thread reading /proc/self/statm every 20 ms: it tells which step holds the
    process's peak memory (ru_maxrss tells only how high it went).
    """

    SAMPLE_SECONDS = 0.02

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.per_op: dict[str, float] = defaultdict(float)
        self.peak_rss: dict[str, float] = defaultdict(float)
        self._current_op = "(dagster)"
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.SAMPLE_SECONDS):
            op, rss = self._current_op, _rss_mb()
            if rss > self.peak_rss[op]:
                self.peak_rss[op] = rss

    def close(self) -> None:
        self._stop.set()
        self._sampler.join()

    def timed(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started
                self.calls[label] += 1

        return wrapper

    def compute(self, invoke: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap Dagster's invoke_compute_fn: total user-code time, and per op name."""

        @functools.wraps(invoke)
        def wrapper(fn: Callable[..., Any], context: Any, *args: Any, **kwargs: Any) -> Any:
            op = _op_name(context)
            self._current_op = op
            self.calls["asset_code"] += 1
            started = time.perf_counter()
            try:
                result = invoke(fn, context, *args, **kwargs)
            finally:
                self._spent(op, time.perf_counter() - started)
                self._current_op = "(dagster)"
            # A body that yields its results (multi-assets, multi-checks) runs while Dagster iterates it.
            return self._timed_iteration(op, result) if inspect.isgenerator(result) else result

        return wrapper

    def _timed_iteration(self, op: str, results: Iterator[Any]) -> Iterator[Any]:
        """The generator's own time between Dagster's `next` calls, not Dagster's handling of what it yields."""
        while True:
            started, self._current_op = time.perf_counter(), op
            try:
                item = next(results)
            except StopIteration as done:
                self._spent(op, time.perf_counter() - started)
                return done.value
            finally:
                self._current_op = "(dagster)"
            self._spent(op, time.perf_counter() - started)
            yield item

    def _spent(self, op: str, seconds: float) -> None:
        self.seconds["asset_code"] += seconds
        self.per_op[op] += seconds

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()
        self.per_op.clear()
        self.peak_rss.clear()

    def snapshot(self) -> dict:
        return {
            "seconds": {k: round(v, 4) for k, v in sorted(self.seconds.items())},
            "calls": dict(sorted(self.calls.items())),
            "per_op_seconds": {k: round(v, 4) for k, v in sorted(self.per_op.items(), key=lambda kv: -kv[1])},
            "peak_rss_mb_by_op": {k: round(v) for k, v in sorted(self.peak_rss.items(), key=lambda kv: -kv[1])},
        }


def _op_name(context: Any) -> str:
    try:
        return context.op_execution_context.op_def.name
    except AttributeError:
        return getattr(getattr(context, "op_def", None), "name", "?")


@contextmanager
def instrumented() -> Iterator[Stopwatch]:
    """Install the wrappers for the duration of the block; fail loudly if a wrapped name moved."""
    watch = Stopwatch()
    patched: list[tuple[Any, str, Any]] = []
    try:
        for module_name, path, label in PARTS:
            owner: Any = importlib.import_module(module_name)
            *outer, attribute = path.split(".")  # "Class.method" wraps a method
            for name in outer:
                owner = getattr(owner, name)
            original = getattr(owner, attribute)  # AttributeError: the pipeline renamed it; update PARTS
            patched.append((owner, attribute, original))
            setattr(owner, attribute, watch.timed(label, original))
        compute = importlib.import_module(COMPUTE_MODULE)
        patched.append((compute, "invoke_compute_fn", compute.invoke_compute_fn))
        compute.invoke_compute_fn = watch.compute(compute.invoke_compute_fn)
        yield watch
    finally:
        watch.close()
        for module, attribute, original in reversed(patched):
            setattr(module, attribute, original)
