"""Where the pipeline keeps its files, read from the environment when asked (never at import time)."""

from __future__ import annotations

import os
from pathlib import Path


def duckdb_path() -> Path:
    """The ledger database: LEDGER_DUCKDB_PATH, default data/ledger.duckdb."""
    return Path(os.environ.get("LEDGER_DUCKDB_PATH") or "data/ledger.duckdb")


def state_dir() -> Path:
    """Rotated OAuth tokens and the sandbox's clock: LEDGER_STATE_DIR, default data/state. Never in DuckDB."""
    return Path(os.environ.get("LEDGER_STATE_DIR") or "data/state")


def tenants_path() -> Path:
    """The tenant registry file: LEDGER_TENANTS_PATH, default data/tenants.json."""
    return Path(os.environ.get("LEDGER_TENANTS_PATH") or "data/tenants.json")
