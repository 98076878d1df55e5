"""Answering parsed queries and CDC requests from a company's sorted key arrays.

A page costs a bisect plus the page itself: keys are `LastUpdatedTime << 32 | Id`, so a time range
is a slice and ties are already broken by Id. Descending time order keeps Id ascending inside a
second by walking the slice group by group. Id order needs a sort of the range, cached per table
version so a deletion sweep paging through 200k Ids sorts once.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from itertools import islice
from typing import Any, Iterator, Sequence

from ..entities import BY_NAME
from .books import DELETED, ID_BITS, ID_MASK, INACTIVE, Table, key
from .history import Company
from .query import LAST_UPDATED, Query, QueryError
from .render_txn import render, tombstone

CDC_MAX_OBJECTS = 1000
CDC_MAX_AGE_SECONDS = 30 * 86400
_BIG = 1 << 62


def _candidates(table: Table, q: Query) -> Sequence[int]:
    """The sorted keys the query may return, before the time range is applied."""
    is_name_list = BY_NAME[table.name].is_name_list
    active = q.active if q.active is not None else ({True} if is_name_list else {True, False})
    if q.ids is not None:
        keys = []
        for object_id in q.ids:
            slot = object_id - 1
            if 0 <= slot < len(table) and not table.flags[slot] & DELETED:
                if (not table.flags[slot] & INACTIVE) in active:
                    keys.append(key(table.updated[slot], slot))
        return sorted(keys)
    if not active:
        return ()
    if not is_name_list or active == {True, False}:
        return table.keys
    if active == {True}:
        return table.active_keys
    return [k for k in table.keys if table.flags[(k & ID_MASK) - 1] & INACTIVE]


def _desc_page(keys: Sequence[int], a: int, b: int, skip: int, limit: int) -> list[int]:
    """Keys of [a, b) in descending time, ascending Id within a second: positions skip..skip+limit."""
    out: list[int] = []
    j = b - 1 - skip
    if j < a:
        return out
    sec = keys[j] >> ID_BITS
    g0 = max(a, bisect_left(keys, sec << ID_BITS, a, b))
    g1 = bisect_left(keys, (sec + 1) << ID_BITS, a, b)
    i = g0 + (g1 - 1 - j)  # the element at descending position `skip`
    while len(out) < limit:
        out.extend(keys[i:min(g1, i + limit - len(out))])
        if g0 <= a:
            break
        g1 = g0
        sec = keys[g1 - 1] >> ID_BITS
        g0 = max(a, bisect_left(keys, sec << ID_BITS, a, g1))
        i = g0
    return out


class Searcher:
    """Runs queries and CDC requests against one company (callers hold the sandbox lock)."""

    def __init__(self, company: Company) -> None:
        self.company = company
        self._id_cache: dict[tuple, tuple[int, array]] = {}

    def query(self, q: Query) -> dict[str, Any]:
        table = self.company.books.tables[q.entity]
        keys = _candidates(table, q)
        a = bisect_left(keys, (q.lo << ID_BITS) if q.lo is not None else -1)
        b = bisect_left(keys, (q.hi + 1) << ID_BITS) if q.hi is not None else len(keys)
        b = max(a, b)
        if q.count:
            return {"totalCount": b - a}
        skip, limit = q.start - 1, q.max_results
        if q.order == LAST_UPDATED and not q.desc:
            page = list(keys[a + skip:min(b, a + skip + limit)]) if a + skip < b else []
            slots = [(k & ID_MASK) - 1 for k in page]
        elif q.order == LAST_UPDATED:
            slots = [(k & ID_MASK) - 1 for k in _desc_page(keys, a, b, skip, limit)]
        else:
            ordered = self._by_id(table, q, keys, a, b)
            if q.desc:
                end = len(ordered) - skip
                slots = [s for s in reversed(ordered[max(0, end - limit):max(0, end)])]
            else:
                slots = list(ordered[skip:skip + limit])
        if not slots:
            return {}
        if q.fields is not None and [f.lower() for f in q.fields] == ["id"]:
            objects = [{"Id": str(s + 1)} for s in slots]
        else:
            objects = [render(self.company, q.entity, s) for s in slots]
            if q.fields is not None:
                wanted = {f.lower() for f in q.fields}
                objects = [{k: v for k, v in o.items() if k.lower() in wanted} for o in objects]
        return {q.entity: objects, "startPosition": q.start, "maxResults": len(objects)}

    def _by_id(self, table: Table, q: Query, keys: Sequence[int], a: int, b: int) -> array:
        if q.ids is not None:
            return array("l", sorted((k & ID_MASK) - 1 for k in islice(keys, a, b)))
        cache_key = (table.name, frozenset(q.active or ()), q.active is None, a, b, len(keys))
        hit = self._id_cache.get(cache_key)
        if hit is not None and hit[0] == table.version:
            return hit[1]
        ordered = array("l", sorted((k & ID_MASK) - 1 for k in islice(keys, a, b)))
        if len(self._id_cache) > 32:
            self._id_cache.clear()
        self._id_cache[cache_key] = (table.version, ordered)
        return ordered

    def cdc(self, entities: list[str], since_us: int, now_us: int) -> list[dict[str, Any]]:
        if since_us < now_us - CDC_MAX_AGE_SECONDS * 1_000_000:
            raise QueryError("CDCValidationError: changedSince must be within the last 30 days",
                             code="4002", message="Invalid CDC request")
        lo = -(-since_us // 1_000_000)
        tables = self.company.books.tables
        streams = [self._changes(i, tables[name], lo) for i, name in enumerate(entities)]
        found: dict[int, list[dict[str, Any]]] = {}
        for sec, index, slot, deleted in islice(heapq.merge(*streams), CDC_MAX_OBJECTS):
            name = entities[index]
            obj = tombstone(self.company, slot, sec) if deleted else render(self.company, name, slot)
            found.setdefault(index, []).append(obj)
        out: list[dict[str, Any]] = []
        for index, name in enumerate(entities):
            objs = found.get(index)
            out.append({name: objs, "startPosition": 1, "maxResults": len(objs)} if objs else {})
        return out

    @staticmethod
    def _changes(index: int, table: Table, lo: int) -> Iterator[tuple[int, int, int, bool]]:
        """(sec, entity index, slot, deleted) for live rows and tombstones at or after `lo`, oldest first."""
        def stream(keys: Sequence[int], deleted: bool) -> Iterator[tuple[int, int, int, bool]]:
            start = bisect_left(keys, lo << ID_BITS)
            for k in islice(keys, start, start + CDC_MAX_OBJECTS):
                yield k >> ID_BITS, index, (k & ID_MASK) - 1, deleted
        return heapq.merge(stream(table.keys, False), stream(table.tombs, True))
