"""QBO Purchases through real Dagster runs: the tenant's mirror is the world's booked card spend, sync after sync."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import dagster as dg

from ledger_pipeline.rails.qbo.sandbox.history import CARDS_SINCE
from ledger_pipeline.rails.qbo.sandbox.timefmt import local_date
from ledger_pipeline.world.breaks import Breaks
from ledger_pipeline.world.card_spend import CardSpend
from ledger_pipeline_tests.helpers import failure_text

PURCHASES = dg.AssetKey(["mirror", "qbo_purchases"])
MIRRORED = """
select ramp_transaction_id, total_amt, line_amount_total, txn_date, cast(epoch(created_at) as bigint), payment_type,
       account_name, is_credit, line_count
from mirror.qbo_purchases where tenant_id = ? order by cast(qbo_id as bigint)
"""


def test_the_purchases_mirror_equals_the_worlds_card_bookings(project) -> None:
    realm = project.add_tenant("acme")
    for advance in (timedelta(0), timedelta(days=4)):
        project.sandbox.advance(advance)
        result = project.sync("acme", raise_on_error=False)
        assert result.success, failure_text(result)

        sandbox, spec = project.sandbox, project.sandbox.specs[realm]
        spend = CardSpend(sandbox.seed, realm, spec.size, spec.offset_minutes, CARDS_SINCE)
        breaks = Breaks(sandbox.seed, realm, spec.breaks)  # the demo business books some twice, some never
        booked = [t for t in spend.bookings(int(sandbox.now.timestamp()))
                  for _ in range({"card_spend_not_booked": 0, "booking_duplicated": 2}.get(breaks.card(t.transaction_id), 1))]
        expected = [(t.transaction_id, Decimal(t.cents).scaleb(-2), Decimal(t.cents).scaleb(-2),
                     local_date(t.authorized, spec.offset_minutes), t.booked, "CreditCard", "Ramp Card", False, 1)
                    for t in booked]  # fmt: skip
        assert booked and project.query(MIRRORED, ["acme"]) == expected, advance

        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations() if c.asset_key == PURCHASES}
        assert checks.keys() >= {"rows_valid", "matches_log", "lines_sum_to_total"} and all(checks.values()), checks
    assert project.query("select count(*) from quarantine.mirror_rows where model = 'mirror.qbo_purchases'") == [(0,)]
