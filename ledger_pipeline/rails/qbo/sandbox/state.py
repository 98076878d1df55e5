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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from ledger_pipeline.lib.ids import InvalidInput

from .spec import GENESIS, Fault
from .timefmt import epoch_us

T = TypeVar("T")
_FORMAT = 1
_MIN_CLOCK_US = epoch_us(GENESIS)
_MAX_CLOCK_US = epoch_us(datetime(9999, 1, 1, tzinfo=timezone.utc))  # datetime's range, with a year to spare
_MAX_COUNTER = 2**53
_MAX_CENTS = 10**11  # a report skew of at most 1,000,000,000.00


class SandboxStateError(InvalidInput):
    """The sandbox's state file (or its lock, or its folder) cannot be used: missing, unreadable, corrupt or
    another sandbox's. Never repaired or reset silently: a fresh state would move the clock back and lose the
    refresh-token generations, faults and switches every process shares."""

    def __init__(self, path: Path, cause: str, remedy: str | None = None) -> None:
        self.path = path
        self.cause = cause
        self.remedy = remedy
        remedy = remedy or (f"restore the file (e.g. from a backup), or remove the state directory {path.parent} "
                            f"for a fresh sandbox (its clock restarts at {GENESIS.date().isoformat()})")
        super().__init__(f"sandbox state file {path}: {cause}; {remedy}")

    def __reduce__(self) -> tuple[Any, ...]:  # pickled between Dagster processes with its message intact
        return (type(self), (self.path, self.cause, self.remedy))


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
    # Plaid sandbox items whose login is required (ITEM_LOGIN_REQUIRED until relogin); absent from older files
    plaid_login_required: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {"format": _FORMAT, "fingerprint": self.fingerprint, "clock_us": self.clock_us,
                "refresh_generations": self.generations,
                "faults": {realm: [{"fault": s.fault.to_json(), "passed": s.passed, "hits": s.hits} for s in slots]
                           for realm, slots in self.faults.items() if slots},
                "touches": [list(t) for t in self.touches],
                "report_skews": {realm: reports for realm, reports in self.skews.items() if reports},
                "revoked": sorted(self.revoked),
                "drifts": {realm: [list(d) for d in rows] for realm, rows in self.drifts.items() if rows},
                **({"plaid_login_required": sorted(self.plaid_login_required)} if self.plaid_login_required else {})}

    @classmethod
    def from_json(cls, data: Any) -> SharedState:
        """The state a file holds; ValueError naming the first key whose value is not what was written."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, found {_kind(data)}")
        if data.get("format") != _FORMAT:
            raise ValueError(f"unsupported sandbox state format {data.get('format')!r:.40}")
        clock = _int(data.get("clock_us"), "clock_us", _MIN_CLOCK_US, _MAX_CLOCK_US)
        fingerprint = data.get("fingerprint")
        if not isinstance(fingerprint, str):
            raise ValueError(f"'fingerprint' must be a string, found {_kind(fingerprint)}")
        generations = {realm: _int(v, f"refresh_generations.{realm}", 0, _MAX_COUNTER)
                       for realm, v in _object(data.get("refresh_generations", {}), "refresh_generations").items()}
        faults = {}
        for realm, slots in _object(data.get("faults", {}), "faults").items():
            faults[realm] = []
            for i, slot in enumerate(_array(slots, f"faults.{realm}")):
                where = f"faults.{realm}[{i}]"
                if not isinstance(slot, dict):
                    raise ValueError(f"{where!r} must be an object, found {_kind(slot)}")
                try:
                    fault = Fault.from_json(slot.get("fault"))
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"{where + '.fault'!r} is not a fault ({exc})") from None
                faults[realm].append(FaultSlot(fault, _int(slot.get("passed"), f"{where}.passed", 0, _MAX_COUNTER),
                                               _int(slot.get("hits"), f"{where}.hits", 0, _MAX_COUNTER)))
        touches = []
        for i, t in enumerate(_array(data.get("touches", []), "touches")):
            where = f"touches[{i}]"
            if not isinstance(t, list) or len(t) not in (4, 5):
                raise ValueError(f"{where!r} must be a list [second, realm, entity, slot, backdate]")
            touches.append((_int(t[0], f"{where}[0]", 0, _MAX_CLOCK_US // 1_000_000), _str(t[1], f"{where}[1]"),
                            _str(t[2], f"{where}[2]"), _int(t[3], f"{where}[3]", 0, _MAX_COUNTER),
                            _int(t[4], f"{where}[4]", 0, _MAX_CLOCK_US // 1_000_000) if len(t) > 4 else 0))
        skews = {realm: {report: {party: _int(cents, f"report_skews.{realm}.{report}.{party}", -_MAX_CENTS, _MAX_CENTS)
                                  for party, cents in _object(by_party, f"report_skews.{realm}.{report}").items()}
                         for report, by_party in _object(reports, f"report_skews.{realm}").items()}
                 for realm, reports in _object(data.get("report_skews", {}), "report_skews").items()}
        revoked = {_str(r, "revoked[]") for r in _array(data.get("revoked", []), "revoked")}
        drifts = {}
        for realm, rows in _object(data.get("drifts", {}), "drifts").items():
            drifts[realm] = []
            for i, d in enumerate(_array(rows, f"drifts.{realm}")):
                if not isinstance(d, list) or len(d) != 3 or not all(isinstance(x, str) for x in d):
                    raise ValueError(f"'drifts.{realm}[{i}]' must be a list of three strings [entity, id, kind]")
                drifts[realm].append((d[0], d[1], d[2]))
        plaid_login = {_str(i, "plaid_login_required[]")
                       for i in _array(data.get("plaid_login_required", []), "plaid_login_required")}
        return cls(clock, fingerprint, generations, faults, touches, skews, revoked, drifts, plaid_login)


def _kind(value: Any) -> str:
    return "null" if value is None else {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"the number {value!r:.40}" if isinstance(value, (int, float)) else type(value).__name__)


def _int(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    raise ValueError(f"{key!r} must be a whole number from {low} to {high}, found {_kind(value)}")


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string, found {_kind(value)}")
    return value


def _object(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} must be an object, found {_kind(value)}")
    return value


def _array(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{key!r} must be a list, found {_kind(value)}")
    return value


class StateStore:
    """Home of the SharedState: memory only, or a JSON file shared between processes."""

    def __init__(self, path: Path | None, initial: SharedState) -> None:
        self.path = Path(path) if path is not None else None
        self._mutex = threading.RLock()
        self._state = initial
        self._fingerprint = initial.fingerprint
        self._stamp: tuple[int, int, int] | None = None
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise SandboxStateError(self.path, f"its directory {self.path.parent} is not a directory",
                                        "move that file away or set LEDGER_STATE_DIR to a directory") from None
            except OSError as exc:
                raise SandboxStateError(self.path, f"its directory cannot be created ({exc.strerror or exc})",
                                        "check the permissions of its parent") from None
            with self._file_lock():
                if os.path.lexists(self.path):
                    self._load()
                else:
                    self._write()

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        assert self.path is not None
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except IsADirectoryError:
            raise SandboxStateError(self.path, f"its lock file {lock_path} is a directory",
                                    "remove that directory (the lock file holds nothing)") from None
        except OSError as exc:
            raise SandboxStateError(self.path, f"its lock file {lock_path} cannot be opened ({exc.strerror or exc})",
                                    "check the state directory's permissions") from None
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
        except OSError as exc:
            raise SandboxStateError(self.path, f"cannot be examined ({exc.strerror or exc})") from None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _load(self) -> None:
        assert self.path is not None
        stamp = self._stat()
        state = _parse(self.path)
        if state.fingerprint != self._fingerprint:  # checked on every read: the file may be swapped under us
            raise SandboxStateError(self.path, "belongs to a sandbox with another seed or other companies "
                                    "(or another state_path is meant)")
        self._state = state
        self._stamp = stamp

    def _write(self) -> None:
        assert self.path is not None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".", suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as handle:
                    json.dump(self._state.to_json(), handle, separators=(",", ":"))
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            self._stamp = None  # what is in memory was not saved: the next reader re-reads the file
            raise SandboxStateError(self.path, f"cannot be written ({exc.strerror or exc})",
                                    "check the state directory's permissions and free space") from None
        self._stamp = self._stat()

    def check(self) -> None:
        """Read the file under its lock now (SandboxStateError if the file or its lock is unusable); changes nothing."""
        if self.path is not None:
            with self._mutex, self._file_lock():
                self._load()

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
                try:
                    result = change(self._state)
                except BaseException:
                    self._stamp = None  # a refused change may have half-applied in memory: re-read the file
                    raise
                self._write()
                return result


def _parse(path: Path) -> SharedState:
    """The state a file holds, or SandboxStateError naming what is wrong with it (never its whole content)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if path.is_symlink():
            raise SandboxStateError(path, f"is a symlink to {os.readlink(path)}, which does not exist") from None
        raise SandboxStateError(path, "has disappeared (deleted while the sandbox was in use?)") from None
    except IsADirectoryError:
        raise SandboxStateError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise SandboxStateError(path, f"cannot be read ({exc.strerror or exc})") from None
    problem = "is empty" if not raw.strip() else None
    try:
        data = json.loads(raw.decode("utf-8")) if problem is None else None
    except UnicodeDecodeError:
        problem = "is not UTF-8 text (binary garbage?)"
    except json.JSONDecodeError as exc:
        problem = f"is not valid JSON ({exc}; truncated?)"  # the position only, never the document
    except (ValueError, RecursionError) as exc:
        problem = f"is not valid JSON ({str(exc)[:80] or type(exc).__name__})"
    if problem is not None:
        raise SandboxStateError(path, problem)
    try:
        return SharedState.from_json(data)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        problem = f"holds no valid sandbox state ({str(exc)[:200] or type(exc).__name__})"
    raise SandboxStateError(path, problem)
