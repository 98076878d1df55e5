"""Phase markers a storm child sends to its driver, so kills can be aimed at a phase and attributed to one.

The probes only wrap functions to announce them; they change no behaviour.
A marker is sent when a phase starts, so the last marker the driver received
before the child died names the phase the kill landed in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

# Fine-grained phases, in the order a sync goes through them.
PHASES = ("boot", "auth", "paging", "log_write", "commit", "committed", "mirror_refresh", "mirror_check")
# What the storm report groups them into: the four phases the brief names, and everything else.
GROUPS = {
    "auth": "paging",
    "paging": "paging",
    "log_write": "duckdb_write",
    "commit": "commit",
    "mirror_refresh": "mirror_refresh",
}
GROUP_NAMES = ("paging", "duckdb_write", "commit", "mirror_refresh", "other")
# Markers "rail qbo", "rail stripe", "rail plaid" name the rail whose step starts (a log step, a mirror step); they are not
# phases: the driver keeps the last one apart, so a kill is attributed to a phase and to a rail.
RAIL = "rail "
RAIL_NAMES = ("qbo", "stripe", "plaid")


def group(phase: str) -> str:
    return GROUPS.get(phase, "other")


def install(send: Callable[[str], None]) -> None:
    """Wrap the functions that start each phase so that entering them sends its marker."""
    from ledger_pipeline.defs.models import assets as model_assets
    from ledger_pipeline.lib import cursors
    from ledger_pipeline.lib.entity_log import LogWriter
    from ledger_pipeline.rails.plaid.sandbox import SandboxTransport as PlaidTransport
    from ledger_pipeline.rails.qbo.sandbox.sandbox import SandboxTransport
    from ledger_pipeline.rails.qbo.sync import EntitySync
    from ledger_pipeline.rails.stripe.sandbox import SandboxTransport as StripeTransport

    def request_phase(_transport: Any, request: Any, *_: Any, **__: Any) -> str:
        return "auth" if "oauth2" in request.url.path else "paging"

    _wrap(SandboxTransport, "handle_request", send, on_entry=request_phase)
    _wrap(StripeTransport, "handle_request", send, on_entry="paging")  # one platform key: no token requests
    _wrap(PlaidTransport, "handle_request", send, on_entry="paging")  # access tokens do not expire
    # The writer's insert of its staged rows (uncommitted); control then returns to the paging loop.
    _wrap(LogWriter, "_insert", send, on_entry="log_write", on_exit="paging")
    # A sync saves the cursor right before its commit: from here to its return is the commit.
    _wrap(cursors, "save", send, on_entry="commit")
    _wrap(EntitySync, "run", send, on_exit="committed")
    _wrap(model_assets, "refresh_tenants", send, on_entry="mirror_refresh", on_exit="mirror_check")
    # A log step makes its entity's sync before it reads; a mirror step refreshes one model (mirror.<rail>_<table>).
    _wrap(EntitySync, "__init__", send, on_entry=lambda _sync, _conn, session, *_, **__: RAIL + session.rail)
    _wrap(model_assets, "refresh_tenants", send, on_entry=lambda _conn, model, *_, **__: RAIL + _rail_of(model))


def _rail_of(model: Any) -> str:
    return model.table.split("_")[0]


def _wrap(
    owner: Any,
    name: str,
    send: Callable[[str], None],
    *,
    on_entry: str | Callable[..., str] | None = None,
    on_exit: str | None = None,
) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def announced(*args: Any, **kwargs: Any) -> Any:
        if on_entry is not None:
            send(on_entry if isinstance(on_entry, str) else on_entry(*args, **kwargs))
        result = original(*args, **kwargs)
        if on_exit is not None:
            send(on_exit)
        return result

    setattr(owner, name, announced)
