"""The real client against the in-process sandbox: paging, incremental reads, CDC, name lists, determinism."""

from __future__ import annotations

import gc
import weakref
from datetime import timedelta

import pytest

from ledger_pipeline.rails.qbo.errors import QboCdcWindowError, QboQueryError
from ledger_pipeline.rails.qbo.entities import entity
from ledger_pipeline.rails.qbo.wire import parse_qbo_time
from ledger_pipeline.rails.qbo.sandbox import CompanySpec, QboSandbox
from ledger_pipeline_tests.qbo.test_client_fakes import CountingTransport, dedupe, sandbox_client

BIG = CompanySpec("9130350000000301", "Paging Partners LLC", size=10_000, change_rate=0.02, utc_offset="-08:00")
REALM = "9130350000000101"  # the small company of the shared `sandbox` fixture


@pytest.fixture
def big() -> QboSandbox:
    return QboSandbox((BIG,), seed=5, rate_limit=None)


def updated(obj: dict):
    return parse_qbo_time(obj["MetaData"]["LastUpdatedTime"])


def test_client_pages_stream_every_bill_of_a_big_company_exactly_once(big):
    live = big.live_objects(BIG.realm_id, "Bill")
    assert len(live) > 2500
    counting = CountingTransport(big.transport())
    client = sandbox_client(big, BIG.realm_id, transport=counting)
    pages = client.pages("Bill")
    assert counting.seen == []  # nothing is requested before the first page is asked for
    first = next(pages)
    assert counting.count("/query") == 1 and len(first.objects) == 1000
    ref = weakref.ref(first)
    seen: list[str] = [o["Id"] for o in first.objects]
    newest = [first.max_updated_at]
    del first
    for page in pages:
        gc.collect()
        assert ref() is None  # the client keeps no page it has handed out
        seen.extend(o["Id"] for o in page.objects)
        newest.append(page.max_updated_at)
    assert counting.count("/query") >= 3
    assert set(seen) == set(live)  # every live id, nothing else
    assert len(seen) - len(set(seen)) < 50  # duplicates only from re-read boundary seconds
    assert newest == sorted(newest) and all(t.tzinfo is not None and t.utcoffset() == timedelta(0) for t in newest)
    assert client.count("Bill") == len(live)
    assert client.ids("Bill") == set(live)


def test_client_small_pages_walk_a_second_holding_more_than_a_page(big):
    # The data-conversion import put a few hundred bills in one second: more than a page of 100.
    client = sandbox_client(big, BIG.realm_id, page_size=100)
    live = big.live_objects(BIG.realm_id, "Bill")
    crowded = max(
        (sum(1 for o in live.values() if o["MetaData"]["LastUpdatedTime"] == t), t)
        for t in {o["MetaData"]["LastUpdatedTime"] for o in live.values()}
    )
    assert crowded[0] > 100
    got = dedupe(client.pages("Bill"))
    assert set(got) == set(live)
    assert got == live


def test_client_same_second_group_split_by_a_page_boundary_is_not_lost(sandbox):
    bills = sorted(sandbox.live_objects(REALM, "Bill"), key=int)
    sandbox.advance(timedelta(hours=2))
    since = sandbox.now
    for oid in bills[:7]:
        sandbox.touch(REALM, "Bill", oid)
    sandbox.advance(timedelta(seconds=1))
    group = bills[7:32]  # 25 objects sharing one LastUpdatedTime second
    for oid in group:
        sandbox.touch(REALM, "Bill", oid)
    client = sandbox_client(sandbox, REALM, page_size=10, overlap=timedelta(0))
    expected = {i for i, o in sandbox.live_objects(REALM, "Bill").items() if updated(o) >= since}
    pages = list(client.pages("Bill", updated_since=since))
    first_ids = [o["Id"] for o in pages[0].objects]
    # the boundary really falls inside the group: a "> newest seen" cursor would skip the rest of it
    assert pages[0].max_updated_at == since + timedelta(seconds=1)
    assert set(group) - set(first_ids)
    assert set(dedupe(pages)) == expected and set(group) <= expected


def test_client_incremental_read_after_the_clock_moves(big):
    client = sandbox_client(big, BIG.realm_id, overlap=timedelta(minutes=5))
    pages = list(client.pages("Bill"))
    high = max(p.max_updated_at for p in pages if p.max_updated_at)
    before = big.live_objects(BIG.realm_id, "Bill")
    big.advance(timedelta(days=2))
    after = big.live_objects(BIG.realm_id, "Bill")
    changed = {i for i, o in after.items() if before.get(i) != o}
    assert changed
    got = dedupe(client.pages("Bill", updated_since=high))
    window = {i for i, o in after.items() if updated(o) >= high - timedelta(minutes=5)}
    assert set(got) == window  # the changes plus the overlap window, nothing older
    assert changed <= set(got)
    assert all(got[i] == after[i] for i in got)


def test_client_object_updated_while_paging_is_still_seen(sandbox):
    client = sandbox_client(sandbox, REALM, page_size=25)
    pages = client.pages("Bill")
    first = next(pages)
    read_id = first.objects[3]["Id"]
    unread = max(sandbox.live_objects(REALM, "Bill"), key=int)
    sandbox.advance(timedelta(seconds=30))
    sandbox.touch(REALM, "Bill", read_id)
    sandbox.touch(REALM, "Bill", unread)
    rest = list(pages)
    got = dedupe([first, *rest])
    assert set(got) == set(sandbox.live_objects(REALM, "Bill"))
    assert updated(got[read_id]) == sandbox.now.replace(microsecond=0)
    assert got[read_id]["SyncToken"] != first.objects[3]["SyncToken"]
    assert updated(got[unread]) == sandbox.now.replace(microsecond=0)


def test_client_cdc_reports_deletes_and_changes(big):
    counting = CountingTransport(big.transport())
    client = sandbox_client(big, BIG.realm_id, transport=counting)
    start = big.now
    deleted_before = big.deleted_ids(BIG.realm_id, "Bill")
    big.advance(timedelta(days=4))
    deleted_now = big.deleted_ids(BIG.realm_id, "Bill") - deleted_before
    assert deleted_now
    changes = list(client.changes("Bill", since=start))
    tombstones = {o["Id"] for o in changes if o.get("status") == "Deleted"}
    assert tombstones == deleted_now
    live_changed = {i for i, o in big.live_objects(BIG.realm_id, "Bill").items() if updated(o) >= start}
    assert {o["Id"] for o in changes if o.get("status") != "Deleted"} == live_changed
    assert counting.count("/cdc") == 1
    assert all(p["changedSince"].endswith("Z") for path, p in counting.seen if path.endswith("/cdc"))


def test_client_cdc_narrows_when_a_response_hits_the_cap(big):
    counting = CountingTransport(big.transport())
    client = sandbox_client(big, BIG.realm_id, transport=counting)
    big.advance(timedelta(minutes=1))
    start = big.now
    bills = sorted(big.live_objects(BIG.realm_id, "Bill"), key=int)[:1500]
    for n, oid in enumerate(bills):
        if n % 200 == 0:
            big.advance(timedelta(seconds=1))
        big.touch(BIG.realm_id, "Bill", oid)
    changes = list(client.changes("Bill", since=start))
    ids = [o["Id"] for o in changes]
    assert set(bills) <= set(ids)
    assert len(ids) == len(set(ids))  # the boundary second is not handed out twice
    assert counting.count("/cdc") >= 2


def test_client_cdc_window_limits(sandbox):
    counting = CountingTransport(sandbox.transport())
    sandbox.advance(timedelta(days=40))
    client = sandbox_client(sandbox, REALM, transport=counting)
    with pytest.raises(QboCdcWindowError, match="30-day"):
        client.changes("Bill", since=sandbox.now - timedelta(days=31))
    assert counting.seen == []
    # a client whose clock lags gets QBO's own refusal, mapped to the same error
    lagging = sandbox_client(sandbox, REALM, transport=counting, clock=lambda: sandbox.now - timedelta(days=5))
    with pytest.raises(QboCdcWindowError) as info:
        list(lagging.changes("Bill", since=sandbox.now - timedelta(days=32)))
    assert info.value.status == 400 and "30 days" in str(info.value) and info.value.entity == "Bill"
    assert list(lagging.changes("Bill", since=sandbox.now - timedelta(days=29))) is not None


def test_client_name_lists_include_inactive_rows(sandbox):
    sandbox.advance(timedelta(days=20))
    client = sandbox_client(sandbox, REALM)
    for name in ("Vendor", "Customer", "Account"):
        live = sandbox.live_objects(REALM, name)
        got = dedupe(client.pages(name))
        assert set(got) == set(live), name
        assert client.count(name) == len(live)
        assert client.ids(name) == set(live)
    vendors = sandbox.live_objects(REALM, "Vendor")
    inactive = {i for i, o in vendors.items() if o.get("Active") is False}
    assert inactive  # the company has deactivated vendors, and they came back above


def test_client_query_rejected_by_qbo_carries_its_detail(sandbox):
    client = sandbox_client(sandbox, REALM)
    with pytest.raises(QboQueryError) as info:
        client._query("SELECT * FROM Bill WHERE DocNumber = '7'", entity("Bill"), lambda body: body)
    err = info.value
    assert err.code == "4000" and err.status == 400 and err.entity == "Bill"
    assert err.detail and "DocNumber" in err.detail and err.detail in str(err)


def test_client_reads_are_deterministic_for_a_seed_and_instant():
    spec = CompanySpec("9130350000000303", "Twin Books Ltd", size=2000, change_rate=0.05)

    def read(seed: int) -> list[dict]:
        sb = QboSandbox((spec,), seed=seed, rate_limit=None)
        sb.advance(timedelta(days=1, hours=3))
        return [o for p in sandbox_client(sb, spec.realm_id).pages("Invoice") for o in p.objects]

    first = read(5)
    assert first == read(5)
    assert first != read(6)
