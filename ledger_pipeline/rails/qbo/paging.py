"""The three paging loops: keyset query pages, the Id sweep, and CDC narrowing under its 1000-object cap.

Kept free of HTTP: each loop takes a `fetch` callable returning one parsed response, so the
paging rules (never trust totalCount, stop on a short page, restart at the last second seen,
offsets only inside a second holding more than a page) can be read and tested on their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from ledger_pipeline.rails.qbo.entities import QboEntity
from ledger_pipeline.rails.qbo.wire import LAST_UPDATED, PageShapeError, floor_second, qbo_literal, select_query

CDC_CAP = 1000
CDC_MAX_AGE = timedelta(days=30)


class CdcOverflowError(Exception):
    """More changes in one second than one CDC response can hold: CDC cannot page past them."""


class UnstableSweepError(Exception):
    """The Id sweep could not find its place again because rows kept disappearing under it."""


@dataclass(frozen=True)
class QboPage:
    """One page of raw QBO objects, exactly as returned, with the newest LastUpdatedTime in it."""

    entity: str
    objects: list[dict]
    max_updated_at: datetime | None


def within_second_step(page_size: int) -> int:
    """STARTPOSITION step inside one crowded second: overlap a tenth of a page (at least one row) so that
    up to that many rows leaving the second between two requests cannot shift an unseen row past the
    window, and more than that is noticed (the next page does not start with a row already seen)."""
    return max(1, page_size - max(1, page_size // 10))


def keyset_pages(
    entity: QboEntity,
    fetch: Callable[[str], tuple[list[dict], list[datetime]]],
    since: datetime | None,
    page_size: int,
    max_rewinds: int = 20,
) -> Iterator[QboPage]:
    """Yield pages ordered by LastUpdatedTime, restarting each page at the previous page's newest second.

    Re-reading that second costs duplicates, never misses (an object updated meanwhile moves to a
    later second and is read again further on). Only when a whole page sits in one second does the
    loop move STARTPOSITION forward inside that second. There, rows that leave the second (updated,
    deleted) between two requests move every later row up; the pages overlap, so a page that does not
    start with a row of the previous one means rows moved past the overlap, and the loop steps back.
    """
    cursor = floor_second(since) if since is not None else None
    start, rewinds = 1, 0
    step = within_second_step(page_size)
    previous_ends: tuple[object, object] | None = None
    previous_ids: set[object] = set()
    while True:
        query = select_query(
            entity, projection="*", since=cursor, order_by=LAST_UPDATED, start=start, max_results=page_size
        )
        objects, times = fetch(query)
        if start > 1 and step < page_size and (not objects or objects[0].get("Id") not in previous_ids):
            rewinds += 1
            if rewinds > max_rewinds:
                raise PageShapeError(f"rows kept leaving the second {qbo_literal(cursor)} while paging it")
            start, previous_ends = max(1, start - step), None
            continue
        newest = max(times) if times else None
        yield QboPage(entity.name, objects, newest)
        if len(objects) < page_size or newest is None:
            return
        if cursor is not None and newest < cursor:
            raise PageShapeError(f"page is older than its lower bound {qbo_literal(cursor)}")
        ends = (objects[0].get("Id"), objects[-1].get("Id"))
        if start > 1 and ends == previous_ends:
            raise PageShapeError(f"STARTPOSITION {start} returned the same page again")
        previous_ends, previous_ids = ends, {obj.get("Id") for obj in objects}
        if newest == cursor and min(times) == newest:
            start += step  # a second holding more than a page: walk it by offset
        else:
            cursor, start = newest, 1


def id_sweep(
    entity: QboEntity, fetch: Callable[[str], list[str]], page_size: int, max_rewinds: int = 20
) -> set[str]:
    """Every current Id, ordered by Id with overlapping offsets.

    Ids only grow, so the one thing that moves rows is a deletion before the current offset, which
    shifts later rows down. With overlapping pages, every page after the first must start with an
    Id already seen; if it does not (or comes back empty), more rows vanished than the overlap
    covers and the loop steps back a page, rather than report a live object as deleted.
    """
    step = within_second_step(page_size)
    seen: set[str] = set()
    start, rewinds = 1, 0
    while True:
        query = select_query(
            entity, projection="Id", since=None, order_by="Id", start=start, max_results=page_size
        )
        ids = fetch(query)
        if start > 1 and step < page_size and (not ids or ids[0] not in seen):
            rewinds += 1
            if rewinds > max_rewinds:
                raise UnstableSweepError("Ids kept shifting while paging (deleted faster than read)")
            start = max(1, start - step)
            continue
        seen.update(ids)
        if len(ids) < page_size:
            return seen
        start += step


def cdc_narrowing(
    entity: QboEntity,
    fetch: Callable[[datetime], tuple[list[dict], list[datetime], int]],
    since: datetime,
    cap: int = CDC_CAP,
) -> Iterator[dict]:
    """Yield CDC objects (tombstones included), asking again from the newest second seen while a
    response is at the cap. Objects of that second already yielded are not yielded twice."""
    cursor = floor_second(since)
    already: set[tuple[str, str, str]] = set()
    while True:
        objects, times, total = fetch(cursor)
        keyed = [(obj, when, _change_key(obj)) for obj, when in zip(objects, times)]
        for obj, _, key in keyed:
            if key not in already:
                yield obj
        if total < cap or not keyed:
            return
        newest = max(when for _, when, _ in keyed)
        if newest <= cursor:
            raise CdcOverflowError(
                f"more than {cap} {entity.name} changes in the second {qbo_literal(cursor)}: CDC cannot page "
                "inside one second; read this entity with a full query instead"
            )
        already = {key for _, when, key in keyed if when == newest}
        cursor = newest


def _change_key(obj: dict) -> tuple[str, str, str]:
    meta = obj.get("MetaData") or {}
    return (str(obj.get("Id")), str(meta.get("LastUpdatedTime")), str(obj.get("status", "")))
