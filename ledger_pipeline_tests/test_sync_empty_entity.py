"""An entity with nothing in it at its first sync (a new company's first bill comes later) syncs on as any other.

Its first sync reads no object, so neither feed has a position to resume from: the cursor takes the
rail's clock as where the change feed starts. (Before, the next sync stopped on a bare assertion.)
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from ledger_pipeline.lib import warehouse
from ledger_pipeline.lib.entity_log import live_entity_ids
from ledger_pipeline.rails.qbo.entities import entity as entity_named
from ledger_pipeline.rails.qbo.sync import sync_entity
from ledger_pipeline_tests.helpers import truth

BILL = entity_named("Bill")


def test_an_entity_empty_at_its_first_sync_logs_what_comes_later_and_its_deletes(project):
    realm = project.add_tenant("acme")
    client = project.qbo.client(project.registry.get("acme"))
    real_pages, real_changes = client.pages, client.changes

    def no_bills_yet(entity: str, **kwargs):  # the same requests, answered with empty pages
        for page in real_pages(entity, **kwargs):
            yield dataclasses.replace(page, objects=[], max_updated_at=None)

    def no_bills_deleted_yet(entity: str, **kwargs):  # nor were bills deleted in the 30 days CDC shows
        return iter(())

    conn = warehouse.connect(project.db_path)
    try:
        client.pages, client.changes = no_bills_yet, no_bills_deleted_yet
        first = sync_entity(conn, client, "acme", BILL, run_id="r1", observed_at=datetime.now(UTC))
        assert first.stats.appended == 0 and first.cursor.updated_since is None
        assert first.cursor.cdc_since == first.cursor.rail_now
        conn.execute("update meta.sync_cursors set cdc_since = null")  # as written before: no position at all

        client.pages, client.changes = real_pages, real_changes
        second = sync_entity(conn, client, "acme", BILL, run_id="r2", observed_at=datetime.now(UTC))
        assert second.stats.created == len(truth(project, realm, BILL)) > 0
        assert live_entity_ids(conn, "acme", "qbo", "Bill") == set(truth(project, realm, BILL))

        project.sandbox.advance(timedelta(days=5))  # bills created, paid, voided and deleted meanwhile
        third = sync_entity(conn, client, "acme", BILL, run_id="r3", observed_at=datetime.now(UTC))
        assert second.cursor.cdc_since is not None and third.tombstones > 0 and not third.swept
        assert live_entity_ids(conn, "acme", "qbo", "Bill") == set(truth(project, realm, BILL))
    finally:
        conn.close()
        client.close()
