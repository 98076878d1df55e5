"""The Ramp objects the pipeline mirrors, declared as data: how each is read, since Ramp has no change feed.

- `whole`: users, vendors and cards are few; each sync reads them all (cards also in the sets Ramp's default
  filters hide: terminated and never activated), so a change is seen at once and a card that leaves the
  default list is logged as the terminated card it is. Their count lets the sweep find anything gone.
- `window`: transactions, bills and statements by a date window reaching `lookback_days` back from the newest
  object the last sync saw, plus the hidden set (declined transactions, archived bills) over the same window.
  The objects the last sync left not final (`is_final`: a pending transaction, a cleared one not yet on a
  statement, a bill not paid) are read again: the window reaches back to the oldest of them, up to
  `widen_days`, and any older one is read by id.
- `updated`: reimbursements carry `updated_at`, so they are read with `updated_after`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RampEntity:
    name: str  # the log's entity_type
    table: str  # physical suffix: raw.ramp_<table>, mirror.ramp_<table>
    path: str  # the list endpoint under /developer/v1
    scope: str  # the OAuth scope reading it needs
    read: str  # "whole" | "window" | "updated"
    time_field: str = ""  # window/updated: the object's time the window or `updated_after` is on
    from_param: str = ""  # window: the filter the window starts with
    hidden: tuple[tuple[str, str], ...] = ()  # the filters that list what the default list hides, one set each
    lookback_days: int = 0  # window: how far back before the newest object seen each sync reads again
    widen_days: int = 0  # window: how far back at most it reaches for objects not final (older: read by id)
    is_final: Callable[[dict], bool] | None = None  # window: the object no longer changes (None: once read)


def _transaction_final(obj: dict) -> bool:
    """Declined for good, or cleared and on a statement (Ramp sets `statement_id` when the month closes)."""
    state = obj.get("state")
    return state in ("DECLINED", "ERROR") or (state == "CLEARED" and bool(obj.get("statement_id")))


def _bill_final(obj: dict) -> bool:
    """Paid, or archived (its QBO bill voided or deleted)."""
    return obj.get("status") == "PAID" or obj.get("archived_at") is not None


TRANSACTION = RampEntity(
    "transaction", "transactions", "transactions", "transactions:read", "window", "user_transaction_time",
    "from_date", (("state", "DECLINED"),), lookback_days=14, widen_days=45, is_final=_transaction_final,
)  # fmt: skip
BILL = RampEntity(
    "bill", "bills", "bills", "bills:read", "window", "issued_at", "from_issued_date", (("is_archived", "true"),),
    lookback_days=120, widen_days=730, is_final=_bill_final,
)  # fmt: skip
STATEMENT = RampEntity("statement", "statements", "statements", "statements:read", "window", "end_date", "from_date",
                       lookback_days=7, widen_days=7)  # fmt: skip
REIMBURSEMENT = RampEntity("reimbursement", "reimbursements", "reimbursements", "reimbursements:read", "updated",
                           "updated_at", "updated_after")  # fmt: skip
USER = RampEntity("user", "users", "users", "users:read", "whole")
VENDOR = RampEntity("vendor", "vendors", "vendors", "vendors:read", "whole")
CARD = RampEntity("card", "cards", "cards", "cards:read", "whole",
                  hidden=(("is_terminated", "true"), ("is_activated", "false")))  # fmt: skip
ENTITIES: tuple[RampEntity, ...] = (USER, CARD, VENDOR, TRANSACTION, BILL, REIMBURSEMENT, STATEMENT)
BY_NAME: dict[str, RampEntity] = {e.name: e for e in ENTITIES}
SCOPES = " ".join(sorted({e.scope for e in ENTITIES}))
