"""One writer at a time per ledger file, across threads and processes: an flock held for a connection's life.

DuckDB stops a second *process* from opening a file for writing, but two
connections of one process may both write it, and their appends do not
conflict: two log writers would each take max(seq) + 1 and fork a chain.
Dagster's pool normally keeps writers apart; this lock makes it a property
of the storage itself. flock locks belong to an open file description, so
each acquisition opens its own descriptor and excludes threads of the same
process as well as other processes; the kernel drops it when a process dies,
so a killed writer never leaves it behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

WRITER_LOCK_SUFFIX = ".writer.lock"
POLL_SECONDS = 0.05
FIRST_POLL_SECONDS = 0.002


class WriterLockTimeout(RuntimeError):
    """Another writer kept the ledger for longer than the caller was prepared to wait."""


class WriterLock:
    """An exclusive flock on `<database>.writer.lock`, stamped with who holds it (for the waiter's message).

    The lock file exists only while a writer holds it: the holder removes it
    before unlocking, and whoever then gets the lock on the removed file
    starts again on a new one (the usual flock-and-unlink dance).
    """

    _owners: dict[str, int] = {}  # lock file -> thread ident holding it, in this process
    _guard = threading.Lock()

    def __init__(self, path: Path, fd: int) -> None:
        self._path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, db_path: Path, deadline: float) -> WriterLock:
        """Take the lock, waiting until `deadline` (time.monotonic()) for the writer that holds it."""
        real = Path(os.path.realpath(db_path))  # one lock per file, however it is reached
        lock_path = real.with_name(real.name + WRITER_LOCK_SUFFIX)
        with cls._guard:
            if cls._owners.get(str(lock_path)) == threading.get_ident():
                raise WriterLockTimeout(
                    f"this thread already has {db_path} open for writing; close that connection before opening another"
                )
        waited_from = time.monotonic()
        while True:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                _flock(fd, deadline, lambda: _timeout_message(db_path, lock_path, waited_from))
                if _is_current(fd, lock_path):
                    _stamp(fd)
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # its holder removed it while we waited: lock the file now at that path
        with cls._guard:
            cls._owners[str(lock_path)] = threading.get_ident()
        return cls(lock_path, fd)

    def release(self) -> None:
        """Let the next writer in; safe to call more than once."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with self._guard:
            self._owners.pop(str(self._path), None)
        with contextlib.suppress(OSError):
            os.unlink(self._path)  # we hold it, so the path is still ours
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _flock(fd: int, deadline: float, message: Callable[[], str]) -> None:
    """Poll for the lock, first every few ms (a step hands the ledger to the next within ms) up to POLL_SECONDS."""
    pause = FIRST_POLL_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise WriterLockTimeout(message()) from None
            time.sleep(pause)
            pause = min(pause * 2, POLL_SECONDS)


def _is_current(fd: int, lock_path: Path) -> bool:
    """Whether the locked descriptor is still the file at `lock_path` (not one its last holder removed)."""
    try:
        on_disk = os.stat(lock_path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _timeout_message(db_path: Path, lock_path: Path, waited_from: float) -> str:
    return (
        f"another writer holds {db_path} ({holder(lock_path)}); waited {time.monotonic() - waited_from:.1f}s "
        "for it. One writer at a time: let it finish (the ledger_duckdb pool normally queues writers), then retry"
    )


def holder(lock_path: Path) -> str:
    """Who the lock file says holds it: `pid 123, thread MainThread, since ...` (best effort)."""
    with contextlib.suppress(OSError):
        text = lock_path.read_text(encoding="utf-8").strip()
        if text:
            return text
    return "holder unknown"


def _stamp(fd: int) -> None:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    note = f"pid {os.getpid()}, thread {threading.current_thread().name}, since {since}\n".encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, note, 0)


def _close_then_release(close: Callable[[], None], lock: WriterLock) -> None:
    """Let go of the file, then let the next writer in (even if letting go failed)."""
    try:
        close()
    finally:
        lock.release()


class LedgerConnection:
    """A writer's DuckDB connection: behaves as the connection it wraps and releases the writer lock on close.

    Every attribute is the wrapped connection's; only `close` (and leaving a
    `with` block) also lets the next writer in. `close` is what lets go of the
    file (for an attached ledger, closing the connection and detaching it). A
    connection dropped without being closed is closed and releases the lock
    when it is garbage-collected.
    """

    __slots__ = ("_conn", "_finish", "__weakref__")

    def __init__(
        self, conn: duckdb.DuckDBPyConnection, lock: WriterLock, close: Callable[[], None] | None = None
    ) -> None:
        object.__setattr__(self, "_conn", conn)
        # runs once: on close, or when the connection is garbage-collected unclosed
        object.__setattr__(self, "_finish", weakref.finalize(self, _close_then_release, close or conn.close, lock))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)

    def __repr__(self) -> str:
        return f"<LedgerConnection writer of {self._conn!r}>"

    def close(self) -> None:
        self._finish()

    def __enter__(self) -> LedgerConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
