"""The breaks the sandbox puts into a business on purpose (world/breaks.py) and lists as ground truth
(world/ground_truth.py, `ledger-pipeline sandbox breaks`): each listed break is what the rails' own views show,
a clean business has none, and the list is the same in every process."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import timedelta

import pytest

from ledger_pipeline import cli
from ledger_pipeline.lib.tenants import Tenant, TenantRegistry
from ledger_pipeline.rails.plaid.sandbox import PlaidSandbox, items_for
from ledger_pipeline.rails.plaid.sandbox.spec import bank_item
from ledger_pipeline.rails.qbo.rail import QboConnection
from ledger_pipeline.rails.qbo.sandbox.books import DELETED, VOIDED
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES, QboSandbox
from ledger_pipeline.rails.qbo.sandbox.render_txn import payout_id
from ledger_pipeline.rails.ramp.sandbox import RampSandbox, render
from ledger_pipeline.rails.ramp.sandbox.spec import businesses_for
from ledger_pipeline.world.breaks import KINDS, TOLERANCE
from ledger_pipeline.world.ground_truth import injected_breaks

ACME, BLUEBIRD, COPPERLINE = DEMO_COMPANIES


@pytest.fixture(scope="module")
def world() -> tuple[QboSandbox, PlaidSandbox]:
    qbo = QboSandbox(DEMO_COMPANIES)
    qbo.advance(timedelta(days=20))
    return qbo, PlaidSandbox(qbo)


def _ramp_bills(qbo: QboSandbox, realm_id: str) -> dict[str, dict]:
    """Ramp bill id -> the bill as Ramp's GET /bills/{id} shows it."""
    ramp = RampSandbox(qbo, businesses_for(realm_id))
    with ramp.world(businesses_for(realm_id)[0].business_id) as view:
        return {b.bill_id: render.bill(view, b, single=True) for b in view.bills.items}


def _bank(plaid: PlaidSandbox, realm_id: str) -> dict[str, tuple[str, int]]:
    """Posted transaction id -> (what the money is, cents, Plaid's sign) on the business's checking account."""
    with plaid.world(bank_item(realm_id).item_id) as (feed, _now):
        return {t.txn_id: (t.movement.key, t.movement.amount) for t in feed.txns if not t.pending}


def _originals(plaid: PlaidSandbox, realm_id: str) -> dict[str, str | None]:
    """Posted transaction id -> the bank's original description."""
    with plaid.world(bank_item(realm_id).item_id) as (feed, _now):
        return {t.txn_id: t.movement.look.original for t in feed.txns if not t.pending}


def _notes(qbo: QboSandbox, realm_id: str, entity: str) -> Counter[str]:
    return Counter(obj.get("PrivateNote", "") for obj in qbo.live_objects(realm_id, entity).values())


def test_each_listed_break_is_what_the_rails_show(world):
    qbo, plaid = world
    seen: Counter[str] = Counter()
    for spec in (ACME, COPPERLINE):
        realm = spec.realm_id
        breaks = injected_breaks(qbo, realm, "t")
        deposits, purchases = _notes(qbo, realm, "Deposit"), _notes(qbo, realm, "Purchase")
        bank, ramp_bills, originals = _bank(plaid, realm), _ramp_bills(qbo, realm), _originals(plaid, realm)
        bill_payments = qbo.live_objects(realm, "BillPayment").values()
        bank_keys = {key for key, _ in bank.values()}
        for found in breaks:
            kind, evidence, cents = found["kind"], found["evidence"], found["amount_minor"]
            seen[kind] += 1
            assert cents > 0 and found["currency"] == "USD"
            assert found["reportable_from"] >= found["occurred_at"]
            anchor = evidence[0]
            if kind == "payout_not_deposited":
                assert deposits[f"Stripe payout {anchor['entity_id']}"] == 0
            elif kind == "deposit_amount_mismatch":
                deposit = qbo.live_objects(realm, "Deposit")[anchor["entity_id"]]
                assert deposit["PrivateNote"] == f"Stripe payout {evidence[1]['entity_id']}"
                assert deposits[deposit["PrivateNote"]] == 1
            elif kind == "payout_not_in_bank":
                assert deposits[f"Stripe payout {anchor['entity_id']}"] == 1  # the books have it, the bank not
            elif kind == "card_spend_not_booked":
                assert purchases[f"Ramp txn {anchor['entity_id']}"] == 0
            elif kind == "booking_duplicated":
                assert purchases[f"Ramp txn {evidence[1]['entity_id']}"] == 2
            elif kind == "payment_recorded_not_in_bank":
                slot = int(anchor["entity_id"]) - 1
                prefix = "payment" if anchor["entity_type"] == "Payment" else "bill_payment"
                assert f"{prefix}|{slot}" not in bank_keys
                assert anchor["entity_id"] in qbo.live_objects(realm, anchor["entity_type"])
            elif kind == "amount_mismatch":
                key, bank_cents = bank[anchor["entity_id"]]
                books = qbo.live_objects(realm, "Payment")[evidence[1]["entity_id"]]
                assert key == f"payment|{int(evidence[1]['entity_id']) - 1}"
                assert round(float(books["TotalAmt"]) * 100) - abs(bank_cents) == cents
            elif kind == "bill_paid_not_recorded":
                ramp, books = ramp_bills[anchor["entity_id"]], qbo.live_objects(realm, "Bill")[evidence[1]["entity_id"]]
                assert ramp["status"] == "PAID" and ramp["payment"]["amount"]["amount"] == cents
                assert ramp["remote_id"] == evidence[1]["entity_id"] and ramp["sync_status"] == "BILL_SYNCED"
                assert books["Balance"] == books["TotalAmt"] and books["LinkedTxn"] == []  # still open in the books
                assert not [p for p in bill_payments for line in p["Line"] for linked in line["LinkedTxn"]
                            if linked["TxnId"] == evidence[1]["entity_id"]]  # fmt: skip
                key = f"held_bill|{int(evidence[1]['entity_id']) - 1}"
                debits = [t for t, (moved, _) in bank.items() if moved.startswith(key)]
                assert debits == [t["entity_id"] for t in evidence[2:]]  # once posted, named; never returned
                for debit in debits:
                    assert bank[debit] == (key, cents)
                    assert ramp["payment"]["trace_id"]["trace_id"] in originals[debit]  # Ramp's ACH, Ramp's trace
            elif kind == "bank_txn_unexplained":
                key, bank_cents = bank[anchor["entity_id"]]
                assert key.startswith("unexplained|") and bank_cents == cents
            else:
                raise AssertionError(kind)
    assert set(seen) == set(KINDS), seen  # every kind the world injects, in the two broken demo businesses
    assert all(2 <= n <= 25 for n in seen.values()), seen  # a few of each (two object types for a payment)


def test_payouts_the_bank_never_shows_are_the_listed_ones(world):
    """A paid payout missing at the bank past the bank's delay is a listed payout_not_in_bank, and only that."""
    qbo, plaid = world
    now = qbo.now.isoformat()
    for spec in (ACME, COPPERLINE):
        company = qbo.searcher(spec.realm_id, qbo.store.view().clock_us).company
        shown = {key for key, _ in _bank(plaid, spec.realm_id).values()}
        overdue = {payout_id(company, p.index) for p in company.world.payouts if f"payout|{p.index}" not in shown
                   and p.arrival + TOLERANCE["payout_not_in_bank"] <= qbo.now.timestamp()}  # fmt: skip
        listed = {f["evidence"][0]["entity_id"] for f in injected_breaks(qbo, spec.realm_id, "t")
                  if f["kind"] == "payout_not_in_bank" and f["reportable_from"] <= now}  # fmt: skip
        assert overdue == listed and listed


def test_a_clean_business_has_no_breaks_and_its_rails_agree(world):
    qbo, plaid = world
    assert injected_breaks(qbo, BLUEBIRD.realm_id, "t") == []
    bank_keys = {key for key, _ in _bank(plaid, BLUEBIRD.realm_id).values()}
    assert not any(key.startswith("unexplained|") for key in bank_keys)


def test_the_list_is_the_same_in_another_sandbox_and_breaks_only_what_the_setting_asks():
    first, second = QboSandbox(DEMO_COMPANIES), QboSandbox(DEMO_COMPANIES)
    assert injected_breaks(first, ACME.realm_id, "acme") == injected_breaks(second, ACME.realm_id, "acme")
    doubled = QboSandbox((dataclasses.replace(ACME, breaks=4.0),))
    assert len(injected_breaks(doubled, ACME.realm_id, "acme")) > 2 * len(injected_breaks(first, ACME.realm_id, "acme"))
    with pytest.raises(ValueError, match="breaks must be within"):
        dataclasses.replace(ACME, breaks=-1)


def test_the_cli_prints_each_tenants_breaks_as_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LEDGER_TENANTS_PATH", str(tmp_path / "tenants.json"))
    registry = TenantRegistry(tmp_path / "tenants.json")
    registry.add(Tenant("acme", QboConnection(ACME.realm_id)))
    registry.add(Tenant("bluebird", QboConnection(BLUEBIRD.realm_id)))

    assert cli.main(["sandbox", "breaks"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed and {b["tenant_id"] for b in listed} == {"acme"}
    assert set(listed[0]) == {"tenant_id", "kind", "evidence", "amount_minor", "currency", "occurred_at",
                              "reportable_from"}  # fmt: skip
    assert all(set(e) == {"rail", "entity_type", "entity_id"} for b in listed for e in b["evidence"])

    assert cli.main(["sandbox", "breaks", "--tenant", "bluebird"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli.main(["sandbox", "breaks", "--tenant", "globex"]) != 0
    assert "globex" in capsys.readouterr().err
    assert items_for(ACME.realm_id)  # the demo business has a bank, whose transactions the evidence names


def test_a_payment_the_books_cancel_after_its_money_moved_is_returned_by_the_bank(world):
    """Clean books and their bank agree even when the books void or delete a payment whose money already moved:
    the bank returns it the next business day, naming the same payment."""
    qbo, plaid = world
    company = qbo.searcher(BLUEBIRD.realm_id, qbo.store.view().clock_us).company
    with plaid.world(bank_item(BLUEBIRD.realm_id).item_id) as (feed, now):
        moved = {m.key: m for m in feed.movements}
    returns = {key: m for key, m in moved.items() if key.endswith("|return")}
    assert returns
    for key, back in returns.items():
        original = moved[key.removesuffix("|return")]
        kind, slot = original.key.split("|")
        table = company.books.tables["Payment" if kind == "payment" else "BillPayment"]
        assert back.amount == -original.amount and back.authorized >= original.posted_at
        assert back.look.original == f"RETURN OF {original.look.original}"
        assert table.flags[int(slot)] & (VOIDED | DELETED)  # only what the books cancelled comes back
    for kind, name in (("payment", "Payment"), ("bill_payment", "BillPayment")):
        table = company.books.tables[name]
        cancelled_after = [key for key, m in moved.items() if key.startswith(f"{kind}|") and "|return" not in key
                           and m.posted_at is not None and table.flags[int(key.split("|")[1])] & (VOIDED | DELETED)
                           and table.updated[int(key.split("|")[1])] >= m.posted_at]  # fmt: skip
        assert all(f"{key}|return" in returns for key in cancelled_after)
