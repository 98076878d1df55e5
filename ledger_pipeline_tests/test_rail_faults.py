"""Rail faults end to end through Dagster: each ends in a complete, correct sync or in a failed run naming
tenant, rail, entity and cause, and either way in a log that verifies and holds no partial page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger_pipeline.rails.qbo.sandbox import Fault
from ledger_pipeline_tests.helpers import failure_text, log_count, mirror, truth
from ledger_pipeline_tests.rail_faults_support import (PAYMENT, PAYMENT_ASSETS, assert_log_verifies,
                                                       assert_no_version_twice, assert_payments_complete, cursor,
                                                       latest_live, log_rows)
from ledger_pipeline_tests.rail_faults_support import wire  # noqa: F401 (a fixture)


def _payment(kind: str, **kw) -> Fault:
    return Fault(kind, endpoint=kw.pop("endpoint", "query"), entity=kw.pop("entity", "Payment"), **kw)


# (fault, the retry delays the client must sleep): all hit the first sync of Payments after its first page.
RECOVERABLE = {
    "429-json-retry-after": (_payment("throttle", after=1, count=2, retry_after=0.05), [0.05, 0.05]),
    "429-xml-retry-after": (_payment("throttle_xml", after=2, count=1, retry_after=0.1), [0.1]),
    "429-xml-no-retry-after": (_payment("throttle_xml", after=1, count=1), [0.0]),
    "500": (_payment("server_error", after=1, count=1, status=500, retry_after=0.02), [0.02]),
    "502-html": (_payment("server_error", after=1, count=2, status=502), [0.0, 0.0]),
    "503": (_payment("server_error", after=3, count=1, status=503, retry_after=0.03), [0.03]),
    "500-xml": (_payment("xml_error", after=1, count=1, status=500), [0.0]),
    "timeout": (_payment("slow", after=1, count=1, delay=5.0), [0.0]),
    "connection-reset": (_payment("reset", after=1, count=2), [0.0, 0.0]),
    "truncated-json": (_payment("malformed_page", after=1, count=1), [0.0]),
    "wrong-content-type": (_payment("wrong_content_type", after=2, count=1), [0.0]),
    "token-endpoint-503": (Fault("server_error", endpoint="token", status=503, retry_after=0.02), [0.02]),
    "access-token-expired-mid-paging": (_payment("expire_token", after=2, count=1), []),
    "same-object-on-two-pages": (_payment("duplicate", count=-1), []),
}


@pytest.mark.parametrize("name", list(RECOVERABLE))
def test_transient_fault_is_retried_to_a_complete_sync(project, wire, name):
    fault, delays = RECOVERABLE[name]
    realm = project.add_tenant("acme")
    fast = project.with_qbo(page_size=20, backoff_base=0.0, timeout=0.2)
    fast.sandbox.inject(realm, fault)

    result = fast.sync("acme", asset_selection=PAYMENT_ASSETS)

    assert result.success
    if fault.count != -1:
        assert fast.sandbox.faults(realm) == []  # it did fire
    else:
        fast.sandbox.clear_faults(realm)
    assert wire.sleeps == delays
    assert wire.count("/query", "Payment") >= 4  # several pages: the fault hit mid-paging
    assert len(log_rows(fast, "acme", "Payment")) == len(truth(fast, realm, PAYMENT))  # one version each, no more
    assert_payments_complete(fast, realm)
    assert all(c.passed for c in result.get_asset_check_evaluations())
    if name == "access-token-expired-mid-paging":
        assert wire.count("/tokens/bearer") == 2  # one refresh on the 401, then on with the new token
        assert fast.sync("acme", asset_selection=PAYMENT_ASSETS).success  # the rotated token was kept


# (fault from the second page on, the cause the failure must give)
PERMANENT = {
    "429-forever": (_payment("throttle", after=1, count=-1, retry_after=0.01), "throttled after 2 retries"),
    "503-forever": (_payment("server_error", after=1, count=-1, status=503), "server error after 2 retries"),
    "timeout-forever": (_payment("slow", after=1, count=-1, delay=5.0),
                        "connection failed after 2 retries: ReadTimeout on query"),
    "reset-forever": (_payment("reset", after=1, count=-1), "connection failed after 2 retries"),
    "truncated-forever": (_payment("malformed_page", after=1, count=-1),
                          "malformed response after 2 retries: query body is not valid JSON"),
    "wrong-content-type-forever": (_payment("wrong_content_type", after=1, count=-1),
                                   "malformed response after 2 retries: expected JSON from query, got 'text/html"),
    "401-after-refresh": (_payment("expire_token", after=1, count=-1), "access token was refused even after a refresh"),
}


@pytest.mark.parametrize("name", list(PERMANENT))
def test_persistent_fault_fails_the_run_naming_tenant_rail_entity_and_cause(project, wire, name):
    fault, cause = PERMANENT[name]
    realm = project.add_tenant("acme")
    fast = project.with_qbo(page_size=20, backoff_base=0.0, max_retries=2, timeout=0.2)
    fast.sandbox.inject(realm, fault)

    failed = fast.sync("acme", asset_selection=PAYMENT_ASSETS, raise_on_error=False)

    assert not failed.success
    text = failure_text(failed)
    assert f"tenant acme, rail qbo, entity Payment: QBO realm {realm}, entity Payment: " in text and cause in text, text
    assert wire.count("/query", "Payment") == 4  # page 1 read, page 2 tried three times
    assert wire.sleeps == ([] if name == "401-after-refresh" else [0.01 if name == "429-forever" else 0.0] * 2)
    assert log_rows(fast, "acme", "Payment") == [] and cursor(fast, "acme", "Payment") is None  # page 1 not kept
    assert_log_verifies(fast)


def test_failure_mid_incremental_sync_keeps_the_old_cursor_and_the_next_run_catches_up(project, wire):
    realm = project.add_tenant("acme")
    fast = project.with_qbo(page_size=10, backoff_base=0.0, max_retries=2)
    assert fast.sync("acme", asset_selection=PAYMENT_ASSETS).success
    fast.sandbox.advance(timedelta(minutes=10))
    for oid in sorted(truth(fast, realm, PAYMENT), key=int)[:30]:
        fast.sandbox.touch(realm, "Payment", oid)  # 30 new versions: several pages to read
    before, logged = cursor(fast, "acme", "Payment"), log_rows(fast, "acme", "Payment")
    fast.sandbox.inject(realm, _payment("server_error", after=2, count=-1, status=503))

    failed = fast.sync("acme", asset_selection=PAYMENT_ASSETS, raise_on_error=False)

    assert not failed.success and "entity Payment" in failure_text(failed)
    assert log_rows(fast, "acme", "Payment", failed.run_id) == [] and log_rows(fast, "acme", "Payment") == logged
    assert cursor(fast, "acme", "Payment") == before
    assert_log_verifies(fast)
    fast.sandbox.clear_faults(realm)
    assert fast.sync("acme", asset_selection=PAYMENT_ASSETS).success
    assert len(log_rows(fast, "acme", "Payment")) == len(logged) + 30
    assert_payments_complete(fast, realm)


def test_revoked_refresh_token_fails_fast_asking_to_reconnect_and_writes_nothing(project, wire):
    realm = project.add_tenant("acme")
    fast = project.with_qbo(backoff_base=0.0)
    assert fast.sync("acme", asset_selection=PAYMENT_ASSETS).success
    fast.sandbox.advance(timedelta(minutes=30))
    logged, cursors = fast.query("select count(*) from raw.entity_log")[0][0], fast.query(
        "select * from meta.sync_cursors order by all")
    fast.sandbox.revoke(realm)
    wire.requests.clear()

    failed = fast.sync("acme", asset_selection=PAYMENT_ASSETS, raise_on_error=False)

    assert not failed.success
    text = failure_text(failed)
    assert (f"tenant acme, rail qbo, entity Payment: QBO realm {realm}, entity Payment: refresh token was "
            "refused (invalid_grant): it was rotated or revoked; reconnect the company") in text, text
    assert wire.sleeps == []  # refused grants are final: no retry, no backoff
    assert wire.count("/tokens/bearer") == 2  # the stored token, then the configured one, once each
    assert len(wire.requests) == 3  # and one API call, refused as revoked
    assert fast.query("select count(*) from raw.entity_log")[0][0] == logged
    assert fast.query("select * from meta.sync_cursors order by all") == cursors
    assert_log_verifies(fast)
    fast.sandbox.reconnect(realm)
    assert fast.sync("acme", asset_selection=PAYMENT_ASSETS).success
    assert_payments_complete(fast, realm)


def test_objects_updated_while_paging_shift_offsets_but_nothing_is_missed_or_doubled(project, wire):
    realm = project.add_tenant("acme")
    fast = project.with_qbo(page_size=5, backoff_base=0.0)
    # The first pages walk the data-conversion second (more payments than a page) by STARTPOSITION; on the
    # third request five already-read payments get new versions and leave that second, so every unread row
    # moves five places up: more than the pages overlap.
    fast.sandbox.inject(realm, _payment("shift", after=2, rows=5))

    result = fast.sync("acme", asset_selection=PAYMENT_ASSETS)

    assert result.success and fast.sandbox.faults(realm) == []
    assert len(log_rows(fast, "acme", "Payment")) == len(truth(fast, realm, PAYMENT)) + 5  # 5 read twice, as 2 versions
    assert sum(op == "updated" for _, op, _ in log_rows(fast, "acme", "Payment")) == 5
    assert_payments_complete(fast, realm)
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_last_updated_time_going_backwards_within_the_overlap_is_logged(project, wire):
    realm = project.add_tenant("acme")
    fast = project.with_qbo(backoff_base=0.0)
    payment = sorted(truth(fast, realm, PAYMENT), key=int)[7]
    fast.sandbox.advance(timedelta(minutes=10))
    fast.sandbox.touch(realm, "Payment", payment)
    assert fast.sync("acme", asset_selection=PAYMENT_ASSETS).success
    first = fast.query("select source_updated_at, source_version from raw.entity_log where entity_id = ? "
                       "and entity_type = 'Payment' order by seq desc limit 1", [payment])[0]
    fast.sandbox.advance(timedelta(minutes=1))
    fast.sandbox.touch(realm, "Payment", payment, backdate=timedelta(minutes=4))  # 3 minutes before its last version

    assert fast.sync("acme", asset_selection=PAYMENT_ASSETS).success

    second = fast.query("select source_updated_at, source_version, op from raw.entity_log where entity_id = ? "
                        "and entity_type = 'Payment' order by seq desc limit 1", [payment])[0]
    assert second[0] == first[0] - timedelta(minutes=3) and int(second[1]) == int(first[1]) + 1
    assert second[2] == "updated"
    assert_payments_complete(fast, realm)
    row = fast.query("select sync_token from mirror.qbo_payments where qbo_id = ?", [payment])[0][0]
    assert row == int(second[1])  # the mirror follows the log's order, not the rail's timestamps


def test_cdc_above_its_1000_object_cap_is_read_in_narrowing_windows(project, wire):
    big = project.with_qbo(sandbox_scale=8.0, backoff_base=0.0)
    realm = big.add_tenant("acme")
    assert big.sync("acme", asset_selection=PAYMENT_ASSETS).success
    live_then, logged = set(latest_live(big, "acme", "Payment")), log_count(big)
    deleted_before = big.sandbox.deleted_ids(realm, "Payment")
    big.sandbox.advance(timedelta(days=25))
    deleted = big.sandbox.deleted_ids(realm, "Payment") - deleted_before  # those made meanwhile included
    wire.requests.clear()

    assert big.sync("acme", asset_selection=PAYMENT_ASSETS).success

    assert wire.count("/cdc", "Payment") >= 2  # the first answer was at the cap
    assert len(deleted & live_then) > 20
    tombstones = big.query("select entity_id, source from raw.entity_log where entity_type = 'Payment' and op = "
                           "'deleted' and tenant_id = 'acme' and seq > ?", [logged])  # fmt: skip
    assert {i for i, _ in tombstones} == deleted and {s for _, s in tombstones} == {"cdc"}  # no sweep needed
    assert_payments_complete(big, realm)


def test_change_feed_older_than_30_days_falls_back_to_the_id_sweep(project, wire):
    realm = project.add_tenant("acme")
    fast = project.with_qbo(backoff_base=0.0)
    assert fast.sync("acme", asset_selection=PAYMENT_ASSETS).success
    live_then = set(latest_live(fast, "acme", "Payment"))
    deleted_before = fast.sandbox.deleted_ids(realm, "Payment")
    fast.sandbox.advance(timedelta(days=31))
    wire.requests.clear()

    result = fast.sync("acme", asset_selection=PAYMENT_ASSETS)

    assert result.success
    assert wire.count("/cdc") == 0  # refused before asking: QBO's clock says the window is gone
    deleted = (fast.sandbox.deleted_ids(realm, "Payment") - deleted_before) & live_then
    swept = fast.query("select entity_id from raw.entity_log where op = 'deleted' and source = 'sweep' "
                       "and entity_type = 'Payment'")
    assert deleted and {i for (i,) in swept} == deleted
    meta = next(m.step_materialization_data.materialization.metadata for m in result.get_asset_materialization_events()
                if m.step_materialization_data.materialization.asset_key.path == ["raw", "qbo_payments"])
    assert meta["tenants"].value["acme"]["swept"] == "change feed window older than 30 days"
    assert mirror(fast, "acme", PAYMENT) == truth(fast, realm, PAYMENT)
    assert_no_version_twice(fast, "acme")
    assert_log_verifies(fast)
