"""Writers ATTACH the ledger file to a DuckDB instance kept per process, instead of building an instance per open.

A new DuckDB instance builds its whole catalog of built-in functions (15-30 ms here) and frees it
again on close, and a run opens the ledger for writing ~100 times. ATTACH and DETACH on a live
instance cost a few ms and keep the file's life cycle: DETACH checkpoints the WAL and lets go of
the file and its OS lock, as closing an instance did, so other processes see no difference.

One host per ledger file (its spill directory stays `<file>.tmp`, DuckDB's default for a file);
the writer lock guarantees at most one attachment of a file at a time. Hosts of other files are
closed when idle, and a forked child builds its own (a DuckDB instance does not survive fork).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ledger_pipeline.lib import settings


@dataclass
class _Host:
    pid: int
    instance: duckdb.DuckDBPyConnection
    attached: bool = False


_hosts: dict[str, _Host] = {}
_guard = threading.Lock()
_aliases = itertools.count()


def attach(db_path: Path) -> tuple[duckdb.DuckDBPyConnection, Callable[[], None]]:
    """A connection whose default database is `db_path` (read-write), and the function that detaches it.

    The detach function closes the connection first (rolling back what it left open), then detaches,
    which checkpoints; if detaching fails the whole host is closed so the file is let go regardless.
    Raises what ATTACH raises (duckdb.IOException while another process holds the file).
    """
    key = os.path.realpath(db_path)
    host = _host_for(key)
    alias = f"ledger_{next(_aliases)}"  # code-made identifier; the path itself is a bound parameter
    conn = host.instance.cursor()
    try:
        conn.execute(f"attach ? as {alias}", [key])
    except BaseException:
        conn.close()
        host.attached = False
        raise
    try:
        conn.execute(f"use {alias}")
    except BaseException:
        conn.close()
        _detach(key, host, alias)
        raise

    detached = False

    def detach() -> None:
        nonlocal detached
        if detached:
            return
        detached = True
        try:
            conn.close()
        finally:
            _detach(key, host, alias)

    return conn, detach


def is_attached(db_path: Path) -> bool:
    """Whether this process has `db_path` attached for writing (a second, read-only instance of it must not open:
    closing it would drop this process's OS lock on the file while the writer still has it)."""
    host = _hosts.get(os.path.realpath(db_path))
    return host is not None and host.pid == os.getpid() and host.attached


def _host_for(key: str) -> _Host:
    with _guard:
        pid = os.getpid()
        for other, host in list(_hosts.items()):
            if host.pid != pid:  # inherited through fork: unusable here, and not ours to close
                del _hosts[other]
            elif other != key and not host.attached:
                del _hosts[other]
                host.instance.close()
        host = _hosts.get(key)
        if host is None:
            config = {"temp_directory": f"{key}.tmp", "memory_limit": settings.duckdb_memory_limit()}
            host = _Host(pid, duckdb.connect(":memory:", config=config))
            _hosts[key] = host
        if host.attached:  # the writer lock makes this unreachable; refuse rather than share a writer's file
            raise RuntimeError(f"{key} is already attached for writing in this process")
        host.attached = True
        return host


def _detach(key: str, host: _Host, alias: str) -> None:
    try:
        cursor = host.instance.cursor()
        try:
            cursor.execute(f"detach {alias}")
        finally:
            cursor.close()
    except BaseException:
        with _guard:
            if _hosts.get(key) is host:
                del _hosts[key]
        host.instance.close()  # closing the instance lets go of every file it holds
        raise
    finally:
        host.attached = False
