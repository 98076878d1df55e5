"""Where the pipeline keeps its files, read from the environment when asked (never at import time)."""

from __future__ import annotations

import os
import re
from pathlib import Path


def duckdb_path() -> Path:
    """The ledger database: LEDGER_DUCKDB_PATH, default data/ledger.duckdb."""
    return Path(os.environ.get("LEDGER_DUCKDB_PATH") or "data/ledger.duckdb")


def read_dir(ledger: Path) -> Path:
    """The read side analysts query (lib/read_side/): LEDGER_READ_DIR, default the folder `read` beside the ledger."""
    return Path(os.environ.get("LEDGER_READ_DIR") or Path(ledger).parent / "read").absolute()


def state_dir() -> Path:
    """Rotated OAuth tokens and the sandbox's clock: LEDGER_STATE_DIR, default data/state. Never in DuckDB."""
    return Path(os.environ.get("LEDGER_STATE_DIR") or "data/state")


def tenants_path() -> Path:
    """The tenant registry file: LEDGER_TENANTS_PATH, default data/tenants.json."""
    return Path(os.environ.get("LEDGER_TENANTS_PATH") or "data/tenants.json")


_MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def duckdb_memory_limit() -> str:
    """DuckDB's buffer pool cap for the ledger (it spills to `<file>.tmp` beyond it): LEDGER_DUCKDB_MEMORY_LIMIT,
    default 512MB, so a process's memory stays flat however large the ledger grows."""
    value = os.environ.get("LEDGER_DUCKDB_MEMORY_LIMIT") or "512MB"
    if not _MEMORY.fullmatch(value.strip()):
        raise ValueError(f"LEDGER_DUCKDB_MEMORY_LIMIT={value!r} is not a size such as 512MB or 2GB")
    return value.strip()


def sync_tenants_per_run() -> int:
    """How many tenants one scheduled sync run takes at most: LEDGER_SYNC_TENANTS_PER_RUN, default 100.

    A run has a fixed cost (launch, planning, the event log) that a run over many tenants pays once;
    1 gives every tenant a run of its own.
    """
    value = os.environ.get("LEDGER_SYNC_TENANTS_PER_RUN") or "100"
    if not value.strip().isdigit() or not 1 <= int(value) <= 1000:
        raise ValueError(f"LEDGER_SYNC_TENANTS_PER_RUN={value!r} is not a whole number of tenants from 1 to 1000")
    return int(value)
