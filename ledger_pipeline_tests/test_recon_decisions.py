"""recon.links, recon.pending and people's decisions, on one business with breaks synced on all four rails: links
name their method and confidence; each charge links to the payout that settled it; a cleared check whose payment or
bill payment the log shows only voided, or only by the tombstone of its deletion, is pending until its return is
due; an explained break stays explained
through later syncs and a rebuild; a rejected link is not proposed again and reopens the flow it closed; decisions
are chained and verified like rail data; a decision about something the tenant's tables do not show, or for an
unregistered tenant, writes nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime, timedelta

import dagster as dg
import pytest

from ledger_pipeline import cli
from ledger_pipeline.defs.models.assets import RECONCILIATION_MODELS
from ledger_pipeline.lib.marts import refresh_tenant_tables
from ledger_pipeline.lib.verify import verify
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES
from ledger_pipeline.rails.stripe.client import StripeClient
from ledger_pipeline.rails.stripe.sandbox import DEMO_ACCOUNTS, PLATFORM_KEY, SANDBOX_BASE_URL
from ledger_pipeline.rails.stripe.sandbox.shared import shared_sandbox
from ledger_pipeline.world.ground_truth import injected_breaks, score
from ledger_pipeline_tests.conftest import TEST_SCALE
from ledger_pipeline_tests.helpers import failure_text
from ledger_pipeline_tests.test_analyst_queries import CROSS_RAIL_QUERIES, run_doc_query

RECON = [dg.AssetKey(["recon", name]) for name in ("links", "exceptions", "breaks", "pending")]
LINK = "select status, confidence from recon.links where link_id = ?"
DECISIONS = "select entity_id, op, source, payload from raw.recon_decisions where tenant_id = 'acme' order by seq"


@pytest.fixture
def broken(broken_acme):
    """acme (five times the demo's breaks, so each kind shows at test scale) synced once on all four rails."""
    return broken_acme


# A process that refreshes the reconciliation step's tables, or records a decision, and is SIGKILLed at a chosen
# statement: after the refresh wrote recon.links again and deleted the tenant's breaks, before it inserted them
# again, or after the decision's log row was inserted and before its commit.
KILLED_CHILD = """
import os, signal, sys
from datetime import UTC, datetime
from ledger_pipeline.lib import decisions, ledger_views, warehouse
from ledger_pipeline.lib.marts import refresh_tenant_tables

class KilledAt:
    def __init__(self, conn, statement):
        self.conn, self.statement = conn, statement
    def execute(self, sql, *args):
        if sql.strip().lower().startswith(self.statement):
            os.kill(os.getpid(), signal.SIGKILL)
        return self.conn.execute(sql, *args)
    def __getattr__(self, name):
        return getattr(self.conn, name)

path, what, subject = sys.argv[1:]
conn = warehouse.connect(path)
ledger_views.ensure(conn)
if what == "refresh":
    from ledger_pipeline.defs.models.assets import RECONCILIATION_MODELS
    refresh_tenant_tables(KilledAt(conn, "insert into recon.breaks"), RECONCILIATION_MODELS, ["acme"])
else:
    made = decisions.decision("acme", "explain", subject, "dana", "killed before it commits")
    decisions.record(KilledAt(conn, "commit"), made, "killed-run", datetime.now(UTC))
"""


def _killed(project, what: str, subject: str = "-") -> None:
    child = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(project.db_path), what, subject], timeout=120)
    assert child.returncode == -signal.SIGKILL


def _decide(project, action: str, subject_id: str, why: str = "checked with the bank", by: str = "dana"):
    config = {"action": action, "subject_id": subject_id, "by": by, "why": why}
    return project.defs.resolve_job_def("record_decision").execute_in_process(
        partition_key="acme", instance=project.instance, raise_on_error=False,
        run_config={"ops": {"raw__recon_decisions": {"config": config}}},
    )  # fmt: skip


def _break(project, break_id: str) -> tuple:
    return project.query(
        "select status, explained_by, explanation from recon.breaks where tenant_id = 'acme' and break_id = ?",
        [break_id],
    )[0]


def test_links_name_their_method_and_pending_items_are_not_breaks(broken):
    links = broken.query("select flow, method, status, confidence, from_rail, to_rail from recon.links")
    flows = {flow for flow, *_ in links}
    assert flows == {
        "charge_booking", "charge_payout", "payout_booking", "payout_bank", "payment_bank", "bill_payment_bank",
        "card_booking", "card_statement", "statement_bank", "bill_booking", "bank_return",
    }, flows  # fmt: skip
    for flow, method, status, confidence, *_ in links:
        if method == "reference":
            assert (status, confidence) == ("matched", 1.0), flow
        else:  # amount within a window: sure only when it is the only candidate either way
            assert (status, confidence) in {("matched", 0.9), ("review", 0.5)}, flow
    # An object linked twice where the flow allows one: only as a break (the booking duplicated on purpose).
    doubled = broken.query(
        "select from_id from recon.links where flow = 'card_booking' group by from_id having count(*) > 1"
    )
    duplicated = broken.query("select evidence from recon.breaks where kind = 'booking_duplicated'")
    assert {d for (d,) in doubled} == {json.loads(e)[1]["entity_id"] for (e,) in duplicated}

    pending = broken.query("select p.break_id, p.due_at > x.as_of from recon.pending p join recon.exceptions x using "
                           "(tenant_id, break_id)")  # fmt: skip
    assert pending and all(not_due for _, not_due in pending)
    assert not broken.query(
        "select 1 from recon.breaks join recon.pending using (tenant_id, break_id)"
    ), "an item inside its tolerance is pending, not a break"
    detected = broken.query("select bool_and(detected_at <= as_of) from recon.breaks join recon.exceptions using "
                            "(break_id)")  # fmt: skip
    assert detected == [(True,)]

    # The analysts' marts: the open breaks by age add up to recon.breaks; daily cash's bank side is Plaid's Checking.
    assert broken.query("select sum(breaks), sum(amount_minor) from marts.open_breaks_by_age") == broken.query(
        "select count(*), sum(amount_minor) from recon.breaks where status = 'open'"
    )
    bank = dict(broken.query(
        "select t.date, sum(-t.amount_cents) from mirror.plaid_transactions t join mirror.plaid_accounts a "
        "using (tenant_id, account_id) where a.subtype = 'checking' and not t.pending group by 1"
    ))  # fmt: skip
    daily = dict(broken.query("select day, bank_in_minor - bank_out_minor from marts.daily_cash"))
    assert bank and {day: daily[day] for day in bank} == bank
    assert not {day for day, net in daily.items() if net and day not in bank}

    # The core: a payout and its bank credit are one movement each, opposite and equal; every row has a currency.
    paired = broken.query(
        "select m.amount_minor, b.amount_minor from recon.links l "
        "join core.money_movements m on m.tenant_id = l.tenant_id and m.rail = 'stripe' and m.entity_id = l.from_id "
        "join core.money_movements b on b.tenant_id = l.tenant_id and b.rail = 'plaid' and b.entity_id = l.to_id "
        "where l.flow = 'payout_bank'"
    )
    assert paired and all(out == -banked < 0 for out, banked in paired)
    for table in ("core.money_movements", "core.documents"):
        assert broken.query(f"select count(*) = count(currency), count(*) > 0 from {table}") == [(True, True)]
    assert broken.query("select count(distinct rail) from core.money_movements") == [(4,)]

    for sql in CROSS_RAIL_QUERIES:  # docs/analysts.md's cross-rail queries, on a tenant of four rails, and unchanged
        rows = run_doc_query(broken.db_path, sql, {"tenant": "acme"})  # on its read side, with the same rows
        published = run_doc_query(broken.root / "read" / "analyst.duckdb", sql, {"tenant": "acme"}, ledger=False)
        assert sorted(map(repr, published)) == sorted(map(repr, rows))

    # The recon checks: open breaks warn (a finding about the books) with their counts by kind; links are consistent.
    refreshed = broken.sync("acme", asset_selection=RECON)
    checks = {c.check_name: c for c in refreshed.get_asset_check_evaluations()}
    open_breaks, once = checks["none_open_past_tolerance"], checks["each_object_once"]
    assert not open_breaks.passed and open_breaks.severity == dg.AssetCheckSeverity.WARN
    by_kind = open_breaks.metadata["tenants"].value["acme"]["by"]
    assert by_kind == dict(broken.query("select kind, count(*) from recon.breaks group by 1 order by 1"))
    assert once.passed, once.metadata


def test_each_charge_links_to_the_payout_that_settled_it(broken):
    """What Stripe says each paid payout settled (`/v1/balance_transactions?payout=`), read from the sandbox: each of
    its charges links to it, by reference, and a charge no paid payout settled yet links to nothing."""
    box = shared_sandbox(broken.qbo.state_path, TEST_SCALE, False)
    with StripeClient(DEMO_ACCOUNTS[0].account_id, PLATFORM_KEY, base_url=SANDBOX_BASE_URL,
                      transport=box.transport()) as client:  # fmt: skip
        paid = [p for page in client.pages("payouts", extra_params={"status": "paid"}) for p in page.objects]
        settled = {t["source"]: p["id"] for p in paid for t in client.payout_balance_transactions(p["id"])
                   if t["type"] == "charge"}  # fmt: skip
    links = broken.query(
        "select l.from_id, l.to_id, l.method, l.status, l.confidence, l.from_amount_minor = c.amount, "
        "l.to_amount_minor = p.amount from recon.links l "
        "join mirror.stripe_charges c on c.tenant_id = l.tenant_id and c.stripe_id = l.from_id "
        "join mirror.stripe_payouts p on p.tenant_id = l.tenant_id and p.stripe_id = l.to_id "
        "where l.flow = 'charge_payout' and (l.from_rail, l.from_type, l.to_rail, l.to_type) = "
        "('stripe', 'charge', 'stripe', 'payout')"
    )  # fmt: skip
    assert {charge: payout for charge, payout, *_ in links} == settled and len(links) == len(settled) > 10
    assert all(tuple(link[2:]) == ("reference", "matched", 1.0, True, True) for link in links)
    charges = {c for (c,) in broken.query("select stripe_id from mirror.stripe_charges where tenant_id = 'acme'")}
    assert charges - set(settled), "the last days' charges are not paid out yet"


def _reported(project, table: str) -> list[dict]:
    rows = project.query(f"select kind, evidence, break_id from {table} order by all")
    return [{"tenant_id": "acme", "kind": k, "evidence": json.loads(e), "break_id": b} for k, e, b in rows]


def test_an_injected_break_is_pending_inside_its_tolerance_and_a_break_once_past_it(broken):
    realm = DEMO_COMPANIES[0].realm_id
    injected = injected_breaks(broken.sandbox, realm, "acme")
    not_due = [b for b in injected if b["reportable_from"] > broken.sandbox.now.isoformat()]
    assert not_due, "the world's clock at the first sync falls inside some injected break's tolerance"
    pending = _reported(broken, "recon.pending")
    _, missed, _ = score(pending, not_due, "9999")  # every one of them, due or not
    assert not missed, missed
    _, _, early = score(_reported(broken, "recon.breaks"), not_due, "9999")
    assert len(early) == len(_reported(broken, "recon.breaks")), "none of them is a break yet"

    latest = max(datetime.fromisoformat(b["reportable_from"]) for b in not_due)
    broken.sandbox.advance(latest - broken.sandbox.now + timedelta(hours=1))
    assert broken.sync("acme").success
    breaks = _reported(broken, "recon.breaks")
    found, missed, false = score(breaks, injected_breaks(broken.sandbox, realm, "acme"), broken.sandbox.now.isoformat())
    assert not missed and not false, (missed, false)
    for truth in not_due:  # each now a break, under the id it had while pending
        ids = [{r["break_id"] for r in reports if score([r], [truth], "9999")[0]} for reports in (pending, breaks)]
        assert ids[0] and ids[0] == ids[1], truth


PAYMENT_FLOWS = pytest.mark.parametrize("flow, history", [("bill_payment_bank", "history.qbo_bill_payments"),
                                                           ("payment_bank", "history.qbo_payments")])


def _cleared_check(broken, flow: str, history: str) -> tuple:
    """A check the bank cleared over 10 days before the sync, linked to its payment (of `flow`) and never returned:
    (payment id, check id, when it posted, the sync's as_of, when the payments' first sync logged them)."""
    return broken.query(
        "select l.from_id, l.to_id, coalesce(t.datetime, cast(t.date as timestamptz)), h.as_of, "
        "(select min(valid_from) from " + history + ") from recon.links l "
        "join mirror.plaid_transactions t on t.tenant_id = l.tenant_id and t.transaction_id = l.to_id "
        "join recon.horizons h on h.tenant_id = l.tenant_id "
        "where l.flow = ? and t.check_number is not null "
        "and coalesce(t.datetime, cast(t.date as timestamptz)) < h.as_of - interval 10 day "
        "and not exists (select 1 from recon.links r where r.flow = 'bank_return' and r.from_id = l.to_id) "
        "order by l.from_id limit 1", [flow]
    )[0]  # fmt: skip


def _subject_once(broken, edits: list[tuple[str, list]], subject: str) -> dict:
    """The ledger edited (statements with their parameters), the reconciliation refreshed: the subject's rows in
    recon.pending and recon.breaks."""
    conn = broken.connect()
    try:
        for sql, params in edits:
            conn.execute(sql, params)
        refresh_tenant_tables(conn, RECONCILIATION_MODELS, ["acme"])
    finally:
        conn.close()
    return {"pending": broken.query("select kind, due_at from recon.pending where subject_id = ?", [subject]),
            "breaks": broken.query("select kind, detected_at from recon.breaks where subject_id = ?", [subject])}


def _check_once_payment_is(broken, history: str, payment: str, check: str, change: str, params: list) -> dict:
    """Every logged version of the payment changed (`change`, an SQL set list, with `params`): the check's rows."""
    edit = f"update {history} set {change} where tenant_id = 'acme' and qbo_id = ?"
    return _subject_once(broken, [(edit, [*params, payment])], check)


@PAYMENT_FLOWS
def test_a_check_whose_payment_was_first_logged_voided_waits_for_its_return(broken, flow, history):
    """A vendor check that cleared, or a customer's check deposited, months ago, whose bill payment or payment the
    books voided before a sync showed its amount (the log holds it voided only, TotalAmt 0: no link can match the
    check): pending until the bank's return is due, 5 days after the void, and a bank_txn_unexplained from then on
    if no return came (docs/reconciliation.md)."""
    payment, check, posted_at, as_of, _ = _cleared_check(broken, flow, history)

    def voided_at(instant: datetime) -> dict[str, list[tuple]]:
        voided = "is_voided = true, total_amt = 0, updated_at = ?"
        return _check_once_payment_is(broken, history, payment, check, voided, [instant])

    assert posted_at + timedelta(days=5) < as_of  # past due if it were counted from its posting
    void = as_of - timedelta(days=1)  # its return not due yet: pending
    assert voided_at(void) == {"pending": [("bank_txn_unexplained", void + timedelta(days=5))], "breaks": []}
    void = as_of - timedelta(days=6)  # no return 5 days after the void: a break
    assert voided_at(void) == {"pending": [], "breaks": [("bank_txn_unexplained", void + timedelta(days=5))]}


@PAYMENT_FLOWS
def test_a_check_whose_payment_the_log_knows_only_deleted_waits_for_its_return(broken, flow, history):
    """A check that cleared months ago, whose bill payment or payment the books deleted before the first sync: the
    log holds only the tombstone QBO's change feed showed (an Id and the deletion time, rails/qbo/sync.py), so the
    check is pending until 5 days after the deletion, when the return is due. A tombstone a later sync logged is of
    a payment made after the sync before it, so it holds no check that posted before that sync's newest change."""
    payment, check, _, as_of, first_sync = _cleared_check(broken, flow, history)
    tombstone = "op = 'deleted', is_voided = false, total_amt = null, created_at = null, updated_at = ?, valid_from = ?"
    tombstone += ", doc_number = null" if flow == "bill_payment_bank" else ""

    def deleted_at(instant: datetime, logged_at: datetime) -> dict[str, list[tuple]]:
        return _check_once_payment_is(broken, history, payment, check, tombstone, [instant, logged_at])

    gone = as_of - timedelta(days=1)  # deleted the day before the first sync: its return not due yet
    assert deleted_at(gone, first_sync) == {"pending": [("bank_txn_unexplained", gone + timedelta(days=5))],
                                            "breaks": []}  # fmt: skip
    gone = as_of - timedelta(days=6)  # no return 5 days after the deletion: a break
    assert deleted_at(gone, first_sync) == {"pending": [],
                                            "breaks": [("bank_txn_unexplained", gone + timedelta(days=5))]}
    later = deleted_at(as_of - timedelta(days=1), first_sync + timedelta(hours=1))  # a later sync's tombstone
    assert later["pending"] == [] and [kind for kind, _ in later["breaks"]] == ["bank_txn_unexplained"]


def test_a_ramp_bill_whose_recorded_payment_the_log_knows_only_deleted_waits_for_the_debits_return(broken):
    """A bill Ramp paid long ago, whose bill payment the books made as Ramp paid and deleted before the first sync:
    the log holds that payment's tombstone only, and the QBO bill open again since that instant. The bill is pending
    until 5 days after the deletion, when the bank's return of Ramp's debit is due. A bill that changed at another
    instant, or a tombstone a later sync logged (made after the sync before it: not the payment of a bill Ramp paid
    before), leaves the bill a break since Ramp's payment."""
    bill, qbo_bill, payment, paid_at, as_of, first_sync = broken.query(
        "select r.bill_id, q.qbo_id, p.qbo_id, r.paid_at, h.as_of, "
        "(select min(valid_from) from history.qbo_bill_payments) from mirror.ramp_bills r "
        "join recon.links l on l.tenant_id = r.tenant_id and l.flow = 'bill_booking' and l.from_id = r.bill_id "
        "join mirror.qbo_bills q on q.tenant_id = l.tenant_id and q.qbo_id = l.to_id "
        "join mirror.qbo_bill_payments p on p.tenant_id = q.tenant_id and p.linked_bill_ids = [q.qbo_id] "
        "and p.created_at = r.paid_at join recon.horizons h on h.tenant_id = r.tenant_id "
        "where q.balance = 0 and r.paid_at < h.as_of - interval 10 day order by r.bill_id limit 1"
    )[0]  # fmt: skip
    tombstone = ("op = 'deleted', is_voided = false, total_amt = null, created_at = null, doc_number = null, "
                 "vendor_id = null, linked_bill_ids = null, updated_at = ?, valid_from = ?")  # fmt: skip

    def deleted_at(instant: datetime, logged_at: datetime, bill_changed_at: datetime) -> dict[str, list[tuple]]:
        return _subject_once(broken, [
            (f"update history.qbo_bill_payments set {tombstone} where tenant_id = 'acme' and qbo_id = ?",
             [instant, logged_at, payment]),
            ("delete from mirror.qbo_bill_payments where tenant_id = 'acme' and qbo_id = ?", [payment]),
            ("update mirror.qbo_bills set balance = total_amt, updated_at = ? where tenant_id = 'acme' and qbo_id = ?",
             [bill_changed_at, qbo_bill]),
        ], bill)  # fmt: skip

    since_paid = {"pending": [], "breaks": [("bill_paid_not_recorded", paid_at + timedelta(days=5))]}
    gone = as_of - timedelta(days=1)  # deleted the day before the first sync: the debit's return not due yet
    assert deleted_at(gone, first_sync, gone) == {"pending": [("bill_paid_not_recorded", gone + timedelta(days=5))],
                                                  "breaks": []}  # fmt: skip
    assert deleted_at(gone, first_sync, gone + timedelta(hours=1)) == since_paid  # the bill changed another time
    gone = as_of - timedelta(days=6)  # no return 5 days after the deletion: a break
    assert deleted_at(gone, first_sync, gone) == {"pending": [],
                                                  "breaks": [("bill_paid_not_recorded", gone + timedelta(days=5))]}
    gone = as_of - timedelta(days=1)
    assert deleted_at(gone, first_sync + timedelta(hours=1), gone) == since_paid  # a later sync's tombstone


def test_an_explained_break_stays_explained_through_syncs_and_a_rebuild(broken):
    break_id, kind = broken.query("select break_id, kind from recon.breaks order by break_id limit 1")[0]
    result = _decide(broken, "explain", break_id, why="owner's transfer, agreed by phone")
    assert result.success, failure_text(result)
    assert _break(broken, break_id) == ("explained", "dana", "owner's transfer, agreed by phone")
    assert broken.query("select count(*) from recon.breaks where status = 'explained'") == [(1,)]

    broken.sandbox.advance(timedelta(days=2))
    assert broken.sync("acme").success
    assert _break(broken, break_id)[0] == "explained", kind

    conn = broken.connect()  # the recon tables lost: rebuilt from the mirrors and the log alone
    try:
        for key in RECON:
            conn.execute(f"delete from {'.'.join(key.path)}")
    finally:
        conn.close()
    rebuilt = broken.sync("acme", asset_selection=RECON)
    assert rebuilt.success and _break(broken, break_id)[0] == "explained"

    # A later decision supersedes the first; both stay in the log, chained and verified like the rails' rows.
    assert _decide(broken, "explain", break_id, why="bank confirmed the owner's transfer").success
    rows = broken.query(DECISIONS)
    assert [(e, op, source) for e, op, source, _ in rows] == [
        (f"break:{break_id}", "created", "user"), (f"break:{break_id}", "updated", "user")
    ]
    assert json.loads(rows[-1][3])["why"] == "bank confirmed the owner's transfer"
    assert _break(broken, break_id)[2] == "bank confirmed the owner's transfer"
    conn = broken.connect()
    try:
        assert verify(conn, "acme").ok
        decisions = verify(conn, "acme", rail="recon", entity_type="decision")
        assert (decisions.ok, decisions.rows, decisions.chains) == (True, 2, 1)
        conn.execute("update raw.entity_log set payload = replace(payload, 'phone', 'email') where rail = 'recon'")
        assert not verify(conn, "acme").ok
    finally:
        conn.close()


def test_a_rejected_link_is_not_proposed_again_and_reopens_its_flow(broken):
    link_id, payout = broken.query(
        "select link_id, from_id from recon.links where flow = 'payout_bank' and status = 'matched' order by 1 limit 1"
    )[0]
    assert _decide(broken, "reject", link_id, why="that deposit is another payout's").success
    assert broken.query(LINK, [link_id]) == [("rejected", 0.0)]
    reopened = broken.query(
        "select kind from recon.exceptions where subject_id = ? and kind = 'payout_not_in_bank'", [payout]
    )
    assert reopened == [("payout_not_in_bank",)]

    broken.sandbox.advance(timedelta(days=1))
    assert broken.sync("acme").success
    assert broken.query("select status from recon.links where link_id = ?", [link_id]) == [("rejected",)]

    # Confirming it again supersedes the rejection: the payout is in the bank after all.
    assert _decide(broken, "confirm", link_id, why="bank statement shows it").success
    assert broken.query(LINK, [link_id]) == [("confirmed", 1.0)]
    assert not broken.query("select 1 from recon.exceptions where subject_id = ? and kind = 'payout_not_in_bank'",
                            [payout])  # fmt: skip


def test_a_decision_about_nothing_shown_or_an_unknown_tenant_writes_nothing(broken, tmp_path, monkeypatch, capsys):
    logged = broken.query("select count(*) from raw.entity_log")
    unknown = _decide(broken, "explain", "0123456789abcdef")
    assert not unknown.success and "has no break 0123456789abcdef in recon.breaks" in failure_text(unknown)
    link_id = broken.query("select link_id from recon.links limit 1")[0][0]
    assert not _decide(broken, "explain", link_id).success  # a link's id is no break's

    (tmp_path / "home").mkdir()
    for name, path in (("LEDGER_DUCKDB_PATH", broken.db_path), ("LEDGER_TENANTS_PATH", broken.root / "tenants.json"),
                       ("DAGSTER_HOME", tmp_path / "home")):  # fmt: skip
        monkeypatch.setenv(name, str(path))
    argv = ["decide", "confirm", "--link", link_id, "--by", "dana", "--why", "seen"]
    assert cli.main([*argv[:2], "--tenant", "globex", *argv[2:]]) == 2
    assert "unknown tenant 'globex'" in capsys.readouterr().err
    assert cli.main(["decide", "explain", "--tenant", "acme", "--link", link_id, "--why", "x"]) == 2
    assert "name the break with --break" in capsys.readouterr().err
    assert broken.query("select count(*) from raw.entity_log") == logged

    assert cli.main([*argv[:2], "--tenant", "acme", *argv[2:]]) == 0
    out = capsys.readouterr().out
    assert f"confirm link {link_id} of tenant acme, by dana; recon.links now shows it confirmed" in out


def test_a_kill_during_reconciliation_or_a_decision_loses_nothing(broken):
    # A mark the refresh would overwrite: the step's tables are replaced in one transaction, so a kill after links
    # were written again (and before breaks were) leaves the mark, and every table, as it was.
    conn = broken.connect()
    try:
        conn.execute("update recon.links set decision_why = 'as before the kill' where tenant_id = 'acme'")
    finally:
        conn.close()
    tables = {name: f"select * from recon.{name} order by all" for name in ("links", "breaks", "pending")}
    before = {name: broken.query(sql) for name, sql in tables.items()}
    logged = broken.query("select count(*), max(seq) from raw.entity_log")
    break_id = before["breaks"][0][1]

    _killed(broken, "refresh")  # killed inside the one transaction, with the tenant's breaks deleted
    assert {name: broken.query(sql) for name, sql in tables.items()} == before
    _killed(broken, "decide", break_id)  # killed with the decision's log row inserted, not committed
    assert broken.query("select count(*), max(seq) from raw.entity_log") == logged
    conn = broken.connect()
    try:
        assert verify(conn).ok
    finally:
        conn.close()

    # The next run finds everything as it was, and the decision made again holds.
    assert _decide(broken, "explain", break_id).success
    assert _break(broken, break_id)[0] == "explained"
    assert broken.query("select count(*) from raw.recon_decisions") == [(1,)]
