"""Ramp's lists: query parameters, the filters of each list, keyset pages and `page.next`.

A page is the next `page_size` objects, in the list's order, after the object whose id `start` names (Ramp's
keyset paging: `start` is the last id of the previous page); `page.next` is this request's URL with every
parameter kept, `page_size` set and `start` moved, or null after the last object. Sort keys never change, so
following `next` reads every object exactly once even while the clock moves. Parameters that fail validation
answer 422 naming the field; parameters Ramp documents but the sandbox does not serve answer 400 (better than
a silently unfiltered list); any other parameter is ignored, as Ramp does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import httpx

from .responses import invalid_field, invalid_input
from .sources import Listing
from .spec import is_uuid

MIN_PAGE_SIZE, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE = 2, 100, 20


class Query:
    """The request's query parameters, read and checked one by one."""

    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        self.params = request.url.params

    def text(self, name: str) -> str | None:
        return self.params.get(name)

    def page_size(self) -> int:
        raw = self.text("page_size")
        if raw is None:
            return DEFAULT_PAGE_SIZE
        try:
            size = int(raw.strip())
        except ValueError:
            raise invalid_field("page_size", "Not a valid integer.") from None
        if not MIN_PAGE_SIZE <= size <= MAX_PAGE_SIZE:
            raise invalid_field("page_size", f"Value must be between {MIN_PAGE_SIZE} and {MAX_PAGE_SIZE}")
        return size

    def flag(self, name: str) -> bool | None:
        raw = self.text(name)
        if raw is None:
            return None
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise invalid_field(name, "Not a valid boolean.")

    def instant(self, name: str) -> int | None:
        """An ISO 8601 date or date-time as epoch seconds (no offset: UTC, as Ramp assumes)."""
        raw = self.text(name)
        if raw is None:
            return None
        text = raw.strip().replace(" ", "+")  # a `+00:00` sent unencoded arrives as a space
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise invalid_field(name, "Not a valid datetime.") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp())

    def uuid(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is not None and not is_uuid(raw.lower()):
            raise invalid_field(name, "Not a valid UUID.")
        return None if raw is None else raw.lower()

    def choice(self, name: str, allowed: Iterable[str]) -> str | None:
        raw, allowed = self.text(name), tuple(allowed)
        if raw is not None and raw not in allowed:
            raise invalid_field(name, f"Must be one of: {', '.join(allowed)}.")
        return raw

    def cents(self, name: str) -> int | None:
        """A decimal amount in dollars (Ramp's `min_amount` / `max_amount`), as cents."""
        raw = self.text(name)
        if raw is None:
            return None
        try:
            value = Decimal(raw.strip())
        except InvalidOperation:
            raise invalid_field(name, "Not a valid number.") from None
        if not value.is_finite():
            raise invalid_field(name, "Not a valid number.")
        return int(value * 100)

    def refuse(self, names: Iterable[str]) -> None:
        """Ramp filters the sandbox does not serve: 400, never a silently unfiltered answer."""
        used = sorted(name for name in names if name in self.params)
        if used:
            raise invalid_input(f"the Ramp sandbox does not serve the filter(s) {', '.join(used)}")


@dataclass
class Plan:
    """How one request reads a list: which listing, which objects and in which direction."""

    listing: Listing
    keep: Callable[[Any], bool]
    descending: bool = True


def page(plan: Plan, start: str | None, size: int) -> tuple[list[Any], bool]:
    """The objects of the page after `start` (None: the first page), and whether more follow."""
    items, n = plan.listing.items, len(plan.listing.items)
    step = -1 if plan.descending else 1
    if start is None:
        i = n - 1 if plan.descending else 0
    else:
        position = plan.listing.ids.get(start)
        if position is None:
            raise invalid_field("start", "Not a valid start: pass the `next` URL of the previous page as it is")
        i = position + step
    out: list[Any] = []
    keep = plan.keep
    while 0 <= i < n and len(out) <= size:
        if keep(items[i]):
            out.append(items[i])
        i += step
    return out[:size], len(out) > size


def next_url(request: httpx.Request, size: int, last_id: str) -> str:
    """This request's URL with every parameter kept, `page_size` set and `start` after the last object."""
    pairs = [(k, v) for k, v in request.url.params.multi_items() if k not in ("start", "page_size")]
    pairs += [("page_size", str(size)), ("start", last_id)]
    url = request.url
    return f"{url.scheme}://{url.netloc.decode('ascii')}{url.path}?{urlencode(pairs)}"


def window(q: Query, low: str, high: str, *, high_inclusive: bool) -> Callable[[int | None], bool]:
    """Whether an instant lies in [q[low], q[high]) (or ...] when `high_inclusive`); None lies in no window."""
    lo, hi = q.instant(low), q.instant(high)
    if lo is None and hi is None:
        return lambda at: True

    def inside(at: int | None) -> bool:
        if at is None:
            return False
        if lo is not None and at < lo:
            return False
        return hi is None or (at <= hi if high_inclusive else at < hi)
    return inside
