"""Stripe's list parameters and paging: `limit`, `starting_after` / `ending_before`, `created` ranges, newest first.

Entries are `(created, id, ref)` tuples kept sorted ascending, so a created range is two bisects and
newest-first (created desc, id desc) is a walk down from the range's top.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import httpx

from .responses import invalid, missing

Entry = tuple[int, str, Any]
_BRACKET = re.compile(r"^([a-z_]+)\[([a-z_]*|\d+)\]$")
_OPS = ("gt", "gte", "lt", "lte")
PAGING = frozenset({"limit", "starting_after", "ending_before", "created", "expand"})


def parse_params(params: httpx.QueryParams) -> dict[str, Any]:
    """Query parameters as Stripe reads them: `a[]=x` / `a[0]=x` are lists, `a[op]=x` are dicts."""
    out: dict[str, Any] = {}
    for key, value in params.multi_items():
        match = _BRACKET.match(key)
        if match is None:
            out[key] = value
        elif match[2] == "" or match[2].isdigit():
            out.setdefault(match[1], [])
            if not isinstance(out[match[1]], list):
                raise invalid(match[1], f"Invalid array: {match[1]}")
            out[match[1]].append(value)
        else:
            out.setdefault(match[1], {})
            if not isinstance(out[match[1]], dict):
                raise invalid(match[1], f"Invalid hash: {match[1]}")
            out[match[1]][match[2]] = value
    return out


def check_known(params: dict[str, Any], known: frozenset[str]) -> None:
    for name in params:
        if name not in known:
            raise invalid(name, f"Received unknown parameter: {name}")


def integer(name: str, value: Any) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d{1,18}", value):
        raise invalid(name, f"Invalid integer: {value}")
    return int(value)


def time_range(name: str, value: Any) -> tuple[int | None, int | None]:
    """Inclusive (low, high) epoch seconds of `created=<int>` or `created[gt|gte|lt|lte]=<int>`."""
    if value is None:
        return None, None
    if isinstance(value, str):
        sec = integer(name, value)
        return sec, sec
    if not isinstance(value, dict):
        raise invalid(name, f"Invalid {name}: must be an integer or a hash of gt, gte, lt, lte")
    low = high = None
    for op, raw in value.items():
        if op not in _OPS:
            raise invalid(f"{name}[{op}]", f"Received unknown parameter: {name}[{op}]")
        sec = integer(f"{name}[{op}]", raw)
        if op in ("gt", "gte"):
            sec += op == "gt"
            low = sec if low is None else max(low, sec)
        else:
            sec -= op == "lt"
            high = sec if high is None else min(high, sec)
    return low, high


@dataclass
class ListRequest:
    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None
    low: int | None = None
    high: int | None = None
    expand: list[str] = field(default_factory=list)


def list_request(params: dict[str, Any], expandable: frozenset[str]) -> ListRequest:
    req = ListRequest()
    if "limit" in params:
        req.limit = integer("limit", params["limit"])
        if req.limit < 1:
            raise invalid("limit", "This value must be greater than or equal to 1.")
        if req.limit > 100:
            raise invalid("limit", "This value must be less than or equal to 100.")
    for name in ("starting_after", "ending_before"):
        value = params.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise invalid(name, f"Invalid string: {name} must be an object id")
        setattr(req, name, value)
    if req.starting_after and req.ending_before:
        raise invalid("ending_before", "You may only specify one of these parameters: ending_before, starting_after.")
    req.low, req.high = time_range("created", params.get("created"))
    req.expand = expand_list(params, expandable)
    return req


def expand_list(params: dict[str, Any], expandable: frozenset[str]) -> list[str]:
    value = params.get("expand", [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise invalid("expand", "Invalid array: expand")
    for path in value:
        if path not in expandable:
            raise invalid("expand", f"This property cannot be expanded ({path}).")
    return value


def page(entries: Sequence[Entry], req: ListRequest, where: Callable[[str], Entry | None], noun: str,
         keep: Callable[[Entry], bool] | None = None) -> tuple[list[Entry], bool]:
    """The page's entries, newest first, and has_more. `where(id)` finds a cursor's entry (None: unknown)."""
    a = bisect_left(entries, (req.low,)) if req.low is not None else 0
    b = bisect_left(entries, (req.high + 1,)) if req.high is not None else len(entries)
    cursor = req.starting_after or req.ending_before
    if cursor is not None:
        entry = where(cursor)
        if entry is None:
            raise missing(noun, cursor, "starting_after" if req.starting_after else "ending_before")
        pos = bisect_left(entries, entry)
    found: list[Entry] = []
    if req.ending_before is not None:
        i = max(pos + 1, a)
        while i < b and len(found) <= req.limit:
            if keep is None or keep(entries[i]):
                found.append(entries[i])
            i += 1
        more = len(found) > req.limit
        return list(reversed(found[:req.limit])), more
    i = min(b, pos if cursor is not None else b) - 1
    while i >= a and len(found) <= req.limit:
        if keep is None or keep(entries[i]):
            found.append(entries[i])
        i -= 1
    return found[:req.limit], len(found) > req.limit


def envelope(url: str, data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}

