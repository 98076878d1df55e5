"""The paging loops on their own, against a tiny in-memory table that moves under them."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from ledger_pipeline.rails.qbo import paging, wire
from ledger_pipeline.rails.qbo.entities import entity

BILL = entity("Bill")
T = datetime(2026, 10, 1, tzinfo=timezone.utc)
QUERY = re.compile(
    r"SELECT (?P<proj>\*|Id) FROM Bill(?: WHERE MetaData\.LastUpdatedTime >= '(?P<since>[^']+)')? "
    r"ORDERBY (?P<order>\S+) STARTPOSITION (?P<start>\d+) MAXRESULTS (?P<max>\d+)"
)


def stamp(oid: str, second: int) -> dict:
    return {"Id": oid, "MetaData": {"LastUpdatedTime": (T + timedelta(seconds=second)).isoformat()}}


class Table:
    """Objects id -> second offset from T; answers queries the way QBO orders them."""

    def __init__(self, seconds: dict[int, int]) -> None:
        self.seconds = dict(seconds)
        self.requests = 0
        self.before_fetch = lambda: None

    def fetch(self, query: str):
        self.before_fetch()
        self.requests += 1
        m = QUERY.fullmatch(query)
        assert m, query
        rows = sorted(self.seconds.items(), key=lambda kv: (kv[1], kv[0]) if m["order"] != "Id" else kv[0])
        if m["since"]:
            since = wire.parse_qbo_time(m["since"])
            rows = [r for r in rows if T + timedelta(seconds=r[1]) >= since]
        start, size = int(m["start"]), int(m["max"])
        rows = rows[start - 1 : start - 1 + size]
        objects = [stamp(str(i), s) for i, s in rows]
        if m["proj"] == "Id":
            return [o["Id"] for o in objects]
        return objects, wire.stamped(objects)


def ids_of(pages) -> list[str]:
    return [o["Id"] for p in pages for o in p.objects]


def test_client_keyset_restarts_at_the_boundary_second():
    # ids 1..25 at seconds 0..4, five per second: every page of 7 ends inside a group.
    table = Table({i: (i - 1) // 5 for i in range(1, 26)})
    pages = list(paging.keyset_pages(BILL, table.fetch, None, 7))
    got = ids_of(pages)
    assert sorted(set(got), key=int) == [str(i) for i in range(1, 26)]
    assert len(got) > 25  # the boundary second was read again
    assert all(len(p.objects) <= 7 for p in pages) and len(pages[-1].objects) < 7


def test_client_keyset_walks_a_second_holding_more_than_a_page_by_offset():
    table = Table({**{i: 3 for i in range(1, 51)}, 51: 4, 52: 5})
    pages = list(paging.keyset_pages(BILL, table.fetch, T, 10))
    assert sorted(set(ids_of(pages)), key=int) == [str(i) for i in range(1, 53)]
    assert table.requests < 12


def test_client_keyset_sees_objects_touched_while_paging():
    table = Table({i: i // 3 for i in range(1, 40)})
    calls = {"n": 0}

    def touch_after_first_page():
        calls["n"] += 1
        if calls["n"] == 2:
            table.seconds[2] = 100  # updated after page one was read: must come back again
            table.seconds[40] = 100  # created meanwhile

    table.before_fetch = touch_after_first_page
    got = ids_of(paging.keyset_pages(BILL, table.fetch, None, 10))
    assert set(got) == {str(i) for i in range(1, 41)}
    assert got[-2:] == ["2", "40"]


def test_client_keyset_stops_on_empty_and_short_pages():
    table = Table({i: i for i in range(1, 11)})  # exactly one full page, then an empty one
    pages = list(paging.keyset_pages(BILL, table.fetch, None, 10))
    assert [len(p.objects) for p in pages] == [10, 1]  # restart at second 10 re-reads its one object
    assert pages[0].max_updated_at == T + timedelta(seconds=10)
    assert list(paging.keyset_pages(BILL, Table({}).fetch, None, 10))[0].max_updated_at is None


def test_client_id_sweep_survives_deletions_between_pages():
    table = Table({i: 0 for i in range(1, 101)})
    calls = {"n": 0}

    def delete_behind():
        calls["n"] += 1
        if calls["n"] == 3:  # after two pages, delete 5 rows already read (more than the overlap of 1)
            for i in range(1, 6):
                del table.seconds[i]

    table.before_fetch = delete_behind
    got = paging.id_sweep(BILL, table.fetch, 10)
    assert {str(i) for i in range(6, 101)} <= got


def test_client_cdc_narrowing_asks_again_and_dedupes_the_boundary():
    changes = [stamp(str(i), i // 4) for i in range(10)]
    asked: list[datetime] = []

    def fetch(since: datetime):
        asked.append(since)
        rows = [c for c in changes if wire.parse_qbo_time(c["MetaData"]["LastUpdatedTime"]) >= since][:5]
        return rows, wire.stamped(rows), len(rows)

    got = [c["Id"] for c in paging.cdc_narrowing(BILL, fetch, T, cap=5)]
    assert got == [str(i) for i in range(10)]
    assert asked[0] == T and len(asked) == 3

    def stuck(since: datetime):
        rows = [{"Id": str(i), "MetaData": {"LastUpdatedTime": T.isoformat()}} for i in range(5)]
        return rows, wire.stamped(rows), 5

    with pytest.raises(paging.CdcOverflowError, match="more than 5 Bill changes in the second"):
        list(paging.cdc_narrowing(BILL, stuck, T, cap=5))


def test_client_id_sweep_survives_mass_deletion_behind_it():
    table = Table({i: 0 for i in range(1, 101)})
    calls = {"n": 0}

    def delete_a_lot():
        calls["n"] += 1
        if calls["n"] == 4:  # after three pages (ids 1..28 read), 25 earlier rows vanish at once
            for i in range(2, 27):
                del table.seconds[i]

    table.before_fetch = delete_a_lot
    got = paging.id_sweep(BILL, table.fetch, 10)
    assert {str(i) for i in table.seconds} <= got


def test_client_id_sweep_with_a_stable_table_reads_each_page_once():
    table = Table({i: 0 for i in range(1, 96)})
    assert paging.id_sweep(BILL, table.fetch, 10) == {str(i) for i in range(1, 96)}
    assert table.requests == 11  # ceil((95 - 10) / 9) + 1: steps of 9 with one row of overlap


def test_client_keyset_refuses_a_server_that_ignores_startposition():
    same = [stamp(str(i), 0) for i in range(1, 11)]

    def stuck(query: str):
        return same, wire.stamped(same)

    with pytest.raises(wire.PageShapeError, match="returned the same page again"):
        list(paging.keyset_pages(BILL, stuck, None, 10))
