"""The Stripe stg models and mirror contracts over payloads from the Stripe sandbox.

A ledger is built as a writer builds it (log views, model views, macros) and filled with every object the
sandbox lists for one connected account, plus a customer that was deleted and a few hand-broken payloads.
The stg views must type each field as Stripe sent it (integer minor units, epoch seconds as UTC instants,
linked ids as text); the mirror refresh must publish every sandbox row and quarantine the broken ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from ledger_pipeline.lib import model_views, rails, warehouse
from ledger_pipeline.lib.entity_log import LogWriter, Observation
from ledger_pipeline.lib.mirrors import refresh_tenants
from ledger_pipeline.lib.sql_models import load_models
from ledger_pipeline.lib.validation import row_failures
from ledger_pipeline.lib.warehouse import fetch_polars
from ledger_pipeline.rails.stripe.entities import ENTITIES
from ledger_pipeline.rails.stripe.schemas import MIRROR_SCHEMAS
from ledger_pipeline.rails.stripe.client import StripeClient
from ledger_pipeline.rails.stripe.sandbox import PLATFORM_KEY, SANDBOX_BASE_URL
from ledger_pipeline.rails.stripe.sync import listed
from ledger_pipeline_tests.stripe.conftest import ACCOUNT, build, client

DAYS = 120  # long enough for the sandbox's world to hold a refund, a dispute and a deleted customer
SANDBOX, BROKEN = "t-sandbox", "t-broken"
NOW = datetime(2027, 1, 1, tzinfo=UTC)
MODELS = {m.name: m for m in load_models()}


@pytest.fixture(scope="module")
def sandbox() -> dict[str, Any]:
    """{entity name: [objects as listed]}, and the deleted customer as it was and as Stripe shows it now."""
    sb = build(DAYS)
    with StripeClient(ACCOUNT, PLATFORM_KEY, base_url=SANDBOX_BASE_URL, transport=sb.transport()) as stripe:
        objects = {e.name: listed(stripe, e) for e in ENTITIES}
    with client(sb) as http:
        events = http.get("/v1/events", params={"limit": 100, "type": "customer.deleted"}).json()["data"]
        assert events, "the sandbox's world should have deleted a customer by now"
        before = events[0]["data"]["object"]
        after = http.get(f"/v1/customers/{before['id']}").json()
    return {"objects": objects, "deleted_before": before, "deleted_after": after}


# Hand-broken versions, logged for the BROKEN tenant: (entity, id, payload). Each should type to a null or break
# a contract rule; the comment says which.
def _broken(sandbox: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    charge = sandbox["objects"]["charge"][0]
    txn = next(t for t in sandbox["objects"]["balance_transaction"] if t["fee"])
    payout = sandbox["objects"]["payout"][0]
    composition = sandbox["objects"]["payout_composition"][0]
    own = next(t for t in composition["balance_transactions"] if t["type"] == "payout")
    settled = [t for t in composition["balance_transactions"] if t is not own]
    return [
        ("charge", "ch_fractional", {**charge, "id": "ch_fractional", "amount": 1999.5}),  # amount -> null
        ("charge", "ch_textamount", {**charge, "id": "ch_textamount", "amount": "1999"}),  # amount -> null
        ("charge", "ch_hugeamount", {**charge, "id": "ch_hugeamount", "amount": 2**64}),  # amount -> null
        ("charge", "ch_textcreated", {**charge, "id": "ch_textcreated", "created": str(charge["created"])}),
        ("charge", "ch_farcreated", {**charge, "id": "ch_farcreated", "created": 10**15}),  # out of range -> null
        ("charge", "cus_notacharge", {**charge, "id": "cus_notacharge"}),  # id prefix of another object
        ("charge", "ch_uppercurrency", {**charge, "id": "ch_uppercurrency", "currency": "USD"}),
        ("charge", "ch_overrefunded", {**charge, "id": "ch_overrefunded", "amount_refunded": charge["amount"] + 1}),
        ("balance_transaction", "txn_badnet", {**txn, "id": "txn_badnet", "net": txn["amount"]}),  # fee ignored
        ("balance_transaction", "txn_badfee", {**txn, "id": "txn_badfee", "fee": txn["fee"] + 1,
                                               "net": txn["amount"] - txn["fee"] - 1}),  # fee_details disagree
        ("balance_transaction", "txn_positivepayout", {
            **txn, "id": "txn_positivepayout", "type": "payout", "reporting_category": "payout",
            "amount": abs(txn["amount"]), "fee": 0, "fee_details": [], "net": abs(txn["amount"])}),
        ("payout", "po_noarrival", {**payout, "id": "po_noarrival", "arrival_date": None}),
        ("payout_composition", "po_noownpart", {**composition, "id": "po_noownpart",  # payout_net -> null
                                                "balance_transactions": settled}),
        ("payout_composition", "po_shortsettled", {**composition, "id": "po_shortsettled",  # nets do not cancel
                                                   "balance_transactions": [own, *settled[1:]]}),
        ("payout_composition", "po_badpart", {**composition, "id": "po_badpart", "balance_transactions": [
            own, {**settled[0], "id": "ch_x"}, *settled[1:]]}),  # a part that is no txn_
    ]


def _views(conn: duckdb.DuckDBPyConnection) -> None:
    """The log views of every registered rail, and Stripe's if the registry does not list it yet."""
    views = rails.log_views()
    if not any(rail == "stripe" for _, rail, _ in views):
        views += [(f"stripe_{e.table}", "stripe", e.name) for e in ENTITIES]
    for view, rail, entity_type in views:
        try:
            warehouse.create_entity_views(conn, [(view, rail, entity_type)])
        except ValueError:
            # create_entity_views quotes alphanumeric names only, and Stripe's `balance_transaction` has an
            # underscore: the same view, written here until the warehouse accepts it.
            conn.execute(
                f"create or replace view raw.{view} as select * from raw.entity_log "
                f"where rail = '{rail}' and entity_type = '{entity_type}'"
            )


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory, sandbox: dict[str, Any]) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = warehouse.connect(Path(tmp_path_factory.mktemp("stripe_models")) / "ledger.duckdb")
    _views(conn)
    model_views.ensure_views(conn, list(MODELS.values()), rails.macros())
    conn.execute("begin")
    for entity in ENTITIES:
        found = sandbox["objects"][entity.name]
        LogWriter(conn, SANDBOX, "stripe", entity.name, "listing", NOW).append(
            [Observation(obj["id"], obj, "list") for obj in found]
        )
    before, after = sandbox["deleted_before"], sandbox["deleted_after"]
    writer = LogWriter(conn, SANDBOX, "stripe", "customer", "events", NOW)
    writer.append([Observation(before["id"], before, "list")])
    writer.append([Observation(after["id"], after, "event", deleted=True)])
    for entity, entity_id, payload in _broken(sandbox):
        LogWriter(conn, BROKEN, "stripe", entity, "broken", NOW).append([Observation(entity_id, payload, "list")])
    conn.execute("commit")
    yield conn
    conn.close()


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _by_id(conn: duckdb.DuckDBPyConnection, table: str, tenant: str = SANDBOX) -> dict[str, dict[str, Any]]:
    return {r["stripe_id"]: r for r in _rows(conn, f"select * from stg.stripe_{table} where tenant_id = ?", [tenant])}


def _instant(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


# --- stg typing ----------------------------------------------------------------------------------------------


def test_every_stg_model_is_built_with_the_mirror_columns(ledger):
    for entity in ENTITIES:
        stg = MODELS[f"stg.stripe_{entity.table}"]
        assert stg.config == {"materialized": "view", "key": "stripe_id", "derive": "mirror,history"}
        assert f"mirror.stripe_{entity.table}" in MODELS and f"history.stripe_{entity.table}" in MODELS
        columns = [r[0] for r in ledger.execute(f"describe stg.stripe_{entity.table}").fetchall()]
        assert columns[:3] == ["tenant_id", "stripe_id", "op"]
        assert columns[-4:] == ["last_synced_at", "sync_source", "log_seq", "payload_hash"]
        assert "created" in columns


def test_money_columns_are_bigint(ledger):
    money = {
        "charges": ("amount", "amount_captured", "amount_refunded"), "refunds": ("amount",), "disputes": ("amount",),
        "payouts": ("amount",), "balance_transactions": ("amount", "fee", "net", "fee_details_total"),
        "customers": ("balance",), "payout_compositions": ("settled_net", "payout_net"),
    }  # fmt: skip
    for table, columns in money.items():
        types = dict(r[:2] for r in ledger.execute(f"describe stg.stripe_{table}").fetchall())
        assert {c: types[c] for c in columns} == dict.fromkeys(columns, "BIGINT"), table


def test_charges_keep_stripe_amounts_ids_and_instants(ledger, sandbox):
    rows = _by_id(ledger, "charges")
    listed = sandbox["objects"]["charge"]
    assert len(rows) == len(listed) > 100  # more than one page
    for obj in listed:
        row = rows[obj["id"]]
        assert (row["amount"], row["amount_captured"], row["amount_refunded"]) == (
            obj["amount"], obj["amount_captured"], obj["amount_refunded"])
        assert (row["currency"], row["status"], row["paid"], row["captured"]) == ("usd", "succeeded", True, True)
        assert (row["refunded"], row["disputed"]) == (obj["refunded"], obj["disputed"])
        assert (row["customer_id"], row["balance_transaction_id"], row["payment_intent_id"]) == (
            obj["customer"], obj["balance_transaction"], obj["payment_intent"])
        assert row["qbo_payment_id"] == obj["metadata"]["qbo_payment_id"]
        assert row["created"] == _instant(obj["created"]) and row["op"] == "created"
    assert any(r["refunded"] for r in rows.values()) and any(r["disputed"] for r in rows.values())


def test_balance_transactions_are_signed_with_fees(ledger, sandbox):
    rows = _by_id(ledger, "balance_transactions")
    for obj in sandbox["objects"]["balance_transaction"]:
        row = rows[obj["id"]]
        assert (row["amount"], row["fee"], row["net"]) == (obj["amount"], obj["fee"], obj["net"])
        assert row["net"] == row["amount"] - row["fee"] and row["fee_details_total"] == row["fee"]
        assert (row["type"], row["reporting_category"], row["status"]) == (
            obj["type"], obj["reporting_category"], obj["status"])
        assert (row["source_id"], row["payout_id"]) == (obj["source"], None)
        assert row["available_on"] == _instant(obj["available_on"]) and row["created"] == _instant(obj["created"])
    by_type = {r["type"] for r in rows.values()}
    assert {"charge", "refund", "payout", "adjustment"} <= by_type
    assert all(r["amount"] < 0 for r in rows.values() if r["type"] in ("refund", "payout"))


def test_links_between_objects(ledger, sandbox):
    charges = _by_id(ledger, "charges")
    txns = _by_id(ledger, "balance_transactions")
    refunds, disputes, payouts = _by_id(ledger, "refunds"), _by_id(ledger, "disputes"), _by_id(ledger, "payouts")
    assert refunds and disputes and payouts
    for refund in refunds.values():
        assert charges[refund["charge_id"]]["amount_refunded"] >= refund["amount"] > 0
        assert txns[refund["balance_transaction_id"]]["amount"] == -refund["amount"]
        assert (refund["status"], refund["reason"]) == ("succeeded", "requested_by_customer")
    for dispute in disputes.values():
        assert charges[dispute["charge_id"]]["disputed"] is True
        assert [txns[t]["source_id"] for t in dispute["balance_transaction_ids"]] == [dispute["stripe_id"]]
        assert (dispute["reason"], dispute["status"]) == ("fraudulent", "needs_response")
    for obj in sandbox["objects"]["payout"]:
        payout = payouts[obj["id"]]
        assert txns[payout["balance_transaction_id"]]["amount"] == -payout["amount"]
        assert payout["arrival_date"] == datetime.fromtimestamp(obj["arrival_date"], UTC).date()
        assert isinstance(payout["arrival_date"], date) and not isinstance(payout["arrival_date"], datetime)
        assert (payout["automatic"], payout["method"], payout["type"]) == (True, "standard", "bank_account")
        assert payout["status"] == obj["status"]


def test_a_payout_composition_settles_its_payout(ledger, sandbox):
    compositions, payouts = _by_id(ledger, "payout_compositions"), _by_id(ledger, "payouts")
    txns = _by_id(ledger, "balance_transactions")
    paid = {p["id"] for p in sandbox["objects"]["payout"] if p["status"] == "paid"}
    assert set(compositions) == paid and len(paid) > 10
    for payout_id, row in compositions.items():
        payout = payouts[payout_id]
        assert row["settled_net"] == payout["amount"] == -row["payout_net"] and row["created"] == payout["created"]
        for part in row["balance_transactions"]:
            txn = txns[part["balance_transaction_id"]]
            assert (part["type"], part["source_id"], part["amount"], part["fee"], part["net"]) == (
                txn["type"], txn["source_id"], txn["amount"], txn["fee"], txn["net"])
    kinds = {part["type"] for row in compositions.values() for part in row["balance_transactions"]}
    assert {"charge", "refund", "payout"} <= kinds


def test_a_deleted_customer_keeps_a_row(ledger, sandbox):
    gone = sandbox["deleted_after"]
    assert gone == {"id": gone["id"], "object": "customer", "deleted": True}
    versions = _rows(
        ledger, "select op, deleted, name, email, balance, created from stg.stripe_customers "
        "where tenant_id = ? and stripe_id = ? order by log_seq", [SANDBOX, gone["id"]])  # fmt: skip
    before = sandbox["deleted_before"]
    assert versions == [
        {"op": "created", "deleted": False, "name": before["name"], "email": before["email"], "balance": 0,
         "created": _instant(before["created"])},
        {"op": "deleted", "deleted": True, "name": None, "email": None, "balance": None, "created": None},
    ]
    live = _by_id(ledger, "customers")
    assert sum(not r["deleted"] for r in live.values()) == len(sandbox["objects"]["customer"])
    assert all(r["qbo_customer_id"] is not None for r in live.values() if not r["deleted"])


def test_wrong_types_become_null_never_rounded(ledger):
    rows = _by_id(ledger, "charges", BROKEN)
    assert rows["ch_fractional"]["amount"] is None
    assert rows["ch_textamount"]["amount"] is None
    assert rows["ch_hugeamount"]["amount"] is None
    assert rows["ch_textcreated"]["created"] is None and rows["ch_farcreated"]["created"] is None
    assert rows["ch_fractional"]["amount_captured"] is not None  # only the broken field is lost
    assert _by_id(ledger, "payouts", BROKEN)["po_noarrival"]["arrival_date"] is None


# --- contracts -------------------------------------------------------------------------------------------------


def _candidates(conn: duckdb.DuckDBPyConnection, table: str, tenant: str) -> pl.DataFrame:
    model = MODELS[f"mirror.stripe_{table}"]
    return fetch_polars(conn, f"select * from ({model.body}) m where tenant_id = ? order by stripe_id", [tenant])


def test_every_mirror_has_a_contract_matching_its_columns(ledger):
    for entity in ENTITIES:
        name = f"mirror.stripe_{entity.table}"
        frame = _candidates(ledger, entity.table, SANDBOX)
        assert set(MIRROR_SCHEMAS[name].to_schema().columns) == set(frame.columns), name


def test_contracts_accept_every_sandbox_row(ledger):
    for entity in ENTITIES:
        frame = _candidates(ledger, entity.table, SANDBOX)
        assert frame.height > 0
        assert row_failures(MIRROR_SCHEMAS[f"mirror.stripe_{entity.table}"], frame) == {}, entity.table


def _reasons(conn: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    frame = _candidates(conn, table, BROKEN)
    failures = row_failures(MIRROR_SCHEMAS[f"mirror.stripe_{table}"], frame)
    ids = frame["stripe_id"].to_list()
    return {ids[i]: reason for i, reason in failures.items()}


def test_contracts_reject_broken_charges(ledger):
    reasons = _reasons(ledger, "charges")
    assert set(reasons) == {"ch_fractional", "ch_textamount", "ch_hugeamount", "ch_textcreated", "ch_farcreated",
                            "cus_notacharge", "ch_uppercurrency", "ch_overrefunded"}
    for entity_id in ("ch_fractional", "ch_textamount", "ch_hugeamount"):
        assert reasons[entity_id].startswith("amount: a JSON integer"), reasons[entity_id]
    assert "created: not_nullable" in reasons["ch_textcreated"]
    assert "stripe_id: str_matches" in reasons["cus_notacharge"]
    assert "currency: str_matches" in reasons["ch_uppercurrency"]
    assert "amount_refunded <= amount_captured <= amount" in reasons["ch_overrefunded"]


def test_contracts_reject_broken_balance_transactions_and_payouts(ledger):
    reasons = _reasons(ledger, "balance_transactions")
    assert set(reasons) == {"txn_badnet", "txn_badfee", "txn_positivepayout"}
    assert "net = amount - fee" in reasons["txn_badnet"]
    assert "fee = the sum of fee_details" in reasons["txn_badfee"] and "net =" not in reasons["txn_badfee"]
    assert "sign follows type" in reasons["txn_positivepayout"]
    assert set(_reasons(ledger, "payouts")) == {"po_noarrival"}
    reasons = _reasons(ledger, "payout_compositions")
    assert set(reasons) == {"po_noownpart", "po_shortsettled", "po_badpart"}
    assert reasons["po_noownpart"].startswith("payout_net: the payout's own balance transaction, once")
    assert "settled_net = -payout_net" in reasons["po_shortsettled"]
    assert "every id a balance transaction's" in reasons["po_badpart"]


def test_mirror_refresh_publishes_sandbox_rows_and_quarantines_broken_ones(ledger, sandbox):
    published, quarantined = {}, {}
    for entity in ENTITIES:
        model = MODELS[f"mirror.stripe_{entity.table}"]
        contract = MIRROR_SCHEMAS[model.name]
        stats = refresh_tenants(
            ledger, model, [SANDBOX, BROKEN], source=f"raw.stripe_{entity.table}",
            validate=lambda frame, contract=contract: row_failures(contract, frame), run_id="test", now=NOW,
        )  # fmt: skip
        published[entity.name] = {s.tenant_id: s.rows_written for s in stats}
        quarantined[entity.name] = {s.tenant_id: s.rows_quarantined for s in stats}
    for entity in ENTITIES:
        assert published[entity.name][SANDBOX] == len(sandbox["objects"][entity.name]), entity.name
        assert quarantined[entity.name][SANDBOX] == 0, entity.name
    assert quarantined["charge"][BROKEN] == 8 and published["charge"][BROKEN] == 0
    assert quarantined["balance_transaction"][BROKEN] == 3 and quarantined["payout"][BROKEN] == 1
    assert quarantined["payout_composition"][BROKEN] == 3
    gone = sandbox["deleted_after"]["id"]
    (in_mirror,) = ledger.execute("select count(*) from mirror.stripe_customers where stripe_id = ?", [gone]).fetchone()
    assert in_mirror == 0
    history = _rows(
        ledger, "select op, is_current, valid_to is not null as closed from history.stripe_customers "
        "where stripe_id = ? order by log_seq", [gone])  # fmt: skip
    assert history == []  # history tables are filled by their own refresh, below
    model = MODELS["history.stripe_customers"]
    refresh_tenants(ledger, model, [SANDBOX], source="raw.stripe_customers", validate=lambda frame: {},
                    run_id="test", now=NOW)  # fmt: skip
    history = _rows(
        ledger, "select op, is_current, valid_to is not null as closed from history.stripe_customers "
        "where stripe_id = ? order by log_seq", [gone])  # fmt: skip
    assert history == [{"op": "created", "is_current": False, "closed": True},
                       {"op": "deleted", "is_current": False, "closed": False}]
