"""State shared by every sandbox instance naming the same state file: clock, tokens, faults, touches, skews,
revocations and data drifts.

Each Dagster step runs in its own process with its own QboSandbox; they agree on the simulated
clock, on which refresh token is current and on the faults left to fire because all of it lives in
one small JSON file. Changes are read-modify-write under an exclusive `fcntl.flock` on a sibling
lock file, and written atomically (temp file + os.replace); readers re-read only when the file's
inode, mtime or size changed. Without a path the same state simply lives in memory.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from .spec import Fault

T = TypeVar("T")
_FORMAT = 1


@dataclass
class FaultSlot:
    """An injected fault and how far it has got: requests let through (`passed`) and hit (`hits`)."""

    fault: Fault
    passed: int = 0
    hits: int = 0


@dataclass
class SharedState:
    clock_us: int
    fingerprint: str
    generations: dict[str, int] = field(default_factory=dict)
    faults: dict[str, list[FaultSlot]] = field(default_factory=dict)
    # (sec, realm, entity, slot, backdate seconds): LastUpdatedTime of the new version is sec - backdate
    touches: list[tuple[int, str, str, int, int]] = field(default_factory=list)
    skews: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # realm -> report -> party Id -> cents
    revoked: set[str] = field(default_factory=set)  # realms whose app connection was revoked (until reconnect)
    drifts: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # realm -> [(entity, Id, kind)]

    def to_json(self) -> dict[str, Any]:
        return {"format": _FORMAT, "fingerprint": self.fingerprint, "clock_us": self.clock_us,
                "refresh_generations": self.generations,
                "faults": {realm: [{"fault": s.fault.to_json(), "passed": s.passed, "hits": s.hits} for s in slots]
                           for realm, slots in self.faults.items() if slots},
                "touches": [list(t) for t in self.touches],
                "report_skews": {realm: reports for realm, reports in self.skews.items() if reports},
                "revoked": sorted(self.revoked),
                "drifts": {realm: [list(d) for d in rows] for realm, rows in self.drifts.items() if rows}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SharedState:
        if data.get("format") != _FORMAT:
            raise ValueError(f"unsupported sandbox state format {data.get('format')!r}")
        faults = {realm: [FaultSlot(Fault.from_json(s["fault"]), s["passed"], s["hits"]) for s in slots]
                  for realm, slots in data.get("faults", {}).items()}
        touches = [(int(t[0]), str(t[1]), str(t[2]), int(t[3]), int(t[4]) if len(t) > 4 else 0)
                   for t in data.get("touches", [])]
        skews = {str(realm): {str(report): {str(party): int(cents) for party, cents in by_party.items()}
                              for report, by_party in reports.items()}
                 for realm, reports in data.get("report_skews", {}).items()}
        drifts = {str(realm): [(str(d[0]), str(d[1]), str(d[2])) for d in rows]
                  for realm, rows in data.get("drifts", {}).items()}
        return cls(int(data["clock_us"]), str(data["fingerprint"]),
                   {str(k): int(v) for k, v in data.get("refresh_generations", {}).items()}, faults, touches, skews,
                   {str(r) for r in data.get("revoked", [])}, drifts)


class StateStore:
    """Home of the SharedState: memory only, or a JSON file shared between processes."""

    def __init__(self, path: Path | None, initial: SharedState) -> None:
        self.path = Path(path) if path is not None else None
        self._mutex = threading.RLock()
        self._state = initial
        self._stamp: tuple[int, int, int] | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._file_lock():
                if self.path.exists():
                    self._load()
                    if self._state.fingerprint != initial.fingerprint:
                        raise ValueError(f"sandbox state file {self.path} belongs to a sandbox with another seed "
                                         "or other companies; delete it or choose another state_path")
                else:
                    self._write()

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        assert self.path is not None
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _stat(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _load(self) -> None:
        assert self.path is not None
        stamp = self._stat()
        self._state = SharedState.from_json(json.loads(self.path.read_text()))
        self._stamp = stamp

    def _write(self) -> None:
        assert self.path is not None
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(self._state.to_json(), handle, separators=(",", ":"))
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = self._stat()

    def view(self) -> SharedState:
        """The current state (re-read only if another process changed the file). Treat it as read-only."""
        if self.path is not None and self._stat() != self._stamp:
            with self._mutex:
                if self._stat() != self._stamp:
                    self._load()
        return self._state

    def mutate(self, change: Callable[[SharedState], T]) -> T:
        """Apply `change` atomically with respect to every process sharing the file."""
        with self._mutex:
            if self.path is None:
                return change(self._state)
            with self._file_lock():
                self._load()
                result = change(self._state)
                self._write()
                return result
