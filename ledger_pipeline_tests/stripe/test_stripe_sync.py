"""The Stripe sync through the real client, sync skeleton and DuckDB file, at the moments that matter: a dispute,
which changes its charge without a charge event; an entity with no events for a while, whose position must keep
up with the feed so it never ages out of Stripe's 30 days; a first listing killed half-way, which resumes; a payout's
composition, read once when the payout is paid, and killed while it is read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ledger_pipeline.lib import cursors, warehouse
from ledger_pipeline.lib.sync import sync_entity
from ledger_pipeline.rails.stripe.client import StripeClient
from ledger_pipeline.rails.stripe.entities import BY_NAME
from ledger_pipeline.rails.stripe.sandbox import PLATFORM_KEY, SANDBOX_BASE_URL
from ledger_pipeline.lib.verify import verify
from ledger_pipeline.rails.stripe import sync as stripe_sync
from ledger_pipeline.rails.stripe.sync import StripeSession, composition
from ledger_pipeline_tests.stripe.conftest import ACCOUNT, build

DISPUTE_DAY = 110  # the first dispute of ACCOUNT's world comes at day 110.5, on a charge made days before
LISTING_DAY = 240  # ACCOUNT has about 400 charges by then: four pages
COMPOSITION_DAY = 40  # dozens of paid payouts


def _sync(conn, session: StripeSession, entity: str, run_id: str):
    return sync_entity(conn, session, "shop", BY_NAME[entity], run_id=run_id, observed_at=datetime.now(UTC))


def _logged(conn, entity: str, entity_id: str) -> list[tuple[str, dict]]:
    rows = conn.execute(
        "select source, payload from raw.entity_log where tenant_id = 'shop' and entity_type = ? and entity_id = ? "
        "order by seq", [entity, entity_id],
    ).fetchall()  # fmt: skip
    return [(source, json.loads(payload)) for source, payload in rows]


def test_a_disputed_charge_is_read_again_and_a_quiet_entity_keeps_its_position(tmp_path):
    sandbox = build(DISPUTE_DAY)
    conn = warehouse.connect(tmp_path / "ledger.duckdb")
    client = StripeClient(ACCOUNT, PLATFORM_KEY, base_url=SANDBOX_BASE_URL, transport=sandbox.transport())
    try:
        session = StripeSession(client)
        assert _sync(conn, session, "charge", "r1").stats.created > 0
        assert _sync(conn, session, "dispute", "r1").stats.created == 0  # none yet

        sandbox.qbo.advance(timedelta(days=1))
        charges = _sync(conn, session, "charge", "r2")
        disputes = _sync(conn, session, "dispute", "r2")
        (dispute,) = [obj for page in client.pages("disputes") for obj in page.objects]
        assert [source for source, _ in _logged(conn, "dispute", dispute["id"])] == ["event"]
        charge_versions = _logged(conn, "charge", dispute["charge"])
        # Listed undisputed on day 110; no charge event came, so the charge was read again by id, now disputed.
        assert [(source, p["disputed"]) for source, p in charge_versions] == [("list", False), ("read", True)]
        assert charge_versions[-1][1] == client.retrieve("charges", dispute["charge"])
        assert charges.stats.updated >= 1
        assert disputes.cursor.position == _newest_event(client, "charge.dispute.created")

        sandbox.qbo.advance(timedelta(days=2))  # charges, payouts... and no dispute
        quiet = _sync(conn, session, "dispute", "r3")
        assert quiet.stats.appended == 0
        assert quiet.cursor.position == client.latest_event_id() != disputes.cursor.position
    finally:
        client.close()
        conn.close()


def _newest_event(client: StripeClient, event_type: str) -> str:
    newest = next(iter(client.pages("events", limit=1, extra_params={"type": event_type})))
    return newest.objects[0]["id"]


class _DiesAtListRequest(httpx.BaseTransport):
    """The sandbox's transport until the `dies_at`-th request for a list of `path`: then the process "dies" (an
    error no retry catches), as a kill in the middle of a listing would stop it."""

    def __init__(self, inner: httpx.BaseTransport, path: str, dies_at: int) -> None:
        self.inner, self.path, self.dies_at, self.lists = inner, path, dies_at, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == self.path:
            self.lists += 1
            if self.lists == self.dies_at:
                raise SystemExit("killed in the middle of the listing")
        return self.inner.handle_request(request)


def _versions(conn) -> list[tuple[str, str]]:
    return conn.execute(
        "select entity_id, payload_hash from raw.entity_log where tenant_id = 'shop' and entity_type = 'charge' "
        "order by entity_id").fetchall()  # fmt: skip


def test_a_first_listing_commits_window_by_window_and_a_killed_one_resumes_where_it_was(tmp_path, monkeypatch):
    """The first sync of charges commits every WINDOW_OBJECTS (100 here: a window a page); killed asking for its
    third page, it kept two windows, and the next sync lists on from the second window's oldest `created`: the log ends
    as one uninterrupted first sync's, each charge once, with the same events position."""
    monkeypatch.setattr(stripe_sync, "WINDOW_OBJECTS", 100)
    sandbox = build(LISTING_DAY)
    whole = warehouse.connect(tmp_path / "whole.duckdb")
    with StripeClient(ACCOUNT, PLATFORM_KEY, base_url=SANDBOX_BASE_URL, transport=sandbox.transport()) as client:
        uninterrupted = _sync(whole, StripeSession(client), "charge", "whole")
    assert uninterrupted.pages >= 3

    conn = warehouse.connect(tmp_path / "ledger.duckdb")
    dying = _DiesAtListRequest(sandbox.transport(), "/v1/charges", dies_at=3)
    try:
        with StripeClient(ACCOUNT, PLATFORM_KEY, base_url=SANDBOX_BASE_URL, transport=dying) as client:
            with pytest.raises(SystemExit):
                _sync(conn, StripeSession(client), "charge", "killed")
        kept = cursors.load(conn, "shop", "stripe", "charge")
        assert len(_versions(conn)) == 200 and kept.resume is not None and kept.position == uninterrupted.cursor.position
        oldest_kept = conn.execute("select min(cast(payload->>'created' as bigint)) from raw.entity_log").fetchall()
        assert int(kept.resume) == oldest_kept[0][0]

        with StripeClient(ACCOUNT, PLATFORM_KEY, base_url=SANDBOX_BASE_URL, transport=sandbox.transport()) as client:
            resumed = _sync(conn, StripeSession(client), "charge", "resumed")
        assert resumed.swept is False and resumed.cursor.resume is None
        assert resumed.cursor.position == uninterrupted.cursor.position
        assert _versions(conn) == _versions(whole)  # every charge, once, as the uninterrupted sync logged it
        assert verify(conn).ok
    finally:
        conn.close()
        whole.close()


class _CountsCompositionReads(httpx.BaseTransport):
    """The sandbox's transport, noting the payout of every `/v1/balance_transactions?payout=` request."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.payouts = inner, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/balance_transactions" and "payout" in request.url.params:
            self.payouts.append(request.url.params["payout"])
        return self.inner.handle_request(request)


def _paid(client: StripeClient) -> set[str]:
    return {p["id"] for page in client.pages("payouts", extra_params={"status": "paid"}) for p in page.objects}


def test_a_payouts_composition_is_read_once_when_it_is_paid(tmp_path):
    """The first sync reads the composition of every paid payout, one list each; then only the payouts paid since (their
    `payout.paid` events); a sync with nothing new reads none and logs nothing."""
    sandbox = build(COMPOSITION_DAY)
    conn = warehouse.connect(tmp_path / "ledger.duckdb")
    counting = _CountsCompositionReads(sandbox.transport())
    with StripeClient(ACCOUNT, PLATFORM_KEY, base_url=SANDBOX_BASE_URL, transport=counting) as client:
        session = StripeSession(client)
        paid = _paid(client)
        first = _sync(conn, session, "payout_composition", "r1")
        assert first.stats.created == len(paid) > 10 and sorted(counting.payouts) == sorted(paid)
        payout = client.retrieve("payouts", sorted(paid)[0])
        assert _logged(conn, "payout_composition", payout["id"]) == [("list", composition(client, payout))]

        counting.payouts.clear()
        assert _sync(conn, session, "payout_composition", "r2").stats.appended == 0 and counting.payouts == []

        sandbox.qbo.advance(timedelta(days=7))
        new = _paid(client) - paid
        counting.payouts.clear()
        later = _sync(conn, session, "payout_composition", "r3")
        assert later.stats.created == len(new) > 0 and sorted(counting.payouts) == sorted(new)
        assert [source for (source,) in conn.execute(
            "select distinct source from raw.entity_log where run_id = 'r3'").fetchall()] == ["read"]
        counting.payouts.clear()
        assert _sync(conn, session, "payout_composition", "r4").stats.appended == 0 and counting.payouts == []
    conn.close()


def test_a_killed_composition_sync_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    """Killed while reading compositions, in a first listing past its first window and in an incremental sync, each
    time resumed: the log ends as the uninterrupted syncs left theirs, each composition once."""
    monkeypatch.setattr(stripe_sync, "WINDOW_OBJECTS", 50)  # a window per page of 100 payouts
    sandbox = build(LISTING_DAY)
    whole, conn = warehouse.connect(tmp_path / "whole.duckdb"), warehouse.connect(tmp_path / "ledger.duckdb")

    def compositions(ledger) -> list[tuple[str, str]]:
        return ledger.execute("select entity_id, payload_hash from raw.entity_log order by all").fetchall()

    def killed(dies_at: int) -> None:
        dying = _DiesAtListRequest(sandbox.transport(), "/v1/balance_transactions", dies_at)
        with StripeClient(ACCOUNT, PLATFORM_KEY, base_url=SANDBOX_BASE_URL, transport=dying) as client:
            with pytest.raises(SystemExit):
                _sync(conn, StripeSession(client), "payout_composition", "killed")

    try:
        with StripeClient(ACCOUNT, PLATFORM_KEY, base_url=SANDBOX_BASE_URL, transport=sandbox.transport()) as client:
            assert _sync(whole, StripeSession(client), "payout_composition", "whole").pages >= 2
            killed(dies_at=150)  # on the second page of payouts: the first one's window is committed
            assert len(compositions(conn)) == 100 and cursors.load(conn, "shop", "stripe", "payout_composition").resume
            _sync(conn, StripeSession(client), "payout_composition", "resumed")
            assert compositions(conn) == compositions(whole)

            sandbox.qbo.advance(timedelta(days=7))
            _sync(whole, StripeSession(client), "payout_composition", "whole")
            before = compositions(conn)
            killed(dies_at=2)
            assert compositions(conn) == before
            _sync(conn, StripeSession(client), "payout_composition", "resumed")
            assert compositions(conn) == compositions(whole) != before
        assert verify(conn).ok
    finally:
        conn.close()
        whole.close()
