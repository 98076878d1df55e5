"""The Stripe sync's events feed through the real client, sync skeleton and DuckDB file, at the moments that
matter: a dispute, which changes its charge without a charge event, and an entity with no events for a while,
whose position must keep up with the feed so it never ages out of Stripe's 30 days."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from ledger_pipeline.lib import warehouse
from ledger_pipeline.lib.sync import sync_entity
from ledger_pipeline.rails.stripe.client import StripeClient
from ledger_pipeline.rails.stripe.entities import BY_NAME
from ledger_pipeline.rails.stripe.sandbox import PLATFORM_KEY, SANDBOX_BASE_URL
from ledger_pipeline.rails.stripe.sync import StripeSession
from ledger_pipeline_tests.stripe.conftest import ACCOUNT, build

DISPUTE_DAY = 110  # the first dispute of ACCOUNT's world comes at day 110.5, on a charge made days before


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
