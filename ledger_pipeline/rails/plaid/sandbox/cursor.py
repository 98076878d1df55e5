"""/transactions/sync cursors: opaque to clients, base64 of a small JSON naming the item and a position.

A position is an instant of the sandbox clock (every change of the item up to it has been read). A cursor in
the middle of a paginated answer also names the snapshot being paged (`t`) and how far the pages got (`o`);
the last page's cursor is the snapshot itself. An empty cursor means the beginning of the history.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from .responses import invalid_field

_VERSION = 1


@dataclass(frozen=True)
class Cursor:
    item_id: str
    since: int | None  # None: nothing read yet
    snapshot: int | None = None  # set while paging: the instant the pages show
    offset: int = 0
    account_id: str | None = None  # the options.account_id the cursor was made for

    @property
    def mid_pagination(self) -> bool:
        return self.snapshot is not None

    def encode(self) -> str:
        data: dict = {"v": _VERSION, "i": self.item_id, "p": self.since}
        if self.snapshot is not None:
            data.update(t=self.snapshot, o=self.offset)
        if self.account_id is not None:
            data["a"] = self.account_id
        raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(text: str, item_id: str) -> Cursor:
    """The cursor `text` stands for, or Plaid's INVALID_FIELD (unreadable, or made for another item)."""
    if text == "":
        return Cursor(item_id, None)
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        data = None
    if not _well_formed(data):
        raise invalid_field("cursor is malformed: pass a next_cursor returned by /transactions/sync, or omit it")
    if data["i"] != item_id:
        raise invalid_field("cursor not associated with access_token")
    return Cursor(data["i"], data["p"], data.get("t"), data.get("o", 0), data.get("a"))


def _well_formed(data: object) -> bool:
    if not isinstance(data, dict) or data.get("v") != _VERSION or not isinstance(data.get("i"), str):
        return False
    if not set(data) <= {"v", "i", "p", "t", "o", "a"} or not _instant(data.get("p"), nullable=True):
        return False
    if ("t" in data) != ("o" in data) or ("t" in data and not (_instant(data["t"]) and _instant(data["o"]))):
        return False
    return "a" not in data or isinstance(data["a"], str)


def _instant(value: object, nullable: bool = False) -> bool:
    return (value is None and nullable) or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
