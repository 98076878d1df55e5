"""The sync reads the rail ahead of its logging, and that changes nothing else.

`Prefetch` runs an iterator in a thread a page ahead: the items, their order and the errors the
caller sees are the iterator's own, the read-ahead is real (the next read starts before the caller
is done with the current item), and a caller that stops early stops the reader and closes its source.
`read_ahead` starts the next tenants' syncs before their turn; a tenant that cannot start fails at
its own turn, after the tenants before it committed, and nothing started is left running.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import dagster as dg
import pytest

from ledger_pipeline.lib import warehouse
from ledger_pipeline.lib.prefetch import Prefetch, read_ahead
from ledger_pipeline.lib.tenants import Tenant
from ledger_pipeline.lib.verify import verify
from ledger_pipeline.rails.qbo.entities import entity as entity_named
from ledger_pipeline.rails.qbo.errors import QboError
from ledger_pipeline.rails.qbo.rail import QboConnection
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES
from ledger_pipeline.rails.qbo.sync import sync_entity
from ledger_pipeline_tests.helpers import op_config, threads_left, truth

BILL = entity_named("Bill")
WAIT = 10.0  # seconds a test waits for the other thread before it counts as not coming

class Source:
    """An iterator that records how far it was read, from which thread, and whether it was closed."""

    def __init__(self, items: int, fail_at: int | None = None) -> None:
        self.items, self.fail_at = items, fail_at
        self.started = [threading.Event() for _ in range(items + 1)]
        self.threads: list[str] = []
        self.closed = threading.Event()

    def __iter__(self):
        try:
            for number in range(self.items):
                self.started[number].set()
                self.threads.append(threading.current_thread().name)
                if number == self.fail_at:
                    raise ValueError(f"item {number} could not be read")
                yield number
        finally:
            self.closed.set()


def test_items_come_in_order_and_the_next_is_read_while_the_caller_holds_the_current():
    source = Source(5)
    seen = []
    with Prefetch(source) as items:
        for item in items:
            if item + 1 < source.items:
                assert source.started[item + 1].wait(WAIT), f"item {item + 1} was not read ahead"
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]
    assert set(source.threads) == {"prefetch"} and source.closed.is_set()


def test_an_error_of_the_source_reaches_the_caller_after_the_items_before_it():
    source = Source(5, fail_at=2)
    seen = []
    with pytest.raises(ValueError, match="item 2 could not be read"), Prefetch(source) as items:
        for item in items:
            seen.append(item)
    assert seen == [0, 1]
    assert source.closed.wait(WAIT)


def test_a_caller_that_stops_early_stops_the_reader_and_closes_the_source():
    source = Source(1_000)
    with Prefetch(source, depth=2) as items:
        assert next(items) == 0
    assert source.closed.wait(WAIT), "the source was left open"
    assert len(source.threads) <= 4  # the one taken, two queued, at most one more read before the stop was seen


def test_depth_below_one_is_refused():
    with pytest.raises(ValueError, match="depth must be at least 1"):
        Prefetch([1], depth=0)


def test_read_ahead_starts_keys_early_meets_a_failed_start_at_its_turn_and_closes_what_was_not_taken():
    started, closed = [], []

    def start(key: str) -> str:
        started.append(key)
        if key == "c":
            raise LookupError("c cannot start")
        return key.upper()

    taken = []
    with pytest.raises(LookupError, match="c cannot start"):
        for key, value in read_ahead("abcdef", start, closed.append, ahead=2):
            assert started == list("abcdef"[: "abcdef".index(key) + 3])  # this key and the two after it
            taken.append((key, value()))
    assert taken == [("a", "A"), ("b", "B")]
    assert closed == ["D", "E"]  # started ahead of the failure, never taken


def test_the_sync_reads_its_pages_in_the_reader_and_logs_exactly_what_the_rail_holds(project):
    realm = project.add_tenant("acme")
    client = project.qbo.client(project.registry.get("acme"))
    client.page_size = 100
    real_pages, readers = client.pages, []

    def recorded(entity: str, **kwargs):
        for page in real_pages(entity, **kwargs):
            readers.append(threading.current_thread().name)
            yield page

    client.pages = recorded
    conn = warehouse.connect(project.db_path)
    try:
        result = sync_entity(conn, client, "acme", BILL, run_id="r1", observed_at=datetime.now(UTC))
        ((logged,),) = conn.execute(
            "select count(distinct entity_id) from raw.entity_log where tenant_id = ? and entity_type = 'Bill' "
            "and op = 'created'", ["acme"]  # besides them, the tombstones of the last 30 days' deletions
        ).fetchall()
        assert result.pages == len(readers) > 1 and set(readers) == {"prefetch"}
        assert logged == result.stats.created == len(truth(project, realm, BILL))
        assert verify(conn, "acme").ok
    finally:
        conn.close()
        client.close()


def test_a_rail_error_in_the_middle_of_the_feed_fails_the_sync_and_commits_nothing(project):
    project.add_tenant("acme")
    client = project.qbo.client(project.registry.get("acme"))
    client.page_size = 100
    real_pages = client.pages

    def broken_after_one(entity: str, **kwargs):
        for number, page in enumerate(real_pages(entity, **kwargs)):
            if number == 1:  # the first page (100 bills) is logged, uncommitted, in batches of 50
                raise QboError(client.realm_id, "Bill", "the rail went away on the second page")
            yield page

    client.pages = broken_after_one
    conn = warehouse.connect(project.db_path)
    try:
        with pytest.raises(QboError, match="second page"):
            sync_entity(conn, client, "acme", BILL, run_id="r1", observed_at=datetime.now(UTC), batch_size=50)
        counts = conn.execute(
            "select (select count(*) from raw.entity_log), (select count(*) from meta.sync_cursors)"
        ).fetchall()
        assert counts == [(0, 0)]
    finally:
        conn.close()
        client.close()


def test_a_range_run_commits_the_tenants_before_one_that_cannot_start_and_leaves_no_reader_running(project):
    project.add_tenant("alpha", 0)
    # Registered with live credentials whose refresh-token variable is not set: it cannot start.
    project.registry.add(Tenant("beta", QboConnection(DEMO_COMPANIES[2].realm_id, "env", "QBO_RT_BETA_NOT_SET")))
    project.instance.add_dynamic_partitions("tenants", ["beta"])
    project.add_tenant("gamma", 1)
    bills = dg.AssetKey(["raw", "qbo_bills"])
    job = project.defs.resolve_job_def("sync_tenants").get_subset(asset_selection={bills})
    ordered = project.instance.get_dynamic_partitions("tenants")
    assert ordered.index("alpha") < ordered.index("beta") < ordered.index("gamma")
    tags = {"dagster/asset_partition_range_start": "alpha", "dagster/asset_partition_range_end": "gamma"}

    result = job.execute_in_process(instance=project.instance, tags=tags, raise_on_error=False)

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "tenant beta, rail qbo, entity Bill" in failure.event_specific_data.error.message
    cursors = dict(project.query("select tenant_id, count(*) from meta.sync_cursors group by tenant_id"))
    assert cursors == {"alpha": 1}  # gamma's reads had started; nothing of it was logged
    assert not threads_left("prefetch"), "a reader was left running"


@pytest.mark.parametrize("ahead", [0, 1])
def test_a_range_run_logs_exactly_each_tenants_bills_however_many_are_read_ahead(project, ahead):
    realms = {"alpha": project.add_tenant("alpha", 0), "gamma": project.add_tenant("gamma", 1)}
    job = project.defs.resolve_job_def("sync_tenants").get_subset(asset_selection={dg.AssetKey(["raw", "qbo_bills"])})
    tags = {"dagster/asset_partition_range_start": "alpha", "dagster/asset_partition_range_end": "gamma"}

    result = job.execute_in_process(
        instance=project.instance, tags=tags, run_config=op_config("raw__qbo_bills", tenants_ahead=ahead)
    )

    assert result.success
    for tenant_id, realm in realms.items():
        logged = dict(project.query(
            "select entity_id, payload_hash from raw.entity_log where tenant_id = ? and entity_type = 'Bill' "
            "and op = 'created'", [tenant_id],
        ))  # fmt: skip
        assert logged == truth(project, realm, BILL) != {}
