"""recon.bill_custody on one business with breaks synced on all four rails: a paid and recorded bill shows its steps
in order, each named by a log version that exists and is about the step's object; a bill Ramp paid and the books
never recorded (ground truth: `bill_paid_not_recorded`) shows executed and verified, not recorded, and is stuck from
the kind's tolerance on; a step shown before one it needs (books recording a payment before Ramp made it) is out of
order."""

from __future__ import annotations

from datetime import datetime

import pytest

from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES
from ledger_pipeline.world.ground_truth import injected_breaks

CUSTODY = """
    select qbo_bill_id, ramp_bill_id, approved_at, approved_seq, approved_row_hash, executed_at, executed_seq,
        executed_row_hash, verified_at, verified_seq, verified_row_hash, bank_transaction_id, recorded_at, recorded_seq,
        recorded_row_hash, bill_payment_id, out_of_order, stuck, as_of
    from recon.bill_custody where tenant_id = 'acme'
"""
LOG = "select rail, entity_type, entity_id, row_hash from raw.entity_log where seq = ?"


@pytest.fixture
def custody(broken_acme):
    """acme (five times the demo's breaks) synced once on all four rails: its custody rows by QBO bill id."""
    project, realm = broken_acme, DEMO_COMPANIES[0].realm_id
    columns = [c.strip() for c in CUSTODY.split("select")[1].split("from")[0].replace("\n", " ").split(",")]
    rows = {row[0]: dict(zip(columns, row)) for row in project.query(CUSTODY)}
    return project, realm, rows


def _shows(project, seq: int, row_hash: str, rail: str, entity_type: str, entity_id: str) -> None:
    """The log version `seq` exists, with that row_hash, and is about that object."""
    assert project.query(LOG, [seq]) == [(rail, entity_type, entity_id, row_hash)]


def test_a_paid_and_recorded_bill_shows_each_step_in_order_from_the_log(custody):
    project, _, rows = custody
    done = [r for r in rows.values() if r["ramp_bill_id"] and r["recorded_seq"] and r["verified_seq"]]
    assert done, "no Ramp bill paid, recorded and seen at the bank"
    for row in done:
        assert row["approved_at"] is not None and row["executed_at"] <= row["verified_at"] and not row["stuck"]
        # The books record the payment as Ramp makes it; one recorded before Ramp made it would be out of order.
        assert row["out_of_order"] == (row["recorded_at"] < row["executed_at"])
        assert row["recorded_at"] <= row["executed_at"]
        _shows(project, row["approved_seq"], row["approved_row_hash"], "ramp", "bill", row["ramp_bill_id"])
        _shows(project, row["executed_seq"], row["executed_row_hash"], "ramp", "bill", row["ramp_bill_id"])
        _shows(project, row["verified_seq"], row["verified_row_hash"], "plaid", "transaction",
               row["bank_transaction_id"])
        _shows(project, row["recorded_seq"], row["recorded_row_hash"], "qbo", "BillPayment", row["bill_payment_id"])
    outside = [r for r in rows.values() if r["ramp_bill_id"] is None and r["recorded_seq"]]
    assert outside  # a bill paid in the books alone: booked, then executed and recorded by its bill payment
    for row in outside:
        assert row["executed_seq"] == row["recorded_seq"] and row["executed_at"] == row["recorded_at"]
        _shows(project, row["approved_seq"], row["approved_row_hash"], "qbo", "Bill", row["qbo_bill_id"])


def test_a_bill_paid_on_ramp_and_never_recorded_is_stuck_once_past_tolerance(custody):
    project, realm, rows = custody
    truth = [b for b in injected_breaks(project.sandbox, realm, "acme") if b["kind"] == "bill_paid_not_recorded"]
    assert truth
    for injected in truth:
        ramp, books, *bank = injected["evidence"]
        row = rows[books["entity_id"]]
        assert row["ramp_bill_id"] == ramp["entity_id"]
        assert row["executed_at"] == datetime.fromisoformat(injected["occurred_at"])
        _shows(project, row["executed_seq"], row["executed_row_hash"], "ramp", "bill", ramp["entity_id"])
        assert row["recorded_seq"] is None and row["bill_payment_id"] is None
        if bank:
            assert row["bank_transaction_id"] == bank[0]["entity_id"] and row["verified_at"] >= row["executed_at"]
            _shows(project, row["verified_seq"], row["verified_row_hash"], "plaid", "transaction", bank[0]["entity_id"])
        assert row["stuck"] == (row["as_of"] >= datetime.fromisoformat(injected["reportable_from"]))
        assert not row["out_of_order"]

