"""The synthetic books: deterministic, changing with simulated time, and internally consistent."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import timedelta, timezone

import httpx
import pytest

from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES, CompanySpec, QboSandbox

REALM = "9130350000000101"
ENTITIES = ("Vendor", "Customer", "Account", "Bill", "Invoice", "BillPayment", "Payment")


def pages(sb: QboSandbox, api: httpx.Client, realm: str) -> list[bytes]:
    out = []
    for entity in ("Bill", "Invoice", "Vendor"):
        response = api.get(f"/v3/company/{realm}/query",
                           params={"query": f"SELECT * FROM {entity} ORDERBY MetaData.LastUpdatedTime MAXRESULTS 300"})
        out.append(response.content)
    since = (sb.now - timedelta(days=2)).isoformat()
    changes = api.get(f"/v3/company/{realm}/cdc", params={"entities": ",".join(ENTITIES), "changedSince": since})
    out.append(changes.content)
    return out


def test_same_seed_and_instant_give_byte_identical_bodies(sandbox: QboSandbox, qbo_api) -> None:
    twin = QboSandbox(sandbox.companies, seed=11, rate_limit=None)
    for sb in (sandbox, twin):
        sb.advance(timedelta(hours=30, minutes=7))
    a, b = qbo_api(sandbox, REALM), qbo_api(twin, REALM)
    assert pages(sandbox, a, REALM) == pages(twin, b, REALM)
    other = qbo_api(sandbox, "9130350000000102")
    assert pages(sandbox, a, REALM)[0] != pages(sandbox, other, "9130350000000102")[0]
    reseeded = QboSandbox(sandbox.companies, seed=12, rate_limit=None)
    reseeded.advance(timedelta(hours=30, minutes=7))
    assert pages(sandbox, a, REALM)[0] != pages(reseeded, qbo_api(reseeded, REALM), REALM)[0]


def test_going_back_in_time_replays_the_same_history(sandbox: QboSandbox) -> None:
    sandbox.advance(timedelta(days=1))
    at_one_day = sandbox.live_objects(REALM, "Bill")
    sandbox.advance(timedelta(days=2))
    assert sandbox.live_objects(REALM, "Bill") != at_one_day
    sandbox.set_clock(sandbox.now - timedelta(days=2))
    assert sandbox.live_objects(REALM, "Bill") == at_one_day
    with pytest.raises(ValueError, match="start"):
        sandbox.set_clock(sandbox.now - timedelta(days=30))


def test_books_change_in_every_way_within_three_days() -> None:
    sb = QboSandbox(DEMO_COMPANIES[:1], rate_limit=None)
    realm = DEMO_COMPANIES[0].realm_id
    before = {e: sb.live_objects(realm, e) for e in ENTITIES}
    sb.advance(timedelta(days=3))
    after = {e: sb.live_objects(realm, e) for e in ENTITIES}
    seen = defaultdict(int)
    for entity in ENTITIES:
        old, new = before[entity], after[entity]
        seen["created"] += len(new.keys() - old.keys())
        seen["deleted"] += len(old.keys() - new.keys())
        for object_id in old.keys() & new.keys():
            was, now = old[object_id], new[object_id]
            if was == now:
                continue
            seen["updated"] += 1
            assert int(now["SyncToken"]) > int(was["SyncToken"])
            assert now["MetaData"]["LastUpdatedTime"] > was["MetaData"]["LastUpdatedTime"]
            assert now["MetaData"]["CreateTime"] == was["MetaData"]["CreateTime"]
            seen["voided"] += now.get("PrivateNote") == "Voided" != was.get("PrivateNote")
            seen["deactivated"] += was.get("Active") is True and now.get("Active") is False
    assert all(seen[k] > 0 for k in ("created", "deleted", "updated", "voided", "deactivated")), dict(seen)
    stamps = [o["MetaData"]["LastUpdatedTime"] for e in ENTITIES for o in after[e].values()]
    assert len(stamps) - len(set(stamps)) > 10  # several objects share a second


def _cents(value: float) -> int:
    return round(value * 100)


@pytest.mark.parametrize("days", [0, 4])
def test_references_balances_and_lines_are_consistent(sandbox: QboSandbox, days: int) -> None:
    sandbox.advance(timedelta(days=days))
    books = {e: sandbox.live_objects(REALM, e) for e in ENTITIES}
    for doc_type, pay_type, party_type, ref in (("Bill", "BillPayment", "Vendor", "VendorRef"),
                                                ("Invoice", "Payment", "Customer", "CustomerRef")):
        docs, pays, parties = books[doc_type], books[pay_type], books[party_type]
        applied: dict[str, int] = defaultdict(int)
        links: dict[str, set[str]] = defaultdict(set)
        for pay_id, pay in pays.items():
            assert pay[ref]["value"] in parties and pay[ref]["name"] == parties[pay[ref]["value"]]["DisplayName"]
            for line in pay["Line"]:
                (link,) = line["LinkedTxn"]
                assert link["TxnType"] == doc_type and link["TxnId"] in docs
                assert docs[link["TxnId"]][ref] == pay[ref]  # a payment pays its own party's documents
                applied[link["TxnId"]] += _cents(line["Amount"])
                links[link["TxnId"]].add(pay_id)
            unapplied = _cents(pay.get("UnappliedAmt", 0))
            assert _cents(pay["TotalAmt"]) == sum(_cents(line["Amount"]) for line in pay["Line"]) + unapplied
        open_by_party: dict[str, int] = defaultdict(int)
        for doc_id, doc in docs.items():
            assert doc[ref]["value"] in parties
            item_lines = [line for line in doc["Line"] if line["DetailType"] != "SubTotalLineDetail"]
            assert sum(_cents(line["Amount"]) for line in item_lines) == _cents(doc["TotalAmt"])
            assert _cents(doc["Balance"]) == _cents(doc["TotalAmt"]) - applied[doc_id] >= 0
            assert {link["TxnId"] for link in doc["LinkedTxn"]} == links[doc_id]
            open_by_party[doc[ref]["value"]] += _cents(doc["Balance"])
            for line in item_lines:
                detail = line.get("SalesItemLineDetail")
                if detail:
                    assert _cents(detail["UnitPrice"]) * detail["Qty"] == _cents(line["Amount"])
        assert {k: _cents(p["Balance"]) for k, p in parties.items()} == {k: open_by_party[k] for k in parties}
    accounts = books["Account"]
    for bill in books["Bill"].values():
        assert all(line["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] in accounts for line in bill["Line"])
        assert bill["APAccountRef"]["value"] in accounts
    for obj in (o for e in ENTITIES for o in books[e].values()):
        assert None not in obj.values() and obj["domain"] == "QBO" and obj["sparse"] is False


def test_touch_bumps_an_object_now_and_survives_a_replay(sandbox: QboSandbox) -> None:
    sandbox.advance(timedelta(hours=5))
    was = sandbox.live_objects(REALM, "Vendor")["3"]
    sandbox.touch(REALM, "Vendor", "3")
    now = sandbox.live_objects(REALM, "Vendor")["3"]
    assert int(now["SyncToken"]) == int(was["SyncToken"]) + 1
    assert now["MetaData"]["LastUpdatedTime"] == sandbox.now.astimezone(timezone(timedelta(hours=-7))).isoformat()
    sandbox.advance(timedelta(hours=1))
    later = sandbox.live_objects(REALM, "Vendor")["3"]
    sandbox.set_clock(sandbox.now - timedelta(minutes=30))
    sandbox.advance(timedelta(minutes=30))
    assert sandbox.live_objects(REALM, "Vendor")["3"] == later
    with pytest.raises(ValueError, match="no live Bill"):
        sandbox.touch(REALM, "Bill", "999999")


def test_build_and_replay_are_fast() -> None:
    began = time.perf_counter()
    sb = QboSandbox((CompanySpec("9130350000000401", "Timing Co.", size=2000),), rate_limit=None)
    sb.advance(timedelta(days=3))
    assert sb.deleted_ids("9130350000000401", "Bill") is not None
    assert time.perf_counter() - began < 1.0
