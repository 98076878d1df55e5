"""The request-level side of the newer switches: which entity a request is about, timeouts in-process,
wrong content types, pages that shift or repeat rows, and drifted payloads in every answer."""

from __future__ import annotations

import dataclasses
import re
import time
from typing import TYPE_CHECKING, Any

import httpx

from ..entities import BY_NAME
from . import drift as odd
from .query import LAST_UPDATED, Query
from .render_txn import render
from .spec import Fault

if TYPE_CHECKING:
    from .sandbox import QboSandbox

_BY_LOWER = {name.lower(): name for name in BY_NAME}
_FROM = re.compile(r"\bfrom\s+([a-z]+)", re.I)
_READ = re.compile(r"^([a-z]+)/[^/]+$")


def request_subjects(rest: str, params: httpx.QueryParams) -> frozenset[str]:
    """The entities a request reads: the query's FROM, CDC's `entities`, or the entity of a read by Id."""
    names: list[str] = []
    if rest == "query":
        names = _FROM.findall(params.get("query") or "")[:1]
    elif rest == "cdc":
        names = (params.get("entities") or "").split(",")
    elif match := _READ.match(rest):
        names = [match[1]]
    return frozenset(_BY_LOWER[n.strip().lower()] for n in names if n.strip().lower() in _BY_LOWER)


def sleep_or_time_out(request: httpx.Request, delay: float) -> None:
    """A `slow` fault. In-process there is no socket to time out, so the request's own read timeout is
    honoured here: past it, httpx.ReadTimeout is raised after waiting that long, as a socket would."""
    timeout = (request.extensions.get("timeout") or {}).get("read")
    if timeout is not None and delay > timeout:
        time.sleep(timeout)
        raise httpx.ReadTimeout(f"timed out after {timeout:g}s (the sandbox was told to take {delay:g}s)",
                                request=request)
    time.sleep(delay)


def wrong_content_type() -> httpx.Response:
    """A 200 that is not QBO's answer: an intermediary's HTML page (a proxy, a captive portal)."""
    body = ("<!DOCTYPE html><html><head><title>Service notice</title></head>"
            "<body><p>The service is being updated. Please try again shortly.</p></body></html>\n")
    return httpx.Response(200, headers={"Content-Type": "text/html;charset=UTF-8"}, content=body.encode())


def answer_query(sb: QboSandbox, realm: str, query: Query, now_us: int, fault: Fault | None) -> dict[str, Any]:
    """The QueryResponse for `query`, after a `shift` fault moved rows and with a `duplicate` fault's
    repeated rows; drifted objects rewritten."""
    searcher = sb.searcher(realm, now_us)
    if fault is not None and fault.kind == "shift" and not query.count and query.order == LAST_UPDATED:
        first = dataclasses.replace(query, start=1, max_results=fault.rows, fields=("Id",))
        for obj in searcher.query(first).get(query.entity, []):
            sb.touch(realm, query.entity, obj["Id"])  # a new version now: it moves to the end of the order
        searcher = sb.searcher(realm, now_us)
    response = searcher.query(query)
    rows = response.get(query.entity)
    if fault is not None and fault.kind == "duplicate" and rows:
        following = dataclasses.replace(query, start=query.start + len(rows), max_results=fault.rows)
        repeated = searcher.query(following).get(query.entity) or rows[:1]
        rows = response[query.entity] = rows + repeated
        response["maxResults"] = len(rows)
    if rows:
        drifts = sb.drift_map(realm)
        response[query.entity] = [odd.apply(o, query.entity, drifts.get((query.entity, o["Id"]), [])) for o in rows]
    return response


def drift_cdc(sb: QboSandbox, realm: str, sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CDC sections with drifted objects rewritten (tombstones keep their real shape but for the Id)."""
    drifts = sb.drift_map(realm)
    if not drifts:
        return sections
    return [{name: [odd.apply(o, name, drifts.get((name, o["Id"]), [])) for o in value]
             if isinstance(value, list) else value for name, value in section.items()} for section in sections]


def drift_object(sb: QboSandbox, realm: str, entity: str, obj: dict[str, Any]) -> dict[str, Any]:
    return odd.apply(obj, entity, sb.drift_map(realm).get((entity, obj["Id"]), []))


def report_skews_with_drift(sb: QboSandbox, realm: str, entity: str, company: Any,
                            skews: dict[str, int]) -> dict[str, int]:
    """Report skews plus what drifted documents did to their party's open balance, so that QBO's report
    agrees with the drifted books (a drifted amount is QBO's data, not a reconciliation break)."""
    merged = dict(skews)
    for (name, object_id), kinds in sb.drift_map(realm).items():
        slot = int(object_id) - 1
        table = company.books.tables[name]
        if name != entity or not (0 <= slot < len(table) and table.is_live(slot)):
            continue
        real = render(company, name, slot)
        delta = odd.balance_delta_cents(real, odd.apply(real, name, kinds))
        party = str(table.party[slot] + 1)
        if delta:
            merged[party] = merged.get(party, 0) + delta
    return merged
