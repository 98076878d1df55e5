"""The QBO sandbox every process of a project shares through its state file, as the pipeline and the CLI use it.

This is also the clock of every rail's sandbox: the other rails render the same businesses at this instant.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .auth import CLIENT_ID, CLIENT_SECRET, refresh_token
from .sandbox import QboSandbox
from .spec import DEMO_COMPANIES

DEFAULT_PORT = 8765
STATE_FILE = "qbo_sandbox.json"


@functools.cache
def shared_sandbox(state_dir: Path, scale: float = 1.0, rate_limited: bool = True) -> QboSandbox:
    """The emulator whose clock and tokens every process shares through a state file under state_dir.

    `scale` multiplies the demo companies' sizes (tests shrink them, benchmarks grow them).
    """
    from ledger_pipeline.rails.qbo import sandbox  # read when built: tests may add a company to the package's list

    companies = tuple(dataclasses.replace(c, size=max(50, int(c.size * scale))) for c in sandbox.DEMO_COMPANIES)
    options = {} if rate_limited else {"rate_limit": None}
    return QboSandbox(companies, state_path=state_dir / STATE_FILE, **options)


def advance_shared_clock(state_dir: Path, delta: timedelta) -> datetime:
    """Move the shared clock (every rail's sandbox world) forward; the new instant."""
    box = shared_sandbox(state_dir)
    box.advance(delta)
    return box.now


def serve_shared(state_dir: Path, host: str, port: int) -> None:
    from .server import serve

    serve(lambda: shared_sandbox(state_dir), host, port)  # built once the port is bound


def demo_accounts() -> dict[str, str]:
    """Realm id -> company name of every sandbox company."""
    return {c.realm_id: c.name for c in DEMO_COMPANIES}


def credentials(connection: Any, state_dir: Path) -> dict[str, str]:
    """What a QBO client needs to reach this tenant's sandbox company over HTTP (`sandbox serve`).

    The refresh token is the realm's current one: using it rotates it, as QBO does, and the pipeline then
    refreshes from its own token store on its next sync only if it holds the newer one, so point a tool at a
    tenant the pipeline is not syncing, or expect that tenant's next sync to fail with invalid_grant.
    """
    generation = shared_sandbox(state_dir).store.view().generations.get(connection.realm_id, 0)
    base = f"http://127.0.0.1:{DEFAULT_PORT}"
    return {
        "rail": "qbo",
        "realm_id": connection.realm_id,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": refresh_token(connection.realm_id, generation),
        "base_url": base,
        "token_url": f"{base}/oauth2/v1/tokens/bearer",
    }
